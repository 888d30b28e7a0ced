"""merit.bin.make_report: the listening page of decoded, scored runs of the tiny model
(report_tree.py): every picture and player points at a file copied into the report, no
link leaves it, the examples are the first utterances of each set with one row per
system (a dash without SE output), predictions come from the first seed, and a failed
rebuild leaves the previous page as it was."""
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from merit.bin import make_report
from merit.data.datadir import c_sorted, read_kv
from report_tree import SETS, make_runs


class Page(HTMLParser):
    """Tags with their attributes, and the example tables' rows as
    ``(utt, [cell text, ...], [audio src, ...])``."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.rows, self.utt, self.cell = [], [], None, None
        self.heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "h3" and attrs.get("class") == "utt":
            self.heading = ""
        elif tag == "tr":
            self.rows.append((self.utt, [], []))
        elif tag == "td":
            self.rows[-1][1].append("")
            self.cell = True
        elif tag == "audio" and self.rows:
            self.rows[-1][2].append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "h3" and self.heading is not None:
            self.utt, self.heading = self.heading, None
        elif tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.heading is not None:
            self.heading += data
        elif self.cell:
            self.rows[-1][1][-1] += data

    def sources(self):
        return [(tag, a.get("src") or a.get("href")) for tag, a in self.tags
                if a.get("src") or a.get("href")]

    def example_rows(self, utt):
        return {cells[0]: (cells, audio) for u, cells, audio in self.rows if u == utt and cells}


@pytest.fixture(scope="module")
def runs(tiny_data, tiny_model, tmp_path_factory) -> Path:
    return make_runs(tiny_data, tiny_model, tmp_path_factory.mktemp("report"))


def build(runs: Path, *options: str) -> int:
    exps = [str(p) for p in sorted(runs.iterdir()) if not p.name.startswith("report")]
    return make_report.main([*exps, "--data_root", str(runs.parent / "data"), *options])


@pytest.fixture(scope="module")
def report(runs) -> Path:
    assert build(runs) == 0
    return runs / "report"  # the default: report/ beside the first exp dir


@pytest.fixture(scope="module")
def page(report) -> Page:
    return Page((report / "index.html").read_text())


def test_every_source_is_a_file_copied_into_the_report(report, page):
    sources = page.sources()
    assert {tag for tag, _ in sources} >= {"audio", "img", "a"}
    ids = {a["id"] for _, a in page.tags if "id" in a}
    for tag, link in sources:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        if tag == "a":
            assert link.startswith("#") and link[1:] in ids, link
            continue
        target = (report / unquote(link)).resolve()
        assert target.is_file() and report.resolve() in target.parents, link
    assert not [tag for tag, a in page.tags if tag in ("link", "script") and "src" in a]
    assert all(a.get("preload") == "metadata" and "controls" in a
               for tag, a in page.tags if tag == "audio")


def test_each_set_shows_its_first_utterances_with_a_row_per_system(runs, report, page):
    data_root = runs.parent / "data"
    audio = [a["src"] for tag, a in page.tags if tag == "audio"]
    # per example: clean, noisy, tiny's output and the cascade's (the same file, once)
    assert len(audio) == len(SETS) * 2 * 4
    for name in SETS:
        for utt in c_sorted(read_kv(data_root / name / "wav.scp"))[:2]:
            rows = page.example_rows(utt)
            assert list(rows) == ["clean", "noisy", "cascade (enhanced)", "ser_only",
                                  "tiny (enhanced)"]
            assert rows["ser_only"][1] == [] and rows["ser_only"][0][1:3] == ["–", "–"]
            assert rows["cascade (enhanced)"][1] == rows["tiny (enhanced)"][1]
            clean, noisy = rows["clean"][1][0], rows["noisy"][1][0]
            spk1, wav = (read_kv(data_root / name / f) for f in ("spk1.scp", "wav.scp"))
            assert (report / clean).read_bytes() == Path(spk1[utt]).read_bytes()
            assert (report / noisy).read_bytes() == Path(wav[utt]).read_bytes()
            enhanced = read_kv(runs / "tiny_seed2" / f"decode_{name}" / "enhanced.scp")
            assert (report / rows["tiny (enhanced)"][1][0]).read_bytes() == \
                Path(enhanced[utt]).read_bytes()
            reference = read_kv(data_root / name / "utt2emo")[utt]
            assert rows["clean"][0][3] == f"reference: {reference}"


def test_predictions_and_probabilities_come_from_the_first_seed(runs, report, page):
    text = (report / "index.html").read_text()
    assert str(runs / "tiny_seed2") in text and "tiny_seed10" not in text
    for name in SETS:
        decode = runs / "tiny_seed2" / f"decode_{name}"
        hyps, posteriors = read_kv(decode / "utt2emo_hyp"), read_kv(decode / "utt2posteriors")
        classes = (decode / "classes").read_text().split()
        references = read_kv(runs.parent / "data" / name / "utt2emo")
        for utt in c_sorted(hyps)[:2]:
            emotion = page.example_rows(utt)["tiny (enhanced)"][0][3]
            mark = "✓" if hyps[utt] == references[utt] else "✗"
            probs = "".join(f"{c} {float(p):.2f}" for c, p in zip(classes, posteriors[utt].split()))
            assert emotion == f"{hyps[utt]} {mark}{probs}"


def test_confusion_matrices_and_expert_usage_are_copied(runs, report, page):
    images = {a["src"] for tag, a in page.tags if tag == "img"}
    for system in ("tiny_seed2", "ser_only_seed1", "cascade_seed1"):
        for name in SETS:
            picture = (runs / system / f"decode_{name}" / "confusion.png").read_bytes()
            assert any((report / src).read_bytes() == picture for src in images), (system, name)
    usage = (runs / "tiny_seed2" / "expert_usage.png").read_bytes()
    assert any((report / src).read_bytes() == usage for src in images)


def test_num_utts_and_out_dir(runs, tmp_path):
    assert build(runs, "--num_utts", "1", "--out_dir", str(tmp_path / "one")) == 0
    page = Page((tmp_path / "one" / "index.html").read_text())
    assert len({utt for utt, _, _ in page.rows if utt}) == len(SETS)


def test_a_failed_rebuild_keeps_the_previous_page(runs, report, capsys):
    before = (report / "index.html").read_bytes()
    assert build(runs, "--baseline", "no_such_system") == 1
    assert "make_report: error: make_tables failed" in capsys.readouterr().err
    assert build(runs, "--data_root", str(runs / "nowhere")) == 1
    assert str(runs / "nowhere" / "dev_snr0_seen" / "wav.scp") in capsys.readouterr().err
    assert (report / "index.html").read_bytes() == before
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith("report")) == ["report"]


def test_markdown_tables_become_html():
    markdown = ("### SER macro-F1\n\n| system | 0 dB <seen> |\n|---|---|\n| a | 0.5 ± 0.1 |\n"
                "| a vs. b | +3 %\\|* |\n\n`*`: p < 0.05, paired\nover utterances.\n")
    assert make_report.markdown_to_html(markdown) == (
        "<h3>SER macro-F1</h3>\n<div class=\"wide\"><table class=\"tables\">\n"
        "<tr><th>system</th><th>0 dB &lt;seen&gt;</th></tr>\n"
        "<tr><td>a</td><td>0.5 ± 0.1</td></tr>\n<tr><td>a vs. b</td><td>+3 %|*</td></tr>\n"
        "</table></div>\n<p><code>*</code>: p &lt; 0.05, paired over utterances.</p>")
