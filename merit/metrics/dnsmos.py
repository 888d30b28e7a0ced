"""DNSMOS P.835 (Reddy et al., ICASSP 2022): a non-intrusive estimate of the ITU-T P.835
listening-test ratings of one signal, without a clean reference:

* SIG  -- speech signal quality (1 .. 5),
* BAK  -- background noise intrusiveness (1 .. 5, higher: less intrusive),
* OVRL -- overall quality (1 .. 5).

The model is Microsoft's ``sig_bak_ovr.onnx`` as shipped in the ``speechmos`` wheel
(``speechmos/dnsmos_models``): nothing is downloaded, and ``speechmos`` itself is not
imported (its module imports ``requests`` and ``librosa``; only the model file is used).
The model runs in onnxruntime with one thread (``intra_op_num_threads=1``), so that the
parallel scoring processes of ``merit.bin.score --nj`` do not oversubscribe the cores;
the session is built once per process.

The computation is that of the DNS Challenge's ``dnsmos_local.py`` (and of
``speechmos.dnsmos.run``, non-personalised), which every DNSMOS number in the
literature comes from:

1. a signal shorter than ``SEGMENT_SECONDS`` (9.01 s) is doubled until it is not;
2. segments of 9.01 s start every second,
   ``floor(num_samples / fs − 9.01) + 1`` of them; the reference code computes a
   segment's end as ``int((start_s + 9.01) · fs)``, which floating point puts one sample
   short for some starts (7 to 23 s at 16 kHz), and skips those segments: so do we;
3. the model gives raw SIG, BAK, OVRL per segment, each mapped through the P.835
   calibration polynomial of ``POLYNOMIALS``;
4. the mapped values are averaged over the segments.

Segments are scored in one batch, which gives the per-segment values of one-by-one
inference to about 1e-6.
"""
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Dict

import numpy as np

#: The model's sampling rate (Hz) and input length (seconds).
SAMPLE_RATE = 16000
SEGMENT_SECONDS = 9.01

#: The P.835 calibration of the raw outputs (non-personalised DNSMOS), coefficients from
#: the highest power down: ``c₀·x² + c₁·x + c₂``.
POLYNOMIALS = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
PARTS = tuple(POLYNOMIALS)  # the model's outputs, in order

#: The scores of the last few signals, by content: the three metrics of one signal
#: share one run of the model.
_SCORED: Dict[tuple, Dict[str, float]] = {}
_SCORED_KEPT = 4


def model_path() -> Path:
    """The ``sig_bak_ovr.onnx`` of the installed ``speechmos`` wheel; ValueError if absent."""
    spec = importlib.util.find_spec("speechmos")
    path = (Path(spec.submodule_search_locations[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
            if spec is not None and spec.submodule_search_locations else None)
    if path is None or not path.is_file():
        raise ValueError("DNSMOS needs the model of the speechmos package "
                         "(speechmos/dnsmos_models/sig_bak_ovr.onnx): install "
                         "tools/requirements.txt")
    return path


@lru_cache(maxsize=1)
def _session():
    """The model's onnxruntime session, one thread, CPU, built once per process."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(model_path()), options,
                                        providers=["CPUExecutionProvider"])


def segments(signal: np.ndarray, fs: int = SAMPLE_RATE) -> np.ndarray:
    """The model's inputs for ``signal``, ``(num_segments, 9.01 · fs)`` float32 (module
    docstring, steps 1 and 2)."""
    length = int(SEGMENT_SECONDS * fs)
    audio = signal
    while audio.shape[0] < length:
        audio = np.concatenate([audio, audio])
    count = int(np.floor(audio.shape[0] / fs) - SEGMENT_SECONDS) + 1
    pieces = [audio[int(start * fs):int((start + SEGMENT_SECONDS) * fs)] for start in range(count)]
    return np.stack([piece for piece in pieces if piece.shape[0] == length]).astype(np.float32)


def dnsmos_p835(signal, fs: int = SAMPLE_RATE) -> Dict[str, float]:
    """DNSMOS P.835 of one signal: ``{"sig": …, "bak": …, "ovrl": …}``.

    Args:
        signal: shape ``(num_samples,)``, sampled at 16 kHz, scored as given (the model
            was trained on waveforms in [-1, 1]).
        fs: sampling rate in Hz; must be 16000.

    Returns:
        The three P.835 ratings, each about 1 .. 5 (higher is better).

    Raises:
        ValueError: ``fs`` is not 16000, an empty or not 1-D signal, or no model.
    """
    if int(fs) != SAMPLE_RATE:
        raise ValueError(f"DNSMOS needs fs={SAMPLE_RATE} Hz, got fs={fs}; resample first")
    audio = np.asarray(signal, dtype=np.float64)
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise ValueError(f"DNSMOS needs a non-empty 1-D signal, got shape {audio.shape}")
    key = (hashlib.sha1(audio.tobytes()).digest(), audio.shape[0])
    if key not in _SCORED:
        session = _session()
        raw = session.run(None, {session.get_inputs()[0].name: segments(audio, fs)})[0]
        scores = {part: float(np.mean(np.polyval(POLYNOMIALS[part], raw[:, i].astype(np.float64))))
                  for i, part in enumerate(PARTS)}
        if len(_SCORED) >= _SCORED_KEPT:
            _SCORED.pop(next(iter(_SCORED)))
        _SCORED[key] = scores
    return dict(_SCORED[key])


def dnsmos_score(signal, fs: int = SAMPLE_RATE, part: str = "ovrl") -> float:
    """One of the ratings of ``dnsmos_p835`` (``part``: ``sig``, ``bak`` or ``ovrl``); the
    model runs once for the three of one signal."""
    return dnsmos_p835(signal, fs)[part]
