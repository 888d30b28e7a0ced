"""Signal pairs and the analysis frames of Loizou's evaluation code, shared by the SE
metrics of ``merit.metrics.se`` and ``merit.metrics.composite``.

Loizou's MATLAB code (*Speech Enhancement: Theory and Practice*: ``comp_snr.m``,
``composite.m``) cuts both signals into frames of 30 ms every 7.5 ms (75 % overlap),
multiplies each by MATLAB's ``hanning`` window and uses
``floor(num_samples / hop − frame / hop)`` frames, i.e. its last complete frame is not
used and nothing is padded.
"""
from typing import Tuple

import numpy as np


def signal_pair(reference, estimate, names=("clean", "estimate")):
    """Both signals as 1-D float64 arrays of equal length, else ValueError naming them."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    for name, signal in zip(names, (ref, est)):
        if signal.ndim != 1:
            raise ValueError(f"{name} must be a 1-D signal, got shape {signal.shape}")
    if ref.shape[0] != est.shape[0]:
        raise ValueError(
            f"length mismatch: {names[0]} has {ref.shape[0]} samples, "
            f"{names[1]} has {est.shape[0]} samples"
        )
    return ref, est


def loizou_hann(length: int) -> np.ndarray:
    """Hann window without zero end points: 0.5·(1 − cos(2π·n/(length+1))), n = 1..length.

    This is MATLAB's ``hanning(length)``, the window of the reference evaluation code.
    """
    position = np.arange(1, length + 1, dtype=np.float64) / (length + 1)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * position))


def frame_geometry(fs: int, frame_ms: float = 30, overlap: float = 0.75) -> Tuple[int, int]:
    """``(frame, hop)`` in samples: ``round(frame_ms · fs / 1000)`` and
    ``floor(frame · (1 − overlap))`` (480 and 120 at 16 kHz).

    Raises:
        ValueError: ``overlap`` outside [0, 1).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    frame = int(round(frame_ms * fs / 1000))
    return frame, max(1, int(np.floor(frame * (1.0 - overlap) + 1e-9)))


def loizou_frames(signal: np.ndarray, frame: int, hop: int, what: str) -> np.ndarray:
    """The windowed frames of ``signal``, shape ``(num_frames, frame)``, with
    ``num_frames = floor((num_samples − frame) / hop)`` as in the reference code.

    Args:
        signal: 1-D float64 signal.
        frame, hop: from ``frame_geometry``.
        what: the measure, for the error message.

    Raises:
        ValueError: fewer than ``frame + hop`` samples (no frame at all).
    """
    num_frames = (signal.shape[0] - frame) // hop if signal.shape[0] >= frame else 0
    if num_frames < 1:
        raise ValueError(
            f"signal of {signal.shape[0]} samples is too short for {what}: needs at least "
            f"{frame + hop} samples (frame {frame}, hop {hop} samples)"
        )
    frames = np.lib.stride_tricks.sliding_window_view(signal, frame)[::hop][:num_frames]
    return frames * loizou_hann(frame)
