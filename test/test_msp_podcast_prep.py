"""merit.data.msp_podcast on a generated tree in the real release layout."""
import sys

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import make_msp_tree, speechlike, write_labels
from merit.bin import prep_msp_podcast
from merit.data import msp_podcast
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv

# The generated tree: speaker s (1..6) has utterances i = 0..9 of EmoClass
# "ASHUFDCNOX"[(s + i) % 10]; speakers 1 and 6 are Train, 2 Development,
# 3..5 Test1..Test3.  These are the four-class data dirs it must give, by hand.
UTT2EMO = {
    "train": {"MSP-PODCAST_0001_0000": "S", "MSP-PODCAST_0001_0001": "H",
              "MSP-PODCAST_0001_0006": "N", "MSP-PODCAST_0001_0009": "A",
              "MSP-PODCAST_0006_0001": "N", "MSP-PODCAST_0006_0004": "A",
              "MSP-PODCAST_0006_0005": "S", "MSP-PODCAST_0006_0006": "H"},
    "dev": {"MSP-PODCAST_0002_0000": "H", "MSP-PODCAST_0002_0005": "N",
            "MSP-PODCAST_0002_0008": "A", "MSP-PODCAST_0002_0009": "S"},
    "test1": {"MSP-PODCAST_0003_0004": "N", "MSP-PODCAST_0003_0007": "A",
              "MSP-PODCAST_0003_0008": "S", "MSP-PODCAST_0003_0009": "H"},
    "test2": {"MSP-PODCAST_0004_0003": "N", "MSP-PODCAST_0004_0006": "A",
              "MSP-PODCAST_0004_0007": "S", "MSP-PODCAST_0004_0008": "H"},
    "test3": {"MSP-PODCAST_0005_0002": "N", "MSP-PODCAST_0005_0005": "A",
              "MSP-PODCAST_0005_0006": "S", "MSP-PODCAST_0005_0007": "H"},
}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "MSP-Podcast"
    rows = make_msp_tree(root)
    return root, rows


def test_four_classes_split_and_counts(tree, tmp_path, run_tool):
    root, _ = tree
    out = tmp_path / "data"
    report = msp_podcast.prepare(root, out)
    assert report.kept == {"train": 8, "dev": 4, "test1": 4, "test2": 4, "test3": 4}
    # each speaker has each of the other six codes once
    assert report.dropped_class == {"U": 6, "F": 6, "D": 6, "C": 6, "O": 6, "X": 6}
    for name, utt2emo in UTT2EMO.items():
        res = run_tool(["utils/validate_data_dir.sh", "--check-audio", out / name])
        assert res.returncode == 0, res.stderr
        assert read_kv(out / name / "utt2emo") == utt2emo
    utt2spk = read_kv(out / "train" / "utt2spk")
    # SpkrID "Unknown" → the utterance is its own speaker
    assert utt2spk["MSP-PODCAST_0001_0000"] == "MSP-PODCAST_0001_0000"
    assert utt2spk["MSP-PODCAST_0006_0001"] == "spk6"
    utt2gender = read_kv(out / "train" / "utt2gender")  # odd speakers are Female
    assert (utt2gender["MSP-PODCAST_0001_0001"], utt2gender["MSP-PODCAST_0006_0001"]) == ("f", "m")


def test_eight_classes(tree, tmp_path):
    root, _ = tree
    classes = msp_podcast.parse_classes("A,S,H,U,F,D,C,N")
    assert classes == ["A", "S", "H", "U", "F", "D", "C", "N"]
    report = msp_podcast.prepare(root, tmp_path / "data", classes)
    assert report.kept == {"train": 16, "dev": 8, "test1": 8, "test2": 8, "test3": 8}
    assert report.dropped_class == {"O": 6, "X": 6}
    assert read_kv(tmp_path / "data" / "test2" / "utt2emo")["MSP-PODCAST_0004_0000"] == "F"


def test_bad_class_list():
    with pytest.raises(ValueError, match="unknown code"):
        msp_podcast.parse_classes("A,S,Q")


def test_missing_audio_named_or_skipped(tree, tmp_path):
    root, rows = tree
    victim = next(r["FileName"] for r in rows if r["EmoClass"] in "ASHN")
    (root / "Audios" / victim).unlink()
    with pytest.raises(msp_podcast.CorpusError, match=f"{victim}: missing"):
        msp_podcast.prepare(root, tmp_path / "data")
    assert not (tmp_path / "data" / "train").exists()
    report = msp_podcast.prepare(root, tmp_path / "data", skip_missing=True)
    assert report.skipped_missing == [victim]
    assert sum(report.kept.values()) == 24 - 1


@pytest.mark.parametrize("junk", [b"RIFF\x00\x00not really a wave file",
                                  # starts like an MP3 frame: libsndfile's reader then says
                                  # "not a regular file (possibly a pipe?)"
                                  b"\xff\xfb" + bytes(range(256)) * 4])
def test_corrupted_audio_named(tree, tmp_path, junk):
    root, rows = tree
    victim = next(r["FileName"] for r in rows if r["EmoClass"] in "ASHN")
    (root / "Audios" / victim).write_bytes(junk)
    with pytest.raises(msp_podcast.CorpusError) as err:
        msp_podcast.prepare(root, tmp_path / "data")
    message = str(err.value)
    assert f"{victim}: not a readable audio file (soundfile: " in message
    assert "labels_consensus.csv line 2;" in message and "pipe" not in message
    report = msp_podcast.prepare(root, tmp_path / "data", skip_missing=True)
    assert report.skipped_unreadable == [victim]


def test_truncated_wav_named_or_skipped(tree, tmp_path):
    """libsndfile reads a WAV cut short as a shorter file, without a word."""
    root, rows = tree
    victim = next(r["FileName"] for r in rows if r["EmoClass"] in "ASHN")
    path = root / "Audios" / victim
    path.write_bytes(path.read_bytes()[:5000])  # 0.5 s declared, 0.15 s left
    with pytest.raises(msp_podcast.CorpusError,
                       match=f"{victim}: truncated WAV: its header declares 8000 samples "
                             r"\(0.50 s\) but the file holds 2478 \(0.15 s\)"):
        msp_podcast.prepare(root, tmp_path / "data")
    report = msp_podcast.prepare(root, tmp_path / "data", skip_missing=True)
    assert report.skipped_unreadable == [victim]


def test_file_listed_under_two_splits_is_leakage(tree, tmp_path):
    root, rows = tree
    train = next(r for r in rows if r["Split_Set"] == "Train" and r["EmoClass"] in "ASHN")
    write_labels(root, rows + [{**train, "Split_Set": "Test1"}])
    line = 2 + rows.index(train)  # header is line 1
    with pytest.raises(msp_podcast.CorpusError) as err:
        msp_podcast.prepare(root, tmp_path / "data")
    assert (f"1 FileName(s) listed under two splits, which would put the same audio in both "
            f"(train/test leakage): lines {line} and {len(rows) + 2}: {train['FileName']} "
            "under Train and Test1") in str(err.value)
    assert not (tmp_path / "data").exists()
    # twice in one split stays an error too
    write_labels(root, rows + [train])
    with pytest.raises(msp_podcast.CorpusError,
                       match=f"lines {line} and {len(rows) + 2}: {train['FileName']} twice under Train"):
        msp_podcast.prepare(root, tmp_path / "data")


def test_file_name_with_whitespace_is_named(tree, tmp_path):
    root, rows = tree
    row = next(r for r in rows if r["EmoClass"] in "ASHN")
    spaced = row["FileName"].replace("_", " ", 1)
    (root / "Audios" / row["FileName"]).rename(root / "Audios" / spaced)
    row["FileName"] = spaced
    write_labels(root, rows)
    with pytest.raises(msp_podcast.CorpusError,
                       match=f"labels_consensus.csv line {2 + rows.index(row)}: FileName "
                             f"'{spaced}' contains whitespace"):
        msp_podcast.prepare(root, tmp_path / "data")


def test_durations_out_of_bounds(tree, tmp_path, caplog):
    root, rows = tree
    short, long = [r["FileName"] for r in rows if r["Split_Set"] == "Train" and r["EmoClass"] in "ASHN"][:2]
    sf.write(str(root / "Audios" / short), speechlike(0.05, 150, 1), 16000)
    sf.write(str(root / "Audios" / long), speechlike(31.0, 150, 2), 16000)
    with pytest.raises(msp_podcast.CorpusError) as err:
        msp_podcast.prepare(root, tmp_path / "data")
    message = str(err.value)
    assert ("2 utterance(s) outside 0.5-30 s: 1 shorter than 0.5 s, e.g. "
            f"{short} (0.05 s, line 2); 1 longer than 30 s, e.g. {long} (31.00 s, line 3)") in message
    assert "--duration_action skip" in message and not (tmp_path / "data").exists()

    report = msp_podcast.prepare(root, tmp_path / "data", duration_action="skip")
    assert [x[0] for x in report.out_of_bounds] == [short, long]
    assert report.kept["train"] == 8 - 2

    caplog.set_level("WARNING")
    report = msp_podcast.prepare(root, tmp_path / "data", duration_action="warn")
    assert report.kept["train"] == 8
    assert "kept (--duration_action warn) 2 utterance(s) outside" in caplog.text

    report = msp_podcast.prepare(root, tmp_path / "data", min_duration=0.01, max_duration=40)
    assert report.kept["train"] == 8 and not report.out_of_bounds


def _converted(out, utt):
    return read_audio(read_kv(out / "train" / "wav.scp")[utt])


def test_conversion_cache_follows_a_rewritten_source(tree, tmp_path):
    root, _ = tree
    victim = "MSP-PODCAST_0001_0000"  # in train
    source = root / "Audios" / f"{victim}.wav"
    out = tmp_path / "data"
    sf.write(str(source), speechlike(0.6, 150, 1, rate=8000), 8000)
    msp_podcast.prepare(root, out)
    first = _converted(out, victim)
    # same length (so the same size), other content
    sf.write(str(source), speechlike(0.6, 310, 2, rate=8000), 8000)
    msp_podcast.prepare(root, out)
    second = _converted(out, victim)
    assert np.allclose(second, read_audio(source, resample=True), atol=1e-4)
    assert not np.allclose(first, second, atol=1e-2)


def test_conversion_cache_follows_the_corpus_root(tree, tmp_path):
    """Another release root with the same file names gets its own 16 kHz copies."""
    root, _ = tree
    victim = "MSP-PODCAST_0001_0000"  # in train
    out = tmp_path / "data"
    sf.write(str(root / "Audios" / f"{victim}.wav"), speechlike(0.6, 150, 1, rate=8000), 8000)
    msp_podcast.prepare(root, out)
    other = tmp_path / "other" / "MSP-Podcast"
    make_msp_tree(other)
    sf.write(str(other / "Audios" / f"{victim}.wav"), speechlike(0.6, 220, 3, rate=8000), 8000)
    msp_podcast.prepare(other, out)
    assert np.allclose(_converted(out, victim),
                       read_audio(other / "Audios" / f"{victim}.wav", resample=True), atol=1e-4)


def test_cli_passes_duration_options(tree, tmp_path, capsys):
    root, rows = tree
    short = next(r["FileName"] for r in rows if r["Split_Set"] == "Train" and r["EmoClass"] in "ASHN")
    sf.write(str(root / "Audios" / short), speechlike(0.3, 150, 1), 16000)
    argv = ["--corpus", str(root), "--out", str(tmp_path / "data")]
    assert prep_msp_podcast.main(argv) == 1
    assert f"1 shorter than 0.5 s, e.g. {short}" in capsys.readouterr().err
    assert prep_msp_podcast.main(argv + ["--min_duration", "0.25"]) == 0
    assert prep_msp_podcast.main(argv + ["--duration_action", "skip"]) == 0
    assert short.replace(".wav", "") not in read_kv(tmp_path / "data" / "train" / "wav.scp")


def test_other_rates_are_converted(tree, tmp_path):
    root, _ = tree
    victim = "MSP-PODCAST_0001_0000"  # in train
    sf.write(str(root / "Audios" / f"{victim}.wav"), speechlike(0.5, 150, 1, rate=8000), 8000)
    out = tmp_path / "data"
    report = msp_podcast.prepare(root, out)
    assert report.resampled == [f"{victim}.wav"]
    path = read_kv(out / "train" / "wav.scp")[victim]
    info = sf.info(path)
    assert (info.samplerate, info.channels) == (16000, 1)
    assert info.frames == 8000  # 0.5 s at 16 kHz


def test_broken_labels_are_named(tree, tmp_path):
    root, rows = tree
    rows[3]["Split_Set"] = "Validation"
    write_labels(root, rows)
    with pytest.raises(msp_podcast.CorpusError, match="unknown Split_Set 'Validation'"):
        msp_podcast.prepare(root, tmp_path / "data")
    rows = [{k: v for k, v in r.items() if k != "SpkrID"} for r in rows]
    write_labels(root, rows)
    with pytest.raises(msp_podcast.CorpusError, match="missing column.*SpkrID"):
        msp_podcast.prepare(root, tmp_path / "data")


def test_cli_reports_errors(tmp_path, run_tool):
    res = run_tool([sys.executable, "-m", "merit.bin.prep_msp_podcast", "--corpus", tmp_path / "nowhere",
                    "--out", tmp_path / "data"])
    assert res.returncode == 1
    assert "nowhere/Audios: audio folder not found" in res.stderr
