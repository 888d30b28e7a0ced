"""merit.data.audio_io on files that are not what their name says: every one is an
error naming the file, never short or garbled audio."""
import numpy as np
import pytest
import soundfile as sf

from fake_corpora import speechlike
from merit.data import audio_io


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "one_second.wav"
    sf.write(str(path), speechlike(1.0, 150, 1), 16000, subtype="PCM_16")
    return path


@pytest.mark.parametrize("fmt", ["WAV", "RF64"])
def test_truncated_wav_is_an_error(tmp_path, fmt):
    """libsndfile reads the samples that are there and says nothing."""
    path = tmp_path / "cut.wav"
    sf.write(str(path), speechlike(1.0, 150, 1), 16000, subtype="PCM_16", format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=f"{path}: truncated WAV: its header declares "
                                         r"16000 samples \(1.00 s\) but the file holds 79"):
        audio_io.read_audio(path)
    declared, present, rate = audio_io.wav_shortfall(path)
    assert (declared, rate) == (16000, 16000) and 7900 < present < 8000
    with pytest.raises(ValueError, match=f"{path}: truncated WAV: its header declares "
                                                 r"16000 samples \(1.00 s\) but the file holds 79"):
        audio_io.audio_info(path)


def test_complete_wav_passes(wav):
    assert audio_io.wav_shortfall(wav) is None
    assert audio_io.read_audio(wav).shape == (16000,) and audio_io.audio_info(wav).frames == 16000


def test_extra_chunk_after_the_data_is_not_truncation(wav):
    """Writers may append LIST/id3 chunks after the samples: more bytes, not fewer."""
    with open(wav, "ab") as f:
        f.write(b"LIST" + (8).to_bytes(4, "little") + b"INFOabcd")
    assert audio_io.wav_shortfall(wav) is None and audio_io.read_audio(wav).shape == (16000,)


@pytest.mark.parametrize("junk, reason", [
    (b"RIFF\x00\x00not really a wave file", "soundfile: "),
    (np.random.default_rng(0).bytes(4000), "soundfile: Format not recognised."),
    # bytes that start like an MP3 frame: libsndfile answers "File does not exist or is
    # not a regular file (possibly a pipe?)", which sent users looking for a pipe
    (b"\xff\xfb" + bytes(range(256)) * 16, "soundfile: data not recognised as audio"),
])
def test_random_bytes_named_wav(tmp_path, junk, reason):
    path = tmp_path / "noise.wav"
    path.write_bytes(junk)
    with pytest.raises(ValueError) as err:
        audio_io.read_audio(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable audio file ({reason}")
    assert "pipe" not in message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{empty}: empty file \(0 bytes\)"):
        audio_io.read_audio(empty)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'gone.wav'}: missing \(no such file\)"):
        audio_io.read_audio(tmp_path / "gone.wav")
    no_samples = tmp_path / "no_samples.wav"
    sf.write(str(no_samples), np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match=f"{no_samples}: audio file with no samples"):
        audio_io.read_audio(no_samples)
