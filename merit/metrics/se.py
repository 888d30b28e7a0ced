"""Speech-enhancement metrics on single-channel signals.

Every function takes 1-D float numpy arrays of samples (shape ``(num_samples,)``, any
scale, usually in [-1, 1]) for the clean reference and the enhanced estimate, sampled
at ``fs`` Hz (16 kHz for the MERIT recipes).  Reference and estimate must have the same
length: nothing is trimmed or padded silently, a mismatch raises ``ValueError``.

Scores:

* ``segmental_snr``  -- segmental SNR in dB, as in the evaluation code most SE papers
  report (Loizou's ``comp_snr.m``; the Python port in CMGAN / pysepm).
* ``si_sdr``         -- scale-invariant signal-to-distortion ratio in dB.
* ``pesq_wb``        -- wide-band PESQ (ITU-T P.862.2, MOS-LQO, about 1.04 .. 4.64).
* ``stoi``           -- STOI / extended STOI (0 .. 1), via ``pystoi``.
* ``log_spectral_distance`` -- log-spectral distance in dB (lower is better).
* ``se_scores``      -- every metric of ``SE_METRICS`` in one dict.

``SE_METRICS`` is the one declaration of the SE metrics (name, unit, direction,
decimals, function): scoring, ``RESULTS.md`` and ``make_tables`` loop over it, so a
new metric is a function and one entry here.
"""
import hashlib
from functools import partial
from typing import Dict

import numpy as np

from merit.metrics.metric import Metric

#: Added to the per-frame noise energy and to the energy ratio in ``segmental_snr``
#: (the value the reference evaluation code uses).
SSNR_EPS = 1e-10

#: Added to both energies of the SI-SDR ratio so that a perfect estimate gives a large
#: finite value instead of ``inf``.
SI_SDR_EPS = 1e-12


def _as_pair(reference, estimate, names=("clean", "estimate")):
    """Return both signals as 1-D float64 arrays of equal length, else raise ValueError."""
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


def _loizou_hann(length: int) -> np.ndarray:
    """Hann window without zero end points: 0.5·(1 − cos(2π·n/(length+1))), n = 1..length.

    This is MATLAB's ``hanning(length)``, the window of the reference SSNR code.
    """
    position = np.arange(1, length + 1, dtype=np.float64) / (length + 1)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * position))


def segmental_snr(clean, estimate, fs: int = 16000, frame_ms: float = 30,
                  overlap: float = 0.75, min_db: float = -10, max_db: float = 35) -> float:
    """Segmental SNR in dB: the mean over frames of the clipped per-frame SNR.

    Follows the evaluation code that SE papers report (Loizou, *Speech Enhancement:
    Theory and Practice*, ``comp_snr.m``, and its Python port in CMGAN / pysepm):

    * frames of ``round(frame_ms · fs / 1000)`` samples (30 ms = 480 samples at 16 kHz),
      hop ``floor(frame · (1 − overlap))`` samples (7.5 ms = 120 samples at 75 %);
    * both frames are multiplied by a Hann window (MATLAB ``hanning``, no zero ends);
    * per frame ``10·log10(S / (N + eps) + eps)`` with ``S = Σ clean²`` and
      ``N = Σ (clean − estimate)²`` over the windowed frame, ``eps = 1e-10``,
      clipped to ``[min_db, max_db]`` dB;
    * the number of frames is ``floor((num_samples − frame) / hop)``, as in the
      reference code (its last complete frame is not used; nothing is padded);
    * **all** frames are averaged, silent ones included: there is no voice-activity
      detection, exactly like the reference code.  A silent clean frame scores
      ``min_db``.

    One deliberate difference: a frame whose error energy is exactly zero (estimate
    identical to clean there) scores ``max_db``.  The reference code would give a
    digitally silent identical frame ``min_db`` and a near-silent one
    (``S < 3.2e-7``) less than ``max_db``; with this rule identical signals score
    exactly ``max_db``.

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``.
        fs: sampling rate in Hz.
        frame_ms: frame length in milliseconds.
        overlap: fraction of a frame shared with the next one (0 <= overlap < 1).
        min_db, max_db: clipping range of the per-frame SNR, in dB.

    Returns:
        Segmental SNR in dB.

    Raises:
        ValueError: different lengths, not 1-D, or too short for one frame
            (fewer than ``frame + hop`` samples).
    """
    ref, est = _as_pair(clean, estimate)
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    frame = int(round(frame_ms * fs / 1000))
    hop = max(1, int(np.floor(frame * (1.0 - overlap) + 1e-9)))
    num_frames = (ref.shape[0] - frame) // hop if ref.shape[0] >= frame else 0
    if num_frames < 1:
        raise ValueError(
            f"signal of {ref.shape[0]} samples is too short for segmental SNR: needs at "
            f"least {frame + hop} samples (frame {frame}, hop {hop} samples)"
        )
    window = _loizou_hann(frame)
    # (num_frames, frame) views of the signal, then windowed copies.
    ref_frames = np.lib.stride_tricks.sliding_window_view(ref, frame)[::hop][:num_frames]
    err_frames = np.lib.stride_tricks.sliding_window_view(ref - est, frame)[::hop][:num_frames]
    signal_energy = np.sum((ref_frames * window) ** 2, axis=1)
    noise_energy = np.sum((err_frames * window) ** 2, axis=1)
    frame_snr = 10.0 * np.log10(signal_energy / (noise_energy + SSNR_EPS) + SSNR_EPS)
    frame_snr = np.where(noise_energy == 0.0, max_db, frame_snr)
    return float(np.mean(np.clip(frame_snr, min_db, max_db)))


def si_sdr(reference, estimate) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Both signals are made zero-mean; the target is the projection of the estimate on
    the reference, ``target = (<estimate, reference> / <reference, reference>) ·
    reference``, and
    ``SI-SDR = 10·log10((‖target‖² + eps) / (‖estimate − target‖² + eps))``
    with ``eps = 1e-12`` (so a perfect estimate gives a large finite value, not ``inf``).
    Rescaling the estimate does not change the score.

    Args:
        reference: clean signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``.

    Returns:
        SI-SDR in dB.

    Raises:
        ValueError: different lengths, not 1-D, or a reference that is constant
            (zero energy after removing the mean: the projection is undefined).
    """
    ref, est = _as_pair(reference, estimate, names=("reference", "estimate"))
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise ValueError("SI-SDR is undefined for a constant (zero-energy) reference")
    target = (np.dot(est, ref) / ref_energy) * ref
    distortion = est - target
    return float(10.0 * np.log10((np.dot(target, target) + SI_SDR_EPS)
                                 / (np.dot(distortion, distortion) + SI_SDR_EPS)))


def pesq_wb(clean, estimate, fs: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO) with the ``pesq`` package, mode ``"wb"``.

    The score lies between about 1.04 and 4.64 (identical signals give ~4.644).

    Args:
        clean: reference signal, shape ``(num_samples,)``, sampled at 16 kHz.
        estimate: enhanced signal, shape ``(num_samples,)``, sampled at 16 kHz.
        fs: sampling rate in Hz; must be 16000 (wide-band PESQ is defined at 16 kHz
            only; resample first).

    Returns:
        PESQ score, or NaN when PESQ finds no speech in the reference ("No utterances
        detected": e.g. a silent or near-silent clean signal).  No score exists for such
        an utterance, so NaN marks it to be dropped (``np.nanmean``) rather than
        counted as a fake low or high score.

    Raises:
        ValueError: ``fs`` is not 16000, different lengths or not 1-D.
        pesq.BufferTooShortError: the signals are too short for PESQ (< 1/4 s).
    """
    if int(fs) != 16000:
        raise ValueError(f"wide-band PESQ needs fs=16000 Hz, got fs={fs}; resample first")
    ref, est = _as_pair(clean, estimate)
    import pesq  # imported here so that the rest of the module works without it

    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # pesq normalises by the peak
            return float(pesq.pesq(16000, ref, est, "wb"))
    except pesq.NoUtterancesError:
        return float("nan")


def stoi(clean, estimate, fs: int = 16000, extended: bool = False) -> float:
    """Short-time objective intelligibility (Taal et al., 2011) with ``pystoi``.

    ``extended=True`` gives ESTOI (Jensen & Taal, 2016).  The signals are resampled to
    pystoi's 10 kHz with pystoi's own resampler, each distinct signal once (``_resampled``),
    then ``pystoi`` removes silent frames; identical signals score 1.0.  For signals
    too short for its analysis (< ~30 frames of 256 samples at 10 kHz after silence
    removal) ``pystoi`` warns and returns 1e-5.

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``.
        fs: sampling rate in Hz.
        extended: compute ESTOI instead of STOI.

    Returns:
        STOI (or ESTOI), nominally in [0, 1] (ESTOI can be slightly negative).
    """
    ref, est = _as_pair(clean, estimate)
    from pystoi import stoi as _pystoi
    from pystoi.stoi import FS as STOI_RATE

    return float(_pystoi(_resampled(ref, int(fs), STOI_RATE), _resampled(est, int(fs), STOI_RATE),
                         STOI_RATE, extended=extended))


#: The last few signals resampled to pystoi's rate, by content: scoring one utterance
#: asks for the same clean signal in STOI and ESTOI of every scored signal, and for
#: each estimate twice.
_RESAMPLED: Dict[tuple, np.ndarray] = {}
_RESAMPLED_KEPT = 8


def _resampled(signal: np.ndarray, fs: int, rate: int) -> np.ndarray:
    """``signal`` at ``rate`` Hz, resampled as pystoi resamples (``resample_oct``), once
    per distinct signal among the last few."""
    if fs == rate:
        return signal
    key = (hashlib.sha1(signal.tobytes()).digest(), signal.shape[0], fs, rate)
    if key not in _RESAMPLED:
        from pystoi.utils import resample_oct

        if len(_RESAMPLED) >= _RESAMPLED_KEPT:
            _RESAMPLED.pop(next(iter(_RESAMPLED)))
        _RESAMPLED[key] = resample_oct(signal, rate, fs)
    return _RESAMPLED[key]


def log_spectral_distance(reference, estimate, fs: int = 16000, frame_ms: float = 32,
                          hop_ms: float = 16, eps: float = 1e-10) -> float:
    """Log-spectral distance in dB: per frame, the root mean square over frequency of
    the difference of the two log power spectra, then the mean over frames.

    ``LSD = mean_t sqrt(mean_f (10·log10(|X(t,f)|² + eps) − 10·log10(|Y(t,f)|² + eps))²)``
    with Hann-windowed frames of ``frame_ms`` every ``hop_ms`` (512 and 256 samples at
    16 kHz), no padding. 0 for identical signals; a uniform gain g gives |20·log10 g|.

    Raises:
        ValueError: different lengths, not 1-D, or shorter than one frame.
    """
    ref, est = _as_pair(reference, estimate, names=("reference", "estimate"))
    frame, hop = int(round(frame_ms * fs / 1000)), int(round(hop_ms * fs / 1000))
    if ref.shape[0] < frame:
        raise ValueError(f"signal of {ref.shape[0]} samples is too short for the log-spectral "
                         f"distance: needs at least {frame} samples")
    window = np.hanning(frame)

    def log_power(signal):
        frames = np.lib.stride_tricks.sliding_window_view(signal, frame)[::hop] * window
        return 10.0 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + eps)

    difference = log_power(ref) - log_power(est)
    return float(np.mean(np.sqrt(np.mean(difference ** 2, axis=1))))


SE_METRICS = (
    Metric("ssnr", "SSNR", segmental_snr, unit="dB", digits=2, in_tables=True),
    Metric("pesq", "PESQ", pesq_wb, digits=2, in_tables=True),
    Metric("stoi", "STOI", stoi, digits=3, in_tables=True),
    Metric("estoi", "ESTOI", partial(stoi, extended=True), digits=3, in_results=False),
    Metric("si_sdr", "SI-SDR", lambda reference, estimate, fs: si_sdr(reference, estimate),
           unit="dB", digits=2),
    Metric("lsd", "LSD", log_spectral_distance, unit="dB", higher_is_better=False, digits=2,
           in_results=False),
)
"""The SE metrics, in the order of ``scores.json`` and the per-utterance TSVs."""


def se_scores(clean, estimate, fs: int = 16000) -> Dict[str, float]:
    """Every metric of ``SE_METRICS`` for one utterance.

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``, same length.
        fs: sampling rate in Hz (16000: PESQ is wide-band only).

    Returns:
        ``{name: score}``, e.g. ``{"ssnr": dB, "pesq": MOS-LQO (NaN if no speech
        detected), "stoi": 0..1, "estoi": 0..1, "si_sdr": dB}``.

    Raises:
        ValueError: the lengths differ (the message gives both), or see the
            individual functions.
    """
    ref, est = _as_pair(clean, estimate)
    return {metric.name: metric.compute(ref, est, fs) for metric in SE_METRICS}
