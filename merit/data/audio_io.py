"""Audio files in and out (soundfile), 16 kHz mono float32 inside merit."""
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def read_audio(path, resample: bool = False) -> np.ndarray:
    """Samples of a mono 16 kHz file as float32, shape (samples,).

    With ``resample`` true other rates are converted and channels averaged;
    otherwise they are an error naming the file.
    """
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise ValueError(f"{path}: cannot read audio: {err}") from err
    if wav.shape[0] == 0:
        raise ValueError(f"{path}: audio has no samples")
    if not resample and (rate != SAMPLE_RATE or wav.shape[1] != 1):
        raise ValueError(f"{path}: expected 16 kHz mono, got {rate} Hz with "
                         f"{wav.shape[1]} channel(s)")
    wav = wav.mean(axis=1)
    if rate != SAMPLE_RATE:
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
