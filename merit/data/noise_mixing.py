"""Mixing clean speech with noise at a target SNR (pure functions, numpy).

Signals are 1-D float arrays of samples at the same rate. Power is the mean
square over the whole utterance, so the SNR is a whole-utterance SNR in dB.
``draw_mixture`` holds the random choices of a mixture (noise file, shift, SNR),
shared by stage 2's fixed mixtures (merit.bin.simulate_noise) and training's
dynamic mixing (merit.data.dynamic_mixing).
"""
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from merit.data.audio_io import SAMPLE_RATE, list_audio
from merit.data.datadir import read_kv

log = logging.getLogger(__name__)

PEAK_LIMIT = 0.99  # mixtures are scaled below this so 16-bit files never clip
# More copies than this turn the noise into an audible loop (a period of a tenth of
# the utterance or less); with prep_noise's 1 s minimum that is an 11 s utterance or
# longer, the top of MSP-Podcast's range.
MAX_COPIES = 10
_warned_tiling = False  # once per process: the same short noise recurs per utterance


@dataclass
class Mixture:
    """``noisy == clean + noise`` (up to float rounding), all of the clean's length."""

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    gain: float  # applied to all three so that |noisy| < PEAK_LIMIT (1.0 when not needed)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def fit_noise(noise: np.ndarray, length: int, shift: int, name: str = "") -> np.ndarray:
    """Noise of exactly ``length`` samples: circularly shifted by ``shift``, then
    tiled (when shorter) or cut (when longer).

    The first time in a process that a noise needs more than MAX_COPIES copies, a
    warning names it (``name``, e.g. its path) with its length in seconds at 16 kHz.
    """
    global _warned_tiling
    if noise.size == 0:
        raise ValueError("empty noise signal")
    if length > MAX_COPIES * noise.size and not _warned_tiling:
        _warned_tiling = True
        log.warning("noise %s is %.2f s long and is repeated %.1f times to fill a %.2f s "
                    "utterance: a loop, not the noise it stands for. Build the noise pools "
                    "with scripts/prep_noise.sh, whose --min_noise_seconds (default 1) "
                    "leaves such files out (this warning is shown once)",
                    name or "(unnamed)", noise.size / SAMPLE_RATE, length / noise.size,
                    length / SAMPLE_RATE)
    rolled = np.roll(noise, -shift)
    reps = -(-length // rolled.size)
    return np.tile(rolled, reps)[:length]


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> Mixture:
    """Scale ``noise`` (already ``len(clean)`` long) so that
    10·log10(P_clean / P_noise) = ``snr_db``, add it, and scale everything down
    together if the mixture would reach ``PEAK_LIMIT``.

    Raises ValueError for silent clean speech or silent noise: no scale gives a
    defined SNR then.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean {clean.shape} and noise {noise.shape} differ in shape")
    p_clean, p_noise = power(clean), power(noise)
    if p_clean == 0.0:
        raise ValueError("clean signal is silent")
    if p_noise == 0.0:
        raise ValueError("noise signal is silent")
    scaled_noise = noise * np.sqrt(p_clean / (p_noise * 10.0 ** (snr_db / 10.0)))
    noisy = clean + scaled_noise
    peak = float(np.max(np.abs(noisy)))
    gain = PEAK_LIMIT / peak if peak >= PEAK_LIMIT else 1.0
    return Mixture(noisy=noisy * gain, clean=clean * gain, noise=scaled_noise * gain, gain=gain)


@dataclass
class Draw:
    """What ``draw_mixture`` chose, and the mixture made of it."""

    noise_id: str
    snr: float  # dB
    mixture: Mixture


def utterance_rng(utt: str, *seeds: int) -> np.random.Generator:
    """A generator seeded with ``seeds`` and the utterance id: the same draws for an
    utterance whichever process or job handles it, and in whatever order."""
    return np.random.default_rng([*seeds, zlib.crc32(utt.encode("utf-8"))])


def draw_mixture(rng: np.random.Generator, clean: np.ndarray, noise_ids: Sequence[str],
                 pool: Mapping[str, str], snrs: Sequence[float],
                 read_noise: Callable[[str], np.ndarray]) -> Draw:
    """Mix ``clean`` with noise drawn from ``rng``, in this order: a noise id of
    ``noise_ids`` (sorted keys of ``pool``, {id: path}), an SNR of ``snrs`` (dB),
    then a circular shift in [0, noise samples). ``read_noise(path)`` gives the
    noise's samples (16 kHz). The noise is fit to the clean's length (``fit_noise``)
    and mixed by ``mix_at_snr``.

    Raises ValueError naming the noise file when no mixture is defined (silent
    clean speech or noise).
    """
    noise_id = noise_ids[rng.integers(len(noise_ids))]
    snr = snrs[rng.integers(len(snrs))]
    path = pool[noise_id]
    noise = read_noise(path)
    shift = int(rng.integers(noise.size))
    try:
        mixture = mix_at_snr(clean, fit_noise(noise, clean.size, shift, path), snr)
    except ValueError as err:
        raise ValueError(f"with noise {path}: {err}") from err
    return Draw(noise_id=noise_id, snr=snr, mixture=mixture)


def parse_snrs(text: str):
    try:
        snrs = [float(s) for s in text.split()]
    except ValueError:
        raise ValueError(f"--snrs {text!r}: expected numbers in dB separated by spaces") from None
    if not snrs:
        raise ValueError("--snrs is empty")
    return snrs


def load_pool(noise: str) -> dict:
    """{noise id: path} from an scp file or a directory; an error if empty or broken."""
    source = Path(noise)
    if source.is_dir():
        return {f"{p.parent.name}_{p.stem}": str(p) for p in list_audio(source)}
    if not source.is_file():
        raise ValueError(f"{source}: noise pool not found (expected an scp file or a directory)")
    pool = read_kv(source)
    if not pool:
        raise ValueError(f"{source}: noise pool is empty")
    missing = [path for path in pool.values() if not Path(path).is_file()]
    if missing:
        raise ValueError(f"{source}: {len(missing)} noise file(s) missing, e.g. {missing[0]}")
    return pool
