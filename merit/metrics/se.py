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
* ``se_scores``      -- the metrics of ``SE_METRICS`` (by default ``DEFAULT_SE_METRICS``)
  in one dict; ``reference_free_scores`` -- the non-intrusive ones of one signal.

``SE_METRICS`` is the one declaration of the SE metrics (name, unit, direction,
decimals, function): scoring, ``RESULTS.md`` and ``make_tables`` loop over it, so a
new metric is a function and one entry here. It also declares, from other modules:

* LLR and WSS (``merit.metrics.composite``), and the composite measures CSIG, CBAK and
  COVL (Hu & Loizou 2008) *derived* from LLR, WSS, PESQ and SSNR of the same utterance
  (``Metric.derived_from``): PESQ and SSNR are computed once;
* DNSMOS P.835 SIG, BAK and OVRL (``merit.metrics.dnsmos``), non-intrusive
  (``needs_reference=False``): scored on the clean reference too. Opt-in
  (``default=False``): its neural model costs several times all other metrics
  together (``merit.bin.bench_audio_stages``), so only ``DEFAULT_SE_METRICS`` are
  scored unless more are named (``se_metrics``; ``merit.bin.score --extra_metrics``).
"""
import hashlib
from functools import partial
from typing import Dict

import numpy as np

from merit.metrics.composite import (cbak, covl, csig, log_likelihood_ratio,
                                     weighted_spectral_slope)
from merit.metrics.dnsmos import dnsmos_score
from merit.metrics.frames import loizou_hann, signal_pair
from merit.metrics.metric import Metric

#: Added to the per-frame noise energy and to the energy ratio in ``segmental_snr``
#: (the value the reference evaluation code uses).
SSNR_EPS = 1e-10

#: Added to both energies of the SI-SDR ratio so that a perfect estimate gives a large
#: finite value instead of ``inf``.
SI_SDR_EPS = 1e-12


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
    ref, est = signal_pair(clean, estimate)
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
    window = loizou_hann(frame)
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
    ref, est = signal_pair(reference, estimate, names=("reference", "estimate"))
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
    ref, est = signal_pair(clean, estimate)
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
    ref, est = signal_pair(clean, estimate)
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
    ref, est = signal_pair(reference, estimate, names=("reference", "estimate"))
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
    Metric("llr", "LLR", log_likelihood_ratio, higher_is_better=False, digits=2,
           in_results=False),
    Metric("wss", "WSS", weighted_spectral_slope, higher_is_better=False, digits=2,
           in_results=False),
    Metric("csig", "CSIG", csig, derived_from=("llr", "pesq", "wss"), digits=2),
    Metric("cbak", "CBAK", cbak, derived_from=("pesq", "wss", "ssnr"), digits=2),
    Metric("covl", "COVL", covl, derived_from=("pesq", "llr", "wss"), digits=2),
    Metric("dnsmos_sig", "DNSMOS SIG", partial(dnsmos_score, part="sig"), digits=2,
           needs_reference=False, default=False, in_results=False),
    Metric("dnsmos_bak", "DNSMOS BAK", partial(dnsmos_score, part="bak"), digits=2,
           needs_reference=False, default=False, in_results=False),
    Metric("dnsmos_ovrl", "DNSMOS OVRL", partial(dnsmos_score, part="ovrl"), digits=2,
           needs_reference=False, default=False, in_results=False),
)
"""The SE metrics, in the order of ``scores.json`` and the per-utterance TSVs; a derived
metric after the metrics it is computed from."""

DEFAULT_SE_METRICS = tuple(metric for metric in SE_METRICS if metric.default)
"""What is scored unless more is asked for: all but DNSMOS (module docstring)."""


def se_metrics(extra=()) -> tuple:
    """``DEFAULT_SE_METRICS`` and the opt-in metrics named in ``extra``, in declaration
    order.

    Raises:
        ValueError: a name that is not an opt-in SE metric.
    """
    opt_in = [metric.name for metric in SE_METRICS if not metric.default]
    unknown = [name for name in extra if name not in opt_in]
    if unknown:
        raise ValueError(f"unknown opt-in SE metric(s) {', '.join(unknown)} "
                         f"(choices: {', '.join(opt_in)})")
    return tuple(metric for metric in SE_METRICS if metric.default or metric.name in extra)


def se_scores(clean, estimate, fs: int = 16000, metrics=DEFAULT_SE_METRICS) -> Dict[str, float]:
    """The metrics of ``metrics`` for one utterance: each from the signals, or a derived
    one from the values computed before it.

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``, same length.
        fs: sampling rate in Hz (16000: PESQ and DNSMOS need it).
        metrics: ``Metric`` entries of ``SE_METRICS``, in declaration order.

    Returns:
        ``{name: score}`` in the order of ``metrics``, e.g. ``{"ssnr": dB, "pesq":
        MOS-LQO (NaN if no speech detected, and so are CSIG, CBAK, COVL), "stoi": 0..1,
        …}``.

    Raises:
        ValueError: the lengths differ (the message gives both), a derived metric
            without the metrics it is computed from, or see the individual functions.
    """
    ref, est = signal_pair(clean, estimate)
    scores = {}
    for metric in metrics:
        scores[metric.name] = metric.score(ref, est, fs, scores)
    return scores


def reference_free_scores(signal, fs: int = 16000, metrics=DEFAULT_SE_METRICS) -> Dict[str, float]:
    """The non-intrusive metrics among ``metrics`` (``needs_reference=False``) of one
    signal, e.g. of the clean reference itself: ``{name: score}``, {} if none."""
    return {metric.name: metric.compute(np.asarray(signal, dtype=np.float64), fs)
            for metric in metrics if not metric.needs_reference}
