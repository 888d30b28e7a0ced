"""merit.data.msp_podcast on a generated tree in the real release layout."""
from collections import Counter

import pytest
import soundfile as sf

from fake_corpora import EMO_CODES, make_msp_tree, speechlike, write_labels
from merit.data import msp_podcast
from merit.data.datadir import read_kv

SETS = {"Train": "train", "Development": "dev", "Test1": "test1", "Test2": "test2", "Test3": "test3"}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "MSP-Podcast"
    rows = make_msp_tree(root)
    return root, rows


def expected_counts(rows, classes):
    return Counter(SETS[r["Split_Set"]] for r in rows if r["EmoClass"] in classes)


def test_four_classes_split_and_counts(tree, tmp_path, run_tool):
    root, rows = tree
    out = tmp_path / "data"
    report = msp_podcast.prepare(root, out)
    assert report.kept == dict(expected_counts(rows, "ASHN"))
    assert set(report.kept) == {"train", "dev", "test1", "test2", "test3"}
    assert report.dropped_class == Counter(r["EmoClass"] for r in rows if r["EmoClass"] not in "ASHN")
    for name in report.kept:
        res = run_tool(["utils/validate_data_dir.sh", "--check-audio", out / name])
        assert res.returncode == 0, res.stderr
        emos = set(read_kv(out / name / "utt2emo").values())
        assert emos <= set("ASHN")
    utt2spk = read_kv(out / "train" / "utt2spk")
    # SpkrID "Unknown" → the utterance is its own speaker
    assert utt2spk["MSP-PODCAST_0001_0000"] == "MSP-PODCAST_0001_0000"
    assert set(read_kv(out / "train" / "utt2gender").values()) <= {"m", "f"}


def test_eight_classes(tree, tmp_path):
    root, rows = tree
    classes = msp_podcast.parse_classes("A,S,H,U,F,D,C,N")
    report = msp_podcast.prepare(root, tmp_path / "data", classes)
    assert report.kept == dict(expected_counts(rows, classes))
    assert set(report.dropped_class) == {"O", "X"}


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
    assert sum(report.kept.values()) == sum(expected_counts(rows, "ASHN").values()) - 1


def test_corrupted_audio_named(tree, tmp_path):
    root, rows = tree
    victim = next(r["FileName"] for r in rows if r["EmoClass"] in "ASHN")
    (root / "Audios" / victim).write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(msp_podcast.CorpusError, match=f"{victim}: unreadable"):
        msp_podcast.prepare(root, tmp_path / "data")
    report = msp_podcast.prepare(root, tmp_path / "data", skip_missing=True)
    assert report.skipped_unreadable == [victim]


def test_other_rates_are_converted(tree, tmp_path):
    root, rows = tree
    victim = next(r for r in rows if r["EmoClass"] in "ASHN")
    sf.write(str(root / "Audios" / victim["FileName"]), speechlike(0.5, 150, 1, rate=8000), 8000)
    out = tmp_path / "data"
    report = msp_podcast.prepare(root, out)
    assert report.resampled == [victim["FileName"]]
    path = read_kv(out / SETS[victim["Split_Set"]] / "wav.scp")[victim["FileName"][:-4]]
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
    res = run_tool(["python3", "-m", "merit.bin.prep_msp_podcast", "--corpus", tmp_path / "nowhere",
                    "--out", tmp_path / "data"])
    assert res.returncode == 1
    assert "nowhere/Audios: audio folder not found" in res.stderr


def test_every_code_present_in_fixture(tree):
    _, rows = tree
    assert {r["EmoClass"] for r in rows} == set(EMO_CODES)
