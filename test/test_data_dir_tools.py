"""Tests for the Kaldi-style data-directory helpers in utils/."""
import re
from pathlib import Path

import pytest

SPEAKERS = ["spkA", "spkB", "spkC"]
UTTS = [f"{spk}_u{i}" for spk in SPEAKERS for i in (1, 2)]  # 6 utterances, sorted
EMOTIONS = ["happy", "sad", "angry", "neutral", "happy", "sad"]

VALIDATE = "utils/validate_data_dir.sh"
FIX = "utils/fix_data_dir.sh"


def write_lines(path: Path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def read_lines(path: Path):
    return path.read_text().splitlines()


def keys(path: Path):
    return [line.split()[0] for line in read_lines(path)]


def make_data_dir(root: Path, name="data", utts=UTTS):
    """A valid data dir: wav.scp (existing files), utt2spk, spk2utt, utt2emo, spk2gender."""
    d = root / name
    wavs = root / f"{name}_wav"
    d.mkdir(parents=True)
    wavs.mkdir()
    for utt in utts:
        (wavs / f"{utt}.wav").write_bytes(b"RIFF")
    write_lines(d / "wav.scp", [f"{u} {wavs / (u + '.wav')}" for u in utts])
    write_lines(d / "utt2spk", [f"{u} {u.split('_')[0]}" for u in utts])
    write_lines(d / "utt2emo", [f"{u} {EMOTIONS[i % 6]}" for i, u in enumerate(utts)])
    speakers = sorted({u.split("_")[0] for u in utts})
    write_lines(d / "spk2utt", [" ".join([s] + [u for u in utts if u.startswith(s + "_")])
                                for s in speakers])
    write_lines(d / "spk2gender", [f"{s} {'f' if i % 2 else 'm'}" for i, s in enumerate(speakers)])
    return d


def assert_valid(run_tool, d):
    r = run_tool([VALIDATE, d])
    assert r.returncode == 0, r.stderr
    assert f"Successfully validated data-directory {d}" in r.stdout


def assert_invalid(run_tool, d, *patterns):
    r = run_tool([VALIDATE, d])
    assert r.returncode == 1, r.stdout + r.stderr
    for pattern in patterns:
        assert re.search(pattern, r.stderr), f"{pattern!r} not in:\n{r.stderr}"
    return r


# ---------------------------------------------------------------- validate


def test_validate_good_dir(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    assert_valid(run_tool, d)
    r = run_tool([VALIDATE, "--check-audio", d])
    assert r.returncode == 0, r.stderr


@pytest.fixture
def unsorted_dir(tmp_path):
    d = make_data_dir(tmp_path)
    lines = read_lines(d / "utt2emo")
    lines[1], lines[3] = lines[3], lines[1]
    write_lines(d / "utt2emo", lines)
    return d


@pytest.fixture
def duplicate_dir(tmp_path):
    d = make_data_dir(tmp_path)
    lines = read_lines(d / "wav.scp")
    write_lines(d / "wav.scp", lines[:3] + [lines[2]] + lines[3:])  # spkB_u1 twice
    return d


@pytest.fixture
def missing_dir(tmp_path):
    d = make_data_dir(tmp_path)
    write_lines(d / "utt2emo", [l for l in read_lines(d / "utt2emo") if not l.startswith("spkB_u2 ")])
    return d


def test_validate_unsorted(run_tool, unsorted_dir):
    assert_invalid(run_tool, unsorted_dir, r"validate_data_dir\.sh: \S*utt2emo: not sorted")


def test_validate_duplicate_key(run_tool, duplicate_dir):
    assert_invalid(run_tool, duplicate_dir, r"\S*wav\.scp: duplicate key: 'spkB_u1'")


def test_validate_missing_utterance(run_tool, missing_dir):
    assert_invalid(run_tool, missing_dir, r"\S*utt2emo: 1 utterance\(s\) of utt2spk missing, e\.g\. 'spkB_u2'")


def test_validate_missing_required_file(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    (d / "utt2spk").unlink()
    assert_invalid(run_tool, d, r"utt2spk: file is missing")


def test_validate_check_audio(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    missing = tmp_path / "data_wav" / "spkC_u1.wav"
    missing.unlink()
    with open(d / "wav.scp") as f:  # a command entry is never checked
        lines = f.read().splitlines()
    lines[0] = "spkA_u1 sox /nonexistent.wav -t wav - |"
    write_lines(d / "wav.scp", lines)
    assert_valid(run_tool, d)  # without --check-audio the paths are not looked at
    r = run_tool([VALIDATE, "--check-audio", d])
    assert r.returncode == 1
    assert f"wav.scp: utterance spkC_u1: audio file not found: {missing}" in r.stderr
    assert "nonexistent" not in r.stderr


def test_validate_spk2utt_inconsistent(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    lines = read_lines(d / "spk2utt")
    lines[0] = "spkA spkA_u1"  # spkA_u2 no longer listed
    lines[1] = "spkB spkA_u2 spkB_u1 spkB_u2"  # ... but under the wrong speaker
    write_lines(d / "spk2utt", lines)
    assert_invalid(run_tool, d, r"spk2utt: disagrees with utt2spk .*spkA_u2")


def test_validate_speaker_file_and_short_line(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    write_lines(d / "spk2gender", ["spkA m", "spkB f"])
    with open(d / "utt2emo", "a") as f:
        f.write("zzz\n")
    assert_invalid(run_tool, d, r"spk2gender: 1 speaker\(s\) of utt2spk missing, e\.g\. 'spkC'",
                   r"utt2emo: fewer than 2 fields: line 7")


# ---------------------------------------------------------------- fix


def test_validate_kaldi_options(run_tool, tmp_path):
    """--no-wav, --no-text and --no-feats leave their file out of every check, as in Kaldi;
    --non-print and --no-spk-sort are accepted."""
    d = make_data_dir(tmp_path)
    write_lines(d / "text", [f"{u} hello" for u in UTTS[:-1]])           # one utterance short
    write_lines(d / "feats.scp", [f"{u} f.ark:{i}" for i, u in enumerate(UTTS[1:])])
    (d / "wav.scp").unlink()
    r = run_tool([VALIDATE, d])
    assert r.returncode == 1
    for problem in (r"wav\.scp: file is missing", r"/text: 1 utterance\(s\) of utt2spk missing",
                    r"feats\.scp: 1 utterance\(s\) of utt2spk missing"):
        assert re.search(problem, r.stderr), problem
    r = run_tool([VALIDATE, "--no-wav", "--no-text", "--no-feats", "--non-print",
                  "--no-spk-sort", "--check-audio", d])
    assert r.returncode == 0, r.stderr
    r = run_tool([VALIDATE, "--no-wav", "--no-text", d])
    assert r.returncode == 1 and "feats.scp" in r.stderr and "text" not in r.stderr


def test_espnet_style_fix_then_validate(run_tool, missing_dir):
    """What ESPnet recipes call: fix_data_dir.sh, then validate_data_dir.sh --no-feats."""
    assert run_tool([FIX, missing_dir]).returncode == 0
    r = run_tool([VALIDATE, "--no-feats", missing_dir])
    assert r.returncode == 0, r.stderr
    assert f"Successfully validated data-directory {missing_dir}" in r.stdout


def test_fix_missing_utterance(run_tool, missing_dir):
    d = missing_dir
    original = (d / "wav.scp").read_text()
    r = run_tool([FIX, d])
    assert r.returncode == 0, r.stderr
    assert "fix_data_dir.sh: kept 5 of 6 utterances (1 dropped)" in r.stdout
    assert "wav.scp: dropped 1 of 6 lines" in r.stdout
    assert "utt2emo: dropped" not in r.stdout
    assert_valid(run_tool, d)
    assert "spkB_u2" not in (d / "wav.scp").read_text()
    assert "spkB spkB_u1\n" in (d / "spk2utt").read_text()
    assert (d / ".backup" / "wav.scp").read_text() == original


def test_fix_unsorted(run_tool, unsorted_dir):
    r = run_tool([FIX, unsorted_dir])
    assert r.returncode == 0, r.stderr
    assert "kept 6 of 6 utterances (0 dropped)" in r.stdout
    assert keys(unsorted_dir / "utt2emo") == UTTS
    assert_valid(run_tool, unsorted_dir)


def test_fix_duplicate(run_tool, duplicate_dir):
    r = run_tool([FIX, duplicate_dir])
    assert r.returncode == 0, r.stderr
    assert "wav.scp: dropped 1 of 7 lines" in r.stdout
    assert keys(duplicate_dir / "wav.scp") == UTTS
    assert_valid(run_tool, duplicate_dir)


def test_fix_needs_wav_scp(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    (d / "wav.scp").unlink()
    r = run_tool([FIX, d])
    assert r.returncode == 1
    assert "wav.scp: file is missing" in r.stderr


# ---------------------------------------------------------------- split


def test_split_scp_by_lines(run_tool, tmp_path):
    lines = [f"utt{i:02d} /a/{i}.wav" for i in range(10)]
    write_lines(tmp_path / "in.scp", lines)
    outs = [tmp_path / f"out{k}.scp" for k in (1, 2, 3)]
    r = run_tool(["utils/split_scp.pl", tmp_path / "in.scp", *outs])
    assert r.returncode == 0, r.stderr
    pieces = [read_lines(o) for o in outs]
    assert sum(pieces, []) == lines
    sizes = [len(p) for p in pieces]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) > 0


def test_split_scp_by_speaker(run_tool, tmp_path):
    # 8 speakers with 1..3 utterances each (16 lines); speaker ids not in sorted order.
    counts = {"s5": 2, "s1": 1, "s7": 3, "s2": 2, "s8": 2, "s3": 1, "s6": 3, "s4": 2}
    utt2spk = [f"{spk}" for spk, c in counts.items() for _ in range(c)]
    utt2spk = [f"u{i:02d} {spk}" for i, spk in enumerate(utt2spk)]
    write_lines(tmp_path / "utt2spk", utt2spk)
    outs = [tmp_path / f"out{k}" for k in (1, 2, 3)]
    r = run_tool(["utils/split_scp.pl", f"--utt2spk={tmp_path / 'utt2spk'}", tmp_path / "utt2spk", *outs])
    assert r.returncode == 0, r.stderr
    pieces = [read_lines(o) for o in outs]
    assert sum(pieces, []) == utt2spk  # contiguous, order kept
    speaker_sets = [{l.split()[1] for l in p} for p in pieces]
    assert all(speaker_sets)
    assert not (speaker_sets[0] & speaker_sets[1] or speaker_sets[0] & speaker_sets[2]
                or speaker_sets[1] & speaker_sets[2])
    assert sorted(len(p) for p in pieces) == [5, 5, 6]  # best achievable balance
    # Cuts go where the running count is nearest an equal share: 4+3+3 -> 4/6, not 7/3.
    write_lines(tmp_path / "u2s", [f"u{i} {s}" for i, s in enumerate("aaaabbbccc")])
    r = run_tool(["utils/split_scp.pl", "--utt2spk", tmp_path / "u2s", tmp_path / "u2s", *outs[:2]])
    assert r.returncode == 0, r.stderr
    assert [len(read_lines(o)) for o in outs[:2]] == [4, 6]


def test_split_scp_errors(run_tool, tmp_path):
    write_lines(tmp_path / "in.scp", ["a x", "b y"])
    write_lines(tmp_path / "u2s", ["a s1", "b s1"])
    outs = [tmp_path / f"o{k}" for k in (1, 2, 3)]
    r = run_tool(["utils/split_scp.pl", tmp_path / "in.scp", *outs])
    assert r.returncode != 0
    assert "cannot split" in r.stderr and "2 lines" in r.stderr and "3 pieces" in r.stderr
    r = run_tool(["utils/split_scp.pl", "--utt2spk", tmp_path / "u2s", tmp_path / "in.scp", *outs[:2]])
    assert r.returncode != 0
    assert "only 1 speakers" in r.stderr


@pytest.mark.parametrize("per_utt", [False, True])
def test_split_data(run_tool, tmp_path, per_utt):
    d = make_data_dir(tmp_path)
    args = ["utils/split_data.sh"] + (["--per-utt"] if per_utt else []) + [d, 3]
    r = run_tool(args)
    assert r.returncode == 0, r.stderr
    split = d / ("split3utt" if per_utt else "split3")
    all_utts = []
    for k in (1, 2, 3):
        piece = split / str(k)
        assert_valid(run_tool, piece)
        assert sorted(p.name for p in piece.iterdir()) == ["spk2gender", "spk2utt", "utt2emo", "utt2spk", "wav.scp"]
        all_utts += keys(piece / "utt2spk")
        if not per_utt:
            assert len(read_lines(piece / "spk2utt")) == 1  # 3 speakers -> one each
    assert all_utts == UTTS


# ---------------------------------------------------------------- small tools


def test_filter_scp(run_tool, tmp_path):
    write_lines(tmp_path / "ids", ["b", "d extra fields"])
    write_lines(tmp_path / "in", ["a 1", "b 2", "c 3", "d 4"])
    write_lines(tmp_path / "byspk", ["u1 b", "u2 a", "u3 d"])
    r = run_tool(["utils/filter_scp.pl", tmp_path / "ids", tmp_path / "in"])
    assert (r.returncode, r.stdout) == (0, "b 2\nd 4\n")
    r = run_tool(["utils/filter_scp.pl", "--exclude", tmp_path / "ids", tmp_path / "in"])
    assert (r.returncode, r.stdout) == (0, "a 1\nc 3\n")
    r = run_tool(["utils/filter_scp.pl", "-f", "2", tmp_path / "ids", tmp_path / "byspk"])
    assert (r.returncode, r.stdout) == (0, "u1 b\nu3 d\n")
    r = run_tool(["utils/filter_scp.pl", "--exclude", "-f", "2", tmp_path / "ids"], input="u1 b\nu2 a\n")
    assert (r.returncode, r.stdout) == (0, "u2 a\n")
    r = run_tool(["utils/filter_scp.pl"])
    assert r.returncode != 0 and "Usage" in r.stderr


def test_utt2spk_spk2utt_round_trip(run_tool):
    utt2spk = "u1 s2\nu2 s1\nu3 s2\nu4 s3\nu5 s1\n"
    r = run_tool(["utils/utt2spk_to_spk2utt.pl"], input=utt2spk)
    assert (r.returncode, r.stdout) == (0, "s2 u1 u3\ns1 u2 u5\ns3 u4\n")
    back = run_tool(["utils/spk2utt_to_utt2spk.pl"], input=r.stdout)
    assert back.returncode == 0
    assert sorted(back.stdout.splitlines()) == sorted(utt2spk.splitlines())
    bad = run_tool(["utils/utt2spk_to_spk2utt.pl"], input="u1 s1 extra\n")
    assert bad.returncode != 0 and "line 1" in bad.stderr


def test_subset_by_count(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    dest = tmp_path / "sub"
    r = run_tool(["utils/subset_data_dir.sh", d, 3, dest])
    assert r.returncode == 0, r.stderr
    assert keys(dest / "utt2spk") == UTTS[:3]
    assert keys(dest / "wav.scp") == keys(dest / "utt2emo") == UTTS[:3]
    assert read_lines(dest / "spk2utt") == ["spkA spkA_u1 spkA_u2", "spkB spkB_u1"]
    assert keys(dest / "spk2gender") == ["spkA", "spkB"]
    assert_valid(run_tool, dest)
    r = run_tool(["utils/subset_data_dir.sh", d, 7, tmp_path / "sub7"])
    assert r.returncode == 1 and "only 6" in r.stderr


def test_subset_by_lists(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    write_lines(tmp_path / "spks", ["spkC", "spkA"])
    r = run_tool(["utils/subset_data_dir.sh", d, "--spk-list", tmp_path / "spks", tmp_path / "by_spk"])
    assert r.returncode == 0, r.stderr
    assert keys(tmp_path / "by_spk" / "utt2emo") == ["spkA_u1", "spkA_u2", "spkC_u1", "spkC_u2"]
    assert keys(tmp_path / "by_spk" / "spk2gender") == ["spkA", "spkC"]
    assert_valid(run_tool, tmp_path / "by_spk")
    write_lines(tmp_path / "utts", ["spkC_u2", "spkB_u1"])
    r = run_tool(["utils/subset_data_dir.sh", d, "--utt-list", tmp_path / "utts", tmp_path / "by_utt"])
    assert r.returncode == 0, r.stderr
    assert keys(tmp_path / "by_utt" / "wav.scp") == ["spkB_u1", "spkC_u2"]
    assert_valid(run_tool, tmp_path / "by_utt")


def test_combine(run_tool, tmp_path):
    a = make_data_dir(tmp_path, "a", UTTS[:3])
    b = make_data_dir(tmp_path, "b", UTTS[3:])
    write_lines(b / "text", [f"{u} hello" for u in UTTS[3:]])  # only in b
    dest = tmp_path / "ab"
    r = run_tool(["utils/combine_data.sh", dest, b, a])
    assert r.returncode == 0, r.stderr
    assert "text" in r.stderr and "not combining" in r.stderr
    assert not (dest / "text").exists()
    for f in ("utt2spk", "wav.scp", "utt2emo"):
        assert keys(dest / f) == UTTS
    assert keys(dest / "spk2gender") == SPEAKERS  # spkB is in both sources, kept once
    assert read_lines(dest / "spk2utt")[1] == "spkB spkB_u1 spkB_u2"
    assert_valid(run_tool, dest)

    c = make_data_dir(tmp_path, "c", UTTS[2:4])
    r = run_tool(["utils/combine_data.sh", tmp_path / "bad", a, c])
    assert r.returncode == 1
    assert "duplicate utterance id 'spkB_u1'" in r.stderr


def test_copy_with_prefixes(run_tool, tmp_path):
    d = make_data_dir(tmp_path)
    dest = tmp_path / "copy"
    r = run_tool(["utils/copy_data_dir.sh", "--utt-prefix", "n1-", "--spk-prefix", "n1-",
                  "--utt-suffix", "_x", d, dest])
    assert r.returncode == 0, r.stderr
    new_utts = [f"n1-{u}_x" for u in UTTS]
    for f in ("utt2spk", "wav.scp", "utt2emo"):
        assert keys(dest / f) == new_utts
    assert read_lines(dest / "utt2spk")[0] == "n1-spkA_u1_x n1-spkA"
    assert keys(dest / "spk2gender") == [f"n1-{s}" for s in SPEAKERS]
    assert read_lines(dest / "spk2utt")[2] == "n1-spkC n1-spkC_u1_x n1-spkC_u2_x"
    # values are untouched
    assert [l.split()[1] for l in read_lines(dest / "wav.scp")] == \
        [l.split()[1] for l in read_lines(d / "wav.scp")]
    assert_valid(run_tool, dest)
    r = run_tool([VALIDATE, "--check-audio", dest])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("tool", [
    "utils/utt2spk_to_spk2utt.pl", "utils/spk2utt_to_utt2spk.pl", "utils/filter_scp.pl",
    "utils/split_scp.pl", "utils/split_data.sh", "utils/validate_data_dir.sh",
    "utils/fix_data_dir.sh", "utils/subset_data_dir.sh", "utils/combine_data.sh",
    "utils/copy_data_dir.sh",
])
def test_help(run_tool, tool):
    r = run_tool([tool, "--help"])
    assert r.returncode == 0 and "Usage:" in r.stdout


def test_data_dir_files_classifies_by_name(run_tool, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("wav.scp", "spk1.scp", "utt2spk", "utt2emo", "spk2utt", "spk2gender",
                 "feats_shape", "text", "spk2-utt3.wav", "utt2.bak", "notes.txt"):
        (data / name).write_text("")
    (data / "split2").mkdir()
    listed = {}
    for kind in ("utt", "spk", "all"):
        res = run_tool(["utils/data_dir_files.sh", data, kind])
        assert res.returncode == 0, res.stderr
        listed[kind] = res.stdout.split()
    assert listed["utt"] == ["feats_shape", "spk1.scp", "text", "utt2emo", "utt2spk", "wav.scp"]
    assert listed["spk"] == ["spk2gender"]
    assert listed["all"] == sorted(listed["utt"] + ["spk2gender", "spk2utt"])
    res = run_tool(["utils/data_dir_files.sh", data, "speakers"])
    assert res.returncode == 1 and "Usage" in res.stderr
