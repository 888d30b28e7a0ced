"""Audio files in and out (soundfile), 16 kHz mono float32 inside merit.

Every reader here checks what libsndfile does not: a WAV whose header promises more
samples than the file holds (an interrupted copy) is read short by libsndfile without
a word, so ``read_audio`` and ``audio_info`` compare the two and name the file.
"""
import os
import struct
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# a data chunk size a streaming writer leaves when it never learnt the length
_OPEN_ENDED_SIZES = (0, 0xFFFFFFFF)


class AudioFileError(ValueError):
    """A file that is not usable audio. ``kind`` is missing, unreadable, empty or
    truncated; the message starts with the path."""

    def __init__(self, path, kind: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.kind, self.problem = str(path), kind, problem


# libsndfile's words for error 7 ("File does not exist or is not a regular file
# (possibly a pipe?).") are what its MPEG reader leaves on bytes that merely start
# like an MP3 frame; the file is checked to exist first, so they only mislead.
_MISLEADING_CODES = {7: "data not recognised as audio (libsndfile error 7)"}


def _soundfile_reason(err: Exception) -> str:
    """libsndfile's own words for ``err``, e.g. 'Format not recognised.'."""
    if isinstance(err, sf.LibsndfileError) and err.code:
        return _MISLEADING_CODES.get(err.code, err.error_string)
    return str(err)


def wav_shortfall(path) -> Optional[Tuple[int, int, int]]:
    """(frames the header declares, frames present, sample rate) of a RIFF/RF64 WAV
    whose data chunk is cut short; None for a complete WAV or any other format.

    Reads the chunk headers only (a few dozen bytes), never the samples.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None
        block_align, rate, ds64_data_size = 0, 0, None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"fmt " and chunk_size >= 16:
                _, _, rate, _, block_align = struct.unpack("<HHIIH", f.read(14))
            elif chunk_id == b"ds64" and chunk_size >= 16:
                # RF64 keeps the real 64-bit sizes here: RIFF size, then data size
                ds64_data_size = struct.unpack("<QQ", f.read(16))[1]
            elif chunk_id == b"data":
                declared = chunk_size
                if head[:4] == b"RF64" and chunk_size == 0xFFFFFFFF and ds64_data_size is not None:
                    declared = ds64_data_size
                elif declared in _OPEN_ENDED_SIZES:
                    return None
                present = size - (pos + 8)
                if present >= declared or block_align == 0:
                    return None
                return declared // block_align, present // block_align, rate
            pos += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    return None


def _check_complete(path) -> None:
    """Raise AudioFileError when ``path`` is a WAV cut short (see ``wav_shortfall``)."""
    short = wav_shortfall(path)
    if short is not None:
        declared, present, rate = short
        raise AudioFileError(
            path, "truncated",
            f"truncated WAV: its header declares {declared} samples ({declared / rate:.2f} s) "
            f"but the file holds {present} ({present / rate:.2f} s); copy or export it again")


def _check_exists(path) -> None:
    if not os.path.exists(path):
        raise AudioFileError(path, "missing", "missing (no such file)")
    if not os.path.isfile(path):
        raise AudioFileError(path, "missing", "missing (not a regular file)")
    if os.path.getsize(path) == 0:
        raise AudioFileError(path, "empty", "empty file (0 bytes)")


def audio_info(path):
    """soundfile's header of ``path`` (``frames``, ``samplerate``, ``channels`` …),
    read without decoding, after checking the file is there, is audio, has samples
    and (for WAV) holds every sample its header declares.

    Raises AudioFileError naming the file and what is wrong with it.
    """
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFileError(path, "unreadable", "not a readable audio file "
                             f"(soundfile: {_soundfile_reason(err)})") from err
    _check_complete(path)  # first: a WAV cut inside its header reads as 0 frames
    if info.frames == 0:
        raise AudioFileError(path, "empty", "audio file with no samples")
    return info


def read_audio(path, resample: bool = False) -> np.ndarray:
    """Samples of a mono 16 kHz file as float32, shape (samples,).

    With ``resample`` true other rates are converted and channels averaged;
    otherwise they are an error naming the file. A missing, unreadable, empty or
    truncated file is an AudioFileError (a ValueError) naming it.
    """
    _check_exists(path)
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFileError(path, "unreadable", "not a readable audio file "
                             f"(soundfile: {_soundfile_reason(err)})") from err
    _check_complete(path)
    if wav.shape[0] == 0:
        raise AudioFileError(path, "empty", "audio file with no samples")
    if not resample and (rate != SAMPLE_RATE or wav.shape[1] != 1):
        raise ValueError(f"{path}: expected 16 kHz mono, got {rate} Hz with "
                         f"{wav.shape[1]} channel(s)")
    wav = wav.mean(axis=1)
    if rate != SAMPLE_RATE:
        # imported here: scipy.signal costs every data tool ~1.2 s of start-up, and
        # most of them only ever read 16 kHz audio
        from scipy.signal import resample_poly

        gcd = np.gcd(rate, SAMPLE_RATE)
        wav = resample_poly(wav, SAMPLE_RATE // gcd, rate // gcd).astype(np.float32)
    return wav


@lru_cache(maxsize=64)
def read_audio_cached(path: str) -> np.ndarray:
    """``read_audio(path, resample=True)``, remembered: noise files are reused often."""
    wav = read_audio(path, resample=True)
    wav.setflags(write=False)
    return wav


def write_audio(path, wav: np.ndarray) -> None:
    """16-bit PCM wav at 16 kHz, written under a temporary name then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), wav, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def list_audio(directory) -> list:
    """Audio files below ``directory`` (recursively), sorted; an error if there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory}: noise directory does not exist")
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ValueError(f"{directory}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    return files
