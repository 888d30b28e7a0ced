"""What merit-infer reads: files, folders, wav.scp lists and stdin, with bad lists refused
before any model loads; and the progress line's counts and ETA."""
import io
from pathlib import Path, PurePath

import numpy as np
import pytest
import soundfile as sf

from merit.data.audio_inputs import gather_inputs
from merit.utils.progress import Progress


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(1600, np.float32), 16000)
    return path


def test_mixed_inputs_in_order_with_their_output_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _wav(Path("clips/a.wav"))
    _wav(Path("clips/deep/b.flac"))
    Path("clips/notes.txt").write_text("not audio")
    _wav(Path("one.ogg"))
    Path("wav.scp").write_text("spk1.utt2 clips/a.wav\n\nu3 one.ogg\n")
    items = gather_inputs(["clips", "wav.scp", "-"], stdin=io.StringIO("one.ogg\n\n"))
    assert [(i.name, str(i.path), i.relpath) for i in items] == [
        ("clips/a.wav", "clips/a.wav", PurePath("clips/a.wav")),
        ("clips/deep/b.flac", "clips/deep/b.flac", PurePath("clips/deep/b.wav")),
        ("spk1.utt2", "clips/a.wav", PurePath("spk1.utt2.wav")),  # the id's dot is no suffix
        ("u3", "one.ogg", PurePath("u3.wav")),
        ("one.ogg", "one.ogg", PurePath("one.wav")),
    ]


def test_a_missing_file_is_an_item_reported_later(tmp_path):
    assert [i.name for i in gather_inputs([str(tmp_path / "gone.wav")])] == [str(tmp_path / "gone.wav")]


@pytest.mark.parametrize("scp, message", [
    ("u1\n", "wav.scp line 1: expected '<utterance id> <audio path>', got 'u1'"),
    ("u1 a.wav\nu2 sox b.wav -t wav - |\n", "wav.scp line 2: u2 is a command"),
    ("u1 a.wav\nu1 b.wav\n", "wav.scp line 2: utterance id u1 was given before, on line 1"),
    ("\n", "wav.scp: an empty wav.scp"),
])
def test_bad_wav_scp_names_the_line(tmp_path, scp, message):
    (tmp_path / "wav.scp").write_text(scp)
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        gather_inputs([str(tmp_path / "wav.scp")])


def test_folder_without_audio_and_colliding_outputs_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: a folder with no audio files"):
        gather_inputs([str(tmp_path / "empty")])
    a, b = _wav(tmp_path / "x" / "talk.wav"), _wav(tmp_path / "y" / "talk.flac")
    with pytest.raises(ValueError, match="would both be written as talk.wav below --out_dir"):
        gather_inputs([str(a), str(b)])


def test_progress_counts_and_eta_from_audio_seconds():
    stream, clock = io.StringIO(), [0.0]
    progress = Progress(total_files=3, total_seconds=100.0, stream=stream, now=lambda: clock[0])
    assert progress.line().endswith("ETA ?")
    clock[0] = 10.0
    progress.advance(25.0)  # 25 s of audio in 10 s: 75 s left take 30 s
    progress.file_done()
    assert progress.line() == ("files 1/3, audio 25.0/100.0 s (25%), 0:00:10 elapsed, "
                               "ETA 0:00:30")
    # into a log: the first line at once, then none until LOG_INTERVAL has passed
    assert stream.getvalue().splitlines() == [
        "files 0/3, audio 25.0/100.0 s (25%), 0:00:10 elapsed, ETA 0:00:30"]
    progress.close()
    assert stream.getvalue().splitlines()[-1].startswith("files 1/3, audio 25.0/100.0 s")
