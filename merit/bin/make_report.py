"""A listening page of a recipe's runs: ``<out_dir>/index.html`` (recipe stage 6).

    python -m merit.bin.make_report exp/* [--baseline NAME ...] [--out_dir exp/report]
        [--data_root data] [--num_utts 2] [--tables exp/tables_fbank.md]

One static page, self-contained: no network, no external script or style sheet, every
link relative, and the audio and pictures it shows copied under ``<out_dir>/audio`` and
``<out_dir>/img``, so the folder can be zipped and moved. It holds

* the tables of ``merit.bin.make_tables`` (run on the same dirs with the ``--baseline``
  options, or read from ``--tables``), converted from markdown;
* per test set (SNR × noise condition), the first ``--num_utts`` utterances of
  ``<data_root>/<set>/wav.scp`` in C-locale order: players for the clean reference
  (``spk1.scp``), the noisy input (``wav.scp``) and each system's enhanced output
  (``enhanced.scp``; a dash for a system without SE), their log spectrograms, the
  reference emotion (``utt2emo``) and each system's predicted emotion with its class
  probabilities (``utt2emo_hyp``, ``utt2posteriors`` in the order of ``classes``);
  then each system's confusion matrix of the set (``confusion.png``);
* each system's expert usage (``expert_usage.png`` of ``merit.bin.plot_decodes``).

Examples and pictures come from the first seed (lowest N) of each system, exp dirs
named ``<system>_seed<N>`` being seeds of ``<system>``; the page says which dir.
The test set of a decode dir is the ``set`` of its ``scores.json``. A small inline
script shows each player's duration once its metadata loads (``data-duration`` on the
``<audio>``) and logs a console error for audio or a picture that fails to load.
The page is built in ``<out_dir>.tmp`` and replaces ``out_dir`` only when complete.
"""
import argparse
import hashlib
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from merit.bin.make_tables import DASH, load_runs, set_key
from merit.bin.plot_decodes import log_spectrogram
from merit.data.audio_io import read_audio
from merit.data.datadir import c_sorted, read_kv
from merit.utils.atomic_dir import replacing_dir

SPECTROGRAM_PX = (360, 110)
SPECTROGRAM_COLOURS = 32

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
h2 { border-bottom: 2px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; vertical-align: middle; }
th { background: #f0f0f0; }
.wide { overflow-x: auto; }
.tables { font-size: 0.9em; }
.tables td { text-align: right; white-space: nowrap; }
.tables td:first-child { text-align: left; }
.player { display: flex; align-items: center; gap: 0.5em; }
.duration { color: #666; font-size: 0.85em; min-width: 3.5em; }
.probs { font-size: 0.8em; }
.prob { display: flex; align-items: center; gap: 0.3em; }
.prob span.bar { background: #7aa6d6; height: 0.7em; display: inline-block; }
.right { color: #1a7f37; } .wrong { color: #c62828; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
img.confusion { width: 300px; } img.usage { max-width: 650px; }
nav ul { columns: 2; }
"""

SCRIPT = """
for (const audio of document.querySelectorAll("audio")) {
  const label = audio.parentElement.querySelector(".duration");
  const show = () => {
    audio.dataset.duration = audio.duration.toFixed(2);
    label.textContent = audio.duration.toFixed(1) + " s";
  };
  const fail = () => {
    if (audio.dataset.duration === "error") return;
    audio.dataset.duration = "error";
    label.textContent = "cannot load";
    console.error("cannot load audio " + audio.getAttribute("src"));
  };
  audio.addEventListener("loadedmetadata", show);
  audio.addEventListener("error", fail);
  if (audio.error) fail(); else if (audio.readyState >= 1) show();
}
for (const img of document.images) {
  let failed = false;
  const fail = () => {
    if (!failed) console.error("cannot load picture " + img.getAttribute("src"));
    failed = true;
  };
  img.addEventListener("error", fail);
  if (img.complete && img.naturalWidth === 0) fail();
}
"""


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dirs", nargs="+", help="experiment dirs, e.g. exp/*")
    parser.add_argument("--baseline", action="append", default=[],
                        help="passed to make_tables (repeatable)")
    parser.add_argument("--tables", type=Path, default=None,
                        help="make_tables' markdown output to show instead of running it")
    parser.add_argument("--out_dir", type=Path, default=None,
                        help="the report dir (default: report/ beside the first exp dir)")
    parser.add_argument("--data_root", type=Path, default=Path("data"),
                        help="where the data/<set> directories are")
    parser.add_argument("--num_utts", type=int, default=2, help="examples per test set")
    return parser


# ---------------------------------------------------------------- runs and sets

def first_seeds(exp_dirs: List[Path]) -> Dict[str, dict]:
    """``{system: {set: (scores, decode dir)}}`` of each system's first seed (lowest N),
    systems in the order they first occur (``make_tables.load_runs``; dirs without
    ``decode_*/scores.json`` are skipped with a warning on stderr)."""
    return {system: next(iter(seeds.values()))
            for system, seeds in load_runs(exp_dirs, prog="make_report").items()}


def exp_dir(run: dict) -> Path:
    """The exp dir of a run (``{set: (scores, decode dir)}``)."""
    return next(iter(run.values()))[1].parent


def set_title(name: str, scores: dict) -> str:
    """``0 dB SNR, seen noise (test1_snr0_seen)``, or the set name without SNR/condition."""
    if "snr_db" not in scores:
        return name
    condition = f", {scores['condition']} noise" if scores.get("condition") else ""
    return f"{scores['snr_db']} dB SNR{condition} ({name})"


# ---------------------------------------------------------------- tables

def run_make_tables(exp_dirs: List[Path], baselines: List[str]) -> str:
    """make_tables' markdown for ``exp_dirs``; ValueError with its stderr when it fails."""
    command = [sys.executable, "-m", "merit.bin.make_tables", *map(str, exp_dirs)]
    for name in baselines:
        command += ["--baseline", name]
    res = subprocess.run(command, capture_output=True, text=True)
    if res.returncode != 0:
        raise ValueError(f"make_tables failed (exit {res.returncode}):\n{res.stderr.strip()}")
    return res.stdout


def inline(text: str) -> str:
    """Escaped text with markdown ``code`` spans as <code>."""
    parts = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def table_cells(line: str) -> List[str]:
    """Cells of a pipe-table row (``\\|`` is a literal pipe)."""
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def markdown_to_html(text: str) -> str:
    """HTML of make_tables' markdown: ``#`` headings, pipe tables (first row the header,
    the ``|---|`` row dropped) and paragraphs of other lines."""
    out: List[str] = []
    table: List[List[str]] = []
    paragraph: List[str] = []

    def flush():
        if table:
            head, *body = table
            rows = [f"<tr>{''.join(f'<th>{inline(c)}</th>' for c in head)}</tr>"]
            rows += [f"<tr>{''.join(f'<td>{inline(c)}</td>' for c in row)}</tr>" for row in body]
            out.append('<div class="wide"><table class="tables">\n' + "\n".join(rows) +
                       "\n</table></div>")
            table.clear()
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in text.splitlines():
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if line.lstrip().startswith("|"):
            if paragraph:
                flush()
            if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?", line.strip()):
                table.append(table_cells(line))
        elif heading:
            flush()
            level = len(heading[1])
            out.append(f"<h{level}>{inline(heading[2].strip())}</h{level}>")
        elif line.strip():
            if table:
                flush()
            paragraph.append(line.strip())
        else:
            flush()
    flush()
    return "\n".join(out)


# ---------------------------------------------------------------- copied files

class Assets:
    """Files copied into the report dir, each content once: a second file with the
    same bytes (a cascade's enhancer output, say) gets the first one's path."""

    def __init__(self, root: Path):
        self.root = root
        self.by_digest: Dict[str, str] = {}
        self.spectrograms: Dict[str, str] = {}

    def copy(self, source: Path, rel: str) -> str:
        """Copy ``source`` to ``rel`` (under the report dir); returns the path used."""
        if not source.is_file():
            raise ValueError(f"{source}: no such file")
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if digest not in self.by_digest:
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            self.by_digest[digest] = rel
        return self.by_digest[digest]

    def spectrogram(self, audio_rel: str) -> str:
        """A PNG log spectrogram (0–8 kHz, 80 dB range) of a copied audio file, in
        ``SPECTROGRAM_COLOURS`` colours: a palette PNG is a fifth of a true-colour one."""
        if audio_rel not in self.spectrograms:
            spec = log_spectrogram(read_audio(self.root / audio_rel))
            fig = Figure(figsize=(SPECTROGRAM_PX[0] / 100, SPECTROGRAM_PX[1] / 100), dpi=100)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.imshow(spec, origin="lower", aspect="auto", interpolation="nearest",
                      cmap=colormaps["magma"].resampled(SPECTROGRAM_COLOURS),
                      vmin=spec.max() - 80, vmax=spec.max())
            ax.set_axis_off()
            canvas = FigureCanvasAgg(fig)
            canvas.draw()
            image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
            rel = "img/spectrogram/" + audio_rel[len("audio/"):-len(".wav")] + ".png"
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            image.quantize(SPECTROGRAM_COLOURS).save(self.root / rel, optimize=True)
            self.spectrograms[audio_rel] = rel
        return self.spectrograms[audio_rel]


def src(rel: str) -> str:
    """An attribute value for a relative path under the report dir."""
    return html.escape(quote(rel))


# ---------------------------------------------------------------- page parts

def scp_path(scp: Dict[str, str], utt: str, scp_file: Path) -> Optional[Path]:
    """The audio path of ``utt`` in an scp (None when absent); ValueError naming the
    scp when the file it names is missing."""
    if utt not in scp:
        return None
    path = Path(scp[utt])
    if not path.is_file():
        raise ValueError(f"{scp_file}: {utt}: {path}: no such file")
    return path


def audio_cells(assets: Assets, path: Optional[Path], rel: str) -> List[str]:
    """The player and spectrogram cells of one signal (dashes without one)."""
    if path is None:
        return [DASH, DASH]
    used = assets.copy(path, rel)
    player = (f'<div class="player"><audio controls preload="metadata" src="{src(used)}">'
              f'</audio><span class="duration"></span></div>')
    return [player, f'<img src="{src(assets.spectrogram(used))}" alt="spectrogram" '
                    f'width="{SPECTROGRAM_PX[0]}" height="{SPECTROGRAM_PX[1]}">']


def emotion_cell(decode: Optional[Path], utt: str, reference: Optional[str]) -> str:
    """Predicted emotion, marked right/wrong against ``reference``, with its class
    probabilities as bars; a dash for a run without SER output for ``utt``."""
    if decode is None or not (decode / "utt2emo_hyp").is_file():
        return DASH
    hyp = read_kv(decode / "utt2emo_hyp").get(utt)
    if hyp is None:
        return DASH
    mark = "" if reference is None else (' <span class="right">✓</span>' if hyp == reference
                                         else ' <span class="wrong">✗</span>')
    posteriors_file, classes_file = decode / "utt2posteriors", decode / "classes"
    if not (posteriors_file.is_file() and classes_file.is_file()):
        return f"<b>{html.escape(hyp)}</b>{mark}"
    classes = classes_file.read_text().split()
    probs = [float(p) for p in read_kv(posteriors_file)[utt].split()]
    if len(probs) != len(classes):
        raise ValueError(f"{posteriors_file}: {utt}: {len(probs)} probabilities for "
                         f"{len(classes)} classes in {classes_file}")
    bars = "".join(f'<div class="prob"><span class="bar" style="width:{60 * p:.0f}px"></span>'
                   f"{html.escape(c)} {p:.2f}</div>" for c, p in zip(classes, probs))
    return f'<b>{html.escape(hyp)}</b>{mark}<div class="probs">{bars}</div>'


def example(assets: Assets, name: str, data_dir: Path, utt: str, references: Dict[str, str],
            decodes: Dict[str, Optional[Path]]) -> str:
    """One utterance of a set: a row per signal (clean, noisy, each system's output)."""
    reference = references.get(utt)
    base = f"audio/{name}/{utt}/"
    rows = []
    for label, scp_file, emotion in (
            ("clean", data_dir / "spk1.scp", f"reference: <b>{html.escape(reference or DASH)}</b>"),
            ("noisy", data_dir / "wav.scp", DASH)):
        path = scp_path(read_kv(scp_file), utt, scp_file) if scp_file.is_file() else None
        rows.append([label, *audio_cells(assets, path, base + f"{label}.wav"), emotion])
    for system, decode in decodes.items():
        scp_file = decode / "enhanced.scp" if decode is not None else None
        path = (scp_path(read_kv(scp_file), utt, scp_file)
                if scp_file is not None and scp_file.is_file() else None)
        rows.append([f"{html.escape(system)} (enhanced)" if path else html.escape(system),
                     *audio_cells(assets, path, base + f"{system}.wav"),
                     emotion_cell(decode, utt, reference)])
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                     for row in rows)
    return (f'<h3 class="utt">{html.escape(utt)}</h3>\n<table>\n<tr><th>signal</th><th>listen</th>'
            f"<th>spectrogram</th><th>emotion</th></tr>\n{body}\n</table>")


def set_section(assets: Assets, name: str, title: str, anchor: str, data_root: Path,
                num_utts: int, decodes: Dict[str, Optional[Path]]) -> str:
    """A test set: its examples, then each system's confusion matrix of it."""
    data_dir = data_root / name
    if not (data_dir / "wav.scp").is_file():
        raise ValueError(f"{data_dir / 'wav.scp'}: no such file (the data dir of test set "
                         f"{name}; --data_root?)")
    utts = c_sorted(read_kv(data_dir / "wav.scp"))[:num_utts]
    references = read_kv(data_dir / "utt2emo") if (data_dir / "utt2emo").is_file() else {}
    parts = [f'<h2 id="{anchor}">{html.escape(title)}</h2>']
    parts += [example(assets, name, data_dir, utt, references, decodes) for utt in utts]
    figures = []
    for system, decode in decodes.items():
        if decode is not None and (decode / "confusion.png").is_file():
            rel = assets.copy(decode / "confusion.png", f"img/confusion/{system}/{name}.png")
            figures.append(f'<figure><img class="confusion" src="{src(rel)}" alt="confusion '
                           f'matrix"><figcaption>{html.escape(system)}</figcaption></figure>')
    if figures:
        parts.append("<details><summary>Confusion matrices (rows: reference, columns: "
                     "predicted)</summary>\n<div class=\"gallery\">" + "\n".join(figures) +
                     "</div></details>")
    return "\n".join(parts)


def usage_section(assets: Assets, systems: Dict[str, Path]) -> str:
    """Each system's expert_usage.png (``systems``: system -> exp dir), and which systems
    have none."""
    figures, without = [], []
    for system, exp in systems.items():
        if (exp / "expert_usage.png").is_file():
            rel = assets.copy(exp / "expert_usage.png", f"img/expert_usage/{system}.png")
            figures.append(f'<figure><img class="usage" src="{src(rel)}" alt="expert usage">'
                           f"<figcaption>{html.escape(system)}</figcaption></figure>")
        else:
            without.append(system)
    note = (f"<p>No expert usage (no gated experts): {html.escape(', '.join(without))}.</p>"
            if without else "")
    return ('<h2 id="expert-usage">Expert usage</h2>\n<p>Per task, the mean fraction of '
            "frames each expert received, one row per test set.</p>\n" + note +
            '<div class="gallery">' + "\n".join(figures) + "</div>")


def page(assets: Assets, tables_md: str, runs: Dict[str, dict], data_root: Path,
         num_utts: int) -> str:
    """The whole index.html of ``runs`` (``first_seeds``)."""
    systems = {system: exp_dir(run) for system, run in runs.items()}
    sets = {}
    for run in runs.values():
        for name, (scores, _) in run.items():
            sets.setdefault(name, scores)
    ordered = sorted(sets, key=lambda n: set_key(sets[n], n))
    anchors = {name: "set-" + re.sub(r"[^A-Za-z0-9_-]", "_", name) for name in ordered}
    sections = [set_section(assets, name, set_title(name, sets[name]), anchors[name], data_root,
                            num_utts, {system: run[name][1] if name in run else None
                                       for system, run in runs.items()})
                for name in ordered]
    toc = "\n".join(f'<li><a href="#{anchors[n]}">{html.escape(set_title(n, sets[n]))}</a></li>'
                    for n in ordered)
    seeds = ", ".join(f"{html.escape(s)}: <code>{html.escape(str(e))}</code>"
                      for s, e in systems.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MERIT report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>MERIT report</h1>
<p>Listening examples, tables and plots of {len(systems)} system(s). Audio, spectrograms,
predictions, confusion matrices and expert usage are from the <b>first seed</b> of each
system: {seeds}. The tables cover every seed given.</p>
<p>Examples: the first {num_utts} utterance(s) of each test set in sorted order.
Spectrograms: 0–8 kHz, 80 dB range, time left to right. Emotion: the prediction
(✓/✗ against the reference) and the class probabilities. A dash: the system has no such
output (no SE head, or no SER head).</p>
<nav><h2>Contents</h2>
<ul>
<li><a href="#tables">Tables</a></li>
{toc}
<li><a href="#expert-usage">Expert usage</a></li>
</ul></nav>
<h2 id="tables">Tables</h2>
{markdown_to_html(tables_md)}
{chr(10).join(sections)}
{usage_section(assets, systems)}
<script>{SCRIPT}</script>
</body>
</html>
"""


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    exp_dirs = [Path(p) for p in args.exp_dirs]
    out_dir = args.out_dir or exp_dirs[0].parent / "report"
    try:
        # exp/* holds the report dir itself and files (tables): passed over silently
        exp_dirs = [exp for exp in exp_dirs if exp.is_dir() and exp.resolve() != out_dir.resolve()]
        runs = first_seeds(exp_dirs)
        if not runs:
            raise ValueError("no exp dir with decode_*/scores.json given (run stage 6 first)")
        tables_md = (args.tables.read_text() if args.tables is not None
                     else run_make_tables(exp_dirs, args.baseline))
        with replacing_dir(out_dir) as tmp:
            assets = Assets(tmp)
            (tmp / "index.html").write_text(
                page(assets, tables_md, runs, args.data_root, args.num_utts), encoding="utf-8")
    except (OSError, ValueError) as err:
        print(f"make_report: error: {err}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    print(f"make_report: wrote {out_dir / 'index.html'} ({size / 1e6:.1f} MB with "
          f"{len(assets.by_digest)} copied and {len(assets.spectrograms)} drawn files)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
