"""merit-infer over a folder as a user would meet one: a stereo 48 kHz file, a 0.3 s file,
a corrupt file and a 5-minute recording. The good files get results, each bad one a
reason naming it, and the exit status says that something failed."""
import contextlib
import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf

from merit.bin import merit_infer

CLASSES = ["A", "S", "H", "N"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings") / "calls"
    (root / "long").mkdir(parents=True)
    rng = np.random.default_rng(7)
    sf.write(str(root / "stereo48k.wav"), (0.1 * rng.standard_normal((3 * 48000, 2))).astype(np.float32), 48000)
    sf.write(str(root / "short.wav"), (0.1 * rng.standard_normal(4800)).astype(np.float32), 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    t = np.arange(300 * 16000) / 16000  # 5 minutes: a tone that wanders, in noise
    five_min = 0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(t / 7)) * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(str(root / "long" / "five_min.flac"), five_min.astype(np.float32), 16000)
    return root


@pytest.fixture(scope="module")
def run(folder, tiny_model, tmp_path_factory):
    """merit-infer on the folder, once for the tests that read its outputs."""
    out = tmp_path_factory.mktemp("out")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = merit_infer.main([str(folder), "--model", str(tiny_model), "--out_dir", str(out)])
    return status, stdout.getvalue(), stderr.getvalue(), out


def test_good_files_get_results_and_bad_ones_a_reason(run, folder):
    status, stdout, stderr, out = run
    assert status == 1
    corrupt = folder / "corrupt.wav"
    reason = f"{corrupt}: not a readable audio file (soundfile: Format not recognised.)"
    assert f"merit-infer: error: {reason}" in stderr.splitlines()
    assert stderr.splitlines()[-2:] == ["merit-infer: 1 of 4 file(s) failed:", f"  {reason}"]
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        str(folder / "long" / "five_min.flac"), str(folder / "short.wav"), str(folder / "stereo48k.wav")]
    assert lines[0].startswith(f"{folder / 'long' / 'five_min.flac'}: 300.00 s, emotion ")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert records[0] == {"file": str(corrupt), "error": reason}
    for record in records[1:]:
        assert record["emotion"] == max(record["probabilities"], key=record["probabilities"].get)
        assert abs(sum(record["probabilities"].values()) - 1) < 1e-5
        for fractions in record["expert_usage"].values():
            assert abs(sum(fractions) - 1) < 1e-5
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["file"], r["duration"]) for r in rows] == [
        (str(folder / "long" / "five_min.flac"), "300.000"), (str(folder / "short.wav"), "0.300"),
        (str(folder / "stereo48k.wav"), "3.000")]
    assert not list(out.glob("*.part"))


def test_enhanced_audio_mirrors_the_folder_at_16k(run):
    out = run[3]
    lengths = {str(p.relative_to(out / "enhanced")): sf.info(str(p)) for p in (out / "enhanced").rglob("*.wav")}
    assert sorted(lengths) == ["calls/long/five_min.wav", "calls/short.wav", "calls/stereo48k.wav"]
    assert {name: (i.samplerate, i.channels, i.frames) for name, i in lengths.items()} == {
        "calls/long/five_min.wav": (16000, 1, 300 * 16000), "calls/short.wav": (16000, 1, 4800),
        "calls/stereo48k.wav": (16000, 1, 3 * 16000)}


def test_segments_cover_each_file(run, folder):
    rows = list(csv.DictReader((run[3] / "segments.csv").open()))
    five = [r for r in rows if r["file"].endswith("five_min.flac")]
    assert len(five) > 10
    assert float(five[0]["start"]) == 0 and float(five[-1]["end"]) == 300
    for before, after in zip(five, five[1:]):
        assert float(before["start"]) < float(after["start"]) <= float(before["end"])
    short = [r for r in rows if r["file"].endswith("short.wav")]
    assert [(float(r["start"]), float(r["end"])) for r in short] == [(0.0, 0.3)]
    assert all(r["emotion"] in CLASSES for r in rows)


def test_a_higher_floor_refuses_the_short_file_and_fail_fast_stops(folder, tiny_model, capsys):
    # 0.3 s passes the default floor (merit.inference.MIN_INPUT_SECONDS, 0.25 s)
    assert merit_infer.main([str(folder / "short.wav"), "--model", str(tiny_model),
                             "--min_duration", "0.5"]) == 1
    assert "short.wav: 0.300 s of audio (4800 samples at 16 kHz) is shorter than the 0.5 s" in \
        capsys.readouterr().err
    # the corrupt file comes first: nothing after it is read, no model is loaded
    assert merit_infer.main([str(folder), "--model", str(folder / "no_model"), "--fail_fast"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "corrupt.wav: not a readable audio file" in captured.err
    assert "no_model" not in captured.err


def test_wav_scp_and_stdin_lists(folder, tiny_model, tmp_path, monkeypatch, capsys):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"call-1 {folder / 'stereo48k.wav'}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{folder / 'short.wav'}\n"))
    assert merit_infer.main([str(scp), "-", "--model", str(tiny_model)]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
        "call-1", str(folder / "short.wav")]


def test_files_inferred_together_give_the_same_bytes_as_one_at_a_time(tiny_model, tmp_path,
                                                                      monkeypatch):
    """Short files of several lengths, rates and channel counts around a windowed one:
    every output file and line is the same at any --batch_seconds, and the short files
    did go through the model together."""
    from merit.inference import Speech2Merit

    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(3)
    for name, seconds, rate, channels in [("a", 2.0, 16000, 1), ("b", 0.6, 8000, 1),
                                          ("c", 3.1, 44100, 2), ("d", 45.0, 16000, 1),
                                          ("e", 1.2, 16000, 1), ("f", 2.5, 48000, 1)]:
        sf.write(str(clips / f"{name}.wav"), (0.1 * rng.standard_normal(
            (round(seconds * rate), channels))).astype(np.float32), rate)
    sizes = []
    batch = Speech2Merit.batch

    def recording_batch(self, noisy, feats=None):
        sizes.append(len(noisy))
        return batch(self, noisy, feats)

    monkeypatch.setattr(Speech2Merit, "batch", recording_batch)
    outputs = {}
    for seconds in ("0", "5", "60"):
        out = tmp_path / f"out_{seconds}"
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            assert merit_infer.main([str(clips), "--model", str(tiny_model), "--out_dir", str(out),
                                     "--batch_seconds", seconds]) == 0
        outputs[seconds] = {str(p.relative_to(out)): p.read_bytes().replace(bytes(out), b"OUT")
                            for p in sorted(out.rglob("*")) if p.is_file()}
        outputs[seconds]["stdout"] = stdout.getvalue().encode()
        if seconds == "5":  # a, b (2 x 2 s); c; e, f (2 x 2.5 s)
            assert sorted(s for s in sizes if s > 1) == [2, 2]
        if seconds == "60":  # a, b, c; e, f (d, windowed, between them)
            assert sorted(s for s in sizes if s > 1) == [2, 3]
        sizes.clear()
    assert len(outputs["0"]) == 4 + 6  # results.jsonl/.csv, segments.csv, stdout, 6 WAVs
    assert outputs["5"] == outputs["0"]
    assert outputs["60"] == outputs["0"]
