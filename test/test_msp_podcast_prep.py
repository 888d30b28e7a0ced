"""merit.data.msp_podcast on a generated tree in the real release layout."""
import sys

import pytest
import soundfile as sf

from fake_corpora import make_msp_tree, speechlike, write_labels
from merit.data import msp_podcast
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


def test_corrupted_audio_named(tree, tmp_path):
    root, rows = tree
    victim = next(r["FileName"] for r in rows if r["EmoClass"] in "ASHN")
    (root / "Audios" / victim).write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(msp_podcast.CorpusError, match=f"{victim}: unreadable"):
        msp_podcast.prepare(root, tmp_path / "data")
    report = msp_podcast.prepare(root, tmp_path / "data", skip_missing=True)
    assert report.skipped_unreadable == [victim]


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
