"""Mixing clean speech with noise at a target SNR (pure functions, numpy).

Signals are 1-D float arrays of samples at the same rate. Power is the mean
square over the whole utterance, so the SNR is a whole-utterance SNR in dB.
"""
from dataclasses import dataclass

import numpy as np

PEAK_LIMIT = 0.99  # mixtures are scaled below this so 16-bit files never clip


@dataclass
class Mixture:
    """``noisy == clean + noise`` (up to float rounding), all of the clean's length."""

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    gain: float  # applied to all three so that |noisy| < PEAK_LIMIT (1.0 when not needed)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def fit_noise(noise: np.ndarray, length: int, shift: int) -> np.ndarray:
    """Noise of exactly ``length`` samples: circularly shifted by ``shift``, then
    tiled (when shorter) or cut (when longer)."""
    if noise.size == 0:
        raise ValueError("empty noise signal")
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
