"""The composite measures of Hu & Loizou (2008), "Evaluation of objective quality measures
for speech enhancement" (IEEE TASLP 16(1)): CSIG, CBAK and COVL, linear regressions of
simpler measures onto the listening-test ratings of signal distortion, background
intrusiveness and overall quality (1 .. 5, higher is better).

Two of their ingredients are computed here, frame by frame as Loizou's ``composite.m``
does (the code every SE paper's CSIG/CBAK/COVL come from, through its Python ports in
pysepm, CMGAN and DeepFilterNet):

* ``log_likelihood_ratio`` -- LLR of the LPC models of clean and estimate (lower is better);
* ``weighted_spectral_slope`` -- WSS, Klatt's (1982) weighted spectral slope distance over
  25 critical bands (lower is better).

The other two are PESQ and the segmental SNR of ``merit.metrics.se``; ``csig``, ``cbak``
and ``covl`` combine the four values of one utterance, so that scoring computes PESQ and
SSNR once (``merit.metrics.se.SE_METRICS`` declares them as derived metrics):

* CSIG = 3.093 − 1.029·LLR + 0.603·PESQ − 0.009·WSS
* CBAK = 1.634 + 0.478·PESQ − 0.007·WSS + 0.063·segSNR
* COVL = 1.594 + 0.805·PESQ − 0.512·LLR − 0.007·WSS

each limited to [1, 5]. PESQ is the wide-band MOS-LQO (P.862.2) at 16 kHz, as pysepm,
CMGAN and DeepFilterNet use at fs ≥ 16 kHz (``composite.m`` itself was validated with
the raw narrow-band P.862 score at 8 kHz).

Frames: 30 ms every 7.5 ms, MATLAB ``hanning`` window (``merit.metrics.frames``); each
of LLR and WSS is the mean of the lowest 95 % of its per-frame values (the rest are
taken as outliers), ``round`` half away from zero as in MATLAB.
"""
from functools import lru_cache
from typing import Tuple

import numpy as np

from merit.metrics.frames import frame_geometry, loizou_frames, signal_pair

#: Fraction of the frames, the lowest, averaged by LLR and WSS.
KEPT_FRACTION = 0.95

#: Klatt's critical bands as in ``composite.m``: centre frequencies and bandwidths in Hz.
BAND_CENTRES_HZ = (50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378,
                   798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16,
                   1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63)
BAND_WIDTHS_HZ = (70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398,
                  105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776,
                  217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136)

#: Klatt's weights (ICASSP 1982, p. 1280): distance to the frame's highest band and to
#: the nearest spectral peak, in dB.
WSS_KMAX = 20.0
WSS_KLOCMAX = 1.0

#: Band energies below this are taken as this (-100 dB): silent frames stay finite.
WSS_ENERGY_FLOOR = 1e-10


def lpc_order(fs: int) -> int:
    """The LPC order of the LLR: 10 below 10 kHz, 16 above (``composite.m``)."""
    return 10 if fs < 10000 else 16


def _mean_of_lowest(values: np.ndarray) -> float:
    """The mean of the lowest ``round(KEPT_FRACTION · n)`` values, rounding as MATLAB."""
    kept = int(np.floor(values.shape[0] * KEPT_FRACTION + 0.5))
    return float(np.mean(np.sort(values)[:kept]))


def _autocorrelation(frames: np.ndarray, order: int) -> np.ndarray:
    """Lags 0..order of each frame, ``(num_frames, order + 1)``: Σₙ x[n]·x[n + k]."""
    length = frames.shape[1]
    return np.stack([np.einsum("ij,ij->i", frames[:, :length - lag], frames[:, lag:])
                     for lag in range(order + 1)], axis=1)


def _prediction_polynomials(lags: np.ndarray) -> np.ndarray:
    """The LPC inverse filters ``[1, −a₁, …, −a_p]`` of each frame from its lags, by the
    Levinson-Durbin recursion, ``(num_frames, order + 1)``. A frame whose prediction
    error reaches 0 (a digitally silent frame) keeps the coefficients found so far."""
    num_frames, order = lags.shape[0], lags.shape[1] - 1
    coefficients = np.zeros((num_frames, order))
    error = lags[:, 0].copy()
    for i in range(order):
        residual = lags[:, i + 1] - np.einsum("ij,ij->i", coefficients[:, :i], lags[:, i:0:-1])
        reflection = np.divide(residual, error, out=np.zeros(num_frames), where=error > 0)
        coefficients[:, :i] -= reflection[:, None] * coefficients[:, :i][:, ::-1]
        coefficients[:, i] = reflection
        error = (1.0 - reflection ** 2) * error
    return np.concatenate([np.ones((num_frames, 1)), -coefficients], axis=1)


def log_likelihood_ratio(clean, estimate, fs: int = 16000) -> float:
    """Log-likelihood ratio of the LPC models (Quackenbush et al. 1988, eq. 2.18), the
    mean of its lowest 95 % frames, as in ``composite.m``.

    Per frame, with ``R`` the Toeplitz autocorrelation matrix of the clean frame and
    ``a_c``, ``a_e`` the LPC inverse filters of the clean and the estimated frame (order
    ``lpc_order(fs)``: 16 at 16 kHz): ``log((a_e R a_eᵀ) / (a_c R a_cᵀ))``, 0 for
    identical frames and positive otherwise (``a_c`` minimises the quadratic form). A
    digitally silent clean frame has no LPC model and scores 0.

    Not limited to [0, 2] per frame: that limit is in Loizou's stand-alone
    ``comp_llr.m`` but not in the ``composite.m`` whose values CSIG and COVL were
    fitted on (nor in its ports).

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``.
        fs: sampling rate in Hz.

    Returns:
        LLR (lower is better, 0 for identical signals).

    Raises:
        ValueError: different lengths, not 1-D, or shorter than one frame and hop
            (600 samples at 16 kHz).
    """
    ref, est = signal_pair(clean, estimate)
    frame, hop = frame_geometry(fs)
    order = lpc_order(fs)
    ref_lags = _autocorrelation(loizou_frames(ref, frame, hop, "the LLR"), order)
    est_lags = _autocorrelation(loizou_frames(est, frame, hop, "the LLR"), order)
    toeplitz = ref_lags[:, np.abs(np.subtract.outer(np.arange(order + 1), np.arange(order + 1)))]
    ref_filter, est_filter = _prediction_polynomials(ref_lags), _prediction_polynomials(est_lags)
    numerator = np.einsum("fi,fij,fj->f", est_filter, toeplitz, est_filter)
    denominator = np.einsum("fi,fij,fj->f", ref_filter, toeplitz, ref_filter)
    ratio = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
    return _mean_of_lowest(np.log(ratio))


@lru_cache(maxsize=4)
def _critical_band_filters(fs: int) -> Tuple[np.ndarray, int]:
    """``(filters, n_fft)``: the 25 Gaussian critical-band filters of ``composite.m`` over
    the first ``n_fft / 2`` FFT bins, ``(25, n_fft // 2)``, each scaled by
    ``BAND_WIDTHS_HZ[0] / bandwidth`` and cut to 0 below its −30 dB point; ``n_fft``
    is the power of two at or above twice the frame (1024 at 16 kHz)."""
    frame, _ = frame_geometry(fs)
    n_fft = 2 ** int(np.ceil(np.log2(2 * frame)))
    half, nyquist = n_fft // 2, fs / 2
    widths = np.asarray(BAND_WIDTHS_HZ)
    centre_bins = np.floor(np.asarray(BAND_CENTRES_HZ) / nyquist * half)
    width_bins = widths / nyquist * half
    filters = np.exp(-11.0 * ((np.arange(half)[None, :] - centre_bins[:, None])
                              / width_bins[:, None]) ** 2
                     + (np.log(widths[0]) - np.log(widths))[:, None])
    return np.where(filters > np.exp(-30.0 / (2.0 * 2.303)), filters, 0.0), n_fft


def _band_energies_db(frames: np.ndarray, fs: int) -> np.ndarray:
    """Critical-band energies of each frame's power spectrum in dB, ``(num_frames, 25)``."""
    filters, n_fft = _critical_band_filters(fs)
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)[:, :n_fft // 2]) ** 2
    return 10.0 * np.log10(np.maximum(power @ filters.T, WSS_ENERGY_FLOOR))


def _nearest_peaks(energy_db: np.ndarray) -> np.ndarray:
    """For bands 1..24 of each frame, the energy of the nearest spectral peak, searched
    upwards where the slope to the next band rises and downwards where it does not,
    ``(num_frames, 24)``.

    As in ``composite.m``: upwards, the band before the first non-rising slope (the
    last band if none); downwards, the band after the last rising slope (the first if
    none).
    """
    slope = np.diff(energy_db, axis=1)
    rising = slope > 0
    band = np.arange(slope.shape[1])
    next_non_rising = np.minimum.accumulate(
        np.where(rising, slope.shape[1], band)[:, ::-1], axis=1)[:, ::-1]
    last_rising = np.maximum.accumulate(np.where(rising, band, -1), axis=1)
    peak = np.where(rising, next_non_rising - 1, last_rising + 1)
    return np.take_along_axis(energy_db, peak, axis=1)


def _slopes_and_weights(frames: np.ndarray, fs: int) -> Tuple[np.ndarray, np.ndarray]:
    """The spectral slopes of each frame (dB from one band to the next) and Klatt's
    weight of each slope, ``Kmax / (Kmax + dBmax − E) · Klocmax / (Klocmax + peak − E)``
    with ``E`` the band's energy, both ``(num_frames, 24)``."""
    energy = _band_energies_db(frames, fs)
    lower = energy[:, :-1]
    weight = (WSS_KMAX / (WSS_KMAX + energy.max(axis=1, keepdims=True) - lower)
              * WSS_KLOCMAX / (WSS_KLOCMAX + _nearest_peaks(energy) - lower))
    return np.diff(energy, axis=1), weight


def weighted_spectral_slope(clean, estimate, fs: int = 16000) -> float:
    """Weighted spectral slope distance (Klatt 1982), the mean of its lowest 95 % frames,
    as in ``composite.m``.

    Per frame: the power spectrum (FFT of ``n_fft`` = 1024 points at 16 kHz) through 25
    critical-band filters, in dB (floored at -100 dB); the slopes between neighbouring
    bands; their squared clean-minus-estimate differences averaged with the mean of the
    clean and the estimated Klatt weights (``_slopes_and_weights``, Kmax = 20,
    Klocmax = 1), normalised by the sum of the weights.

    Args:
        clean: reference signal, shape ``(num_samples,)``.
        estimate: enhanced signal, shape ``(num_samples,)``.
        fs: sampling rate in Hz.

    Returns:
        WSS (lower is better, 0 for identical signals).

    Raises:
        ValueError: different lengths, not 1-D, or shorter than one frame and hop.
    """
    ref, est = signal_pair(clean, estimate)
    frame, hop = frame_geometry(fs)
    ref_slope, ref_weight = _slopes_and_weights(loizou_frames(ref, frame, hop, "the WSS"), fs)
    est_slope, est_weight = _slopes_and_weights(loizou_frames(est, frame, hop, "the WSS"), fs)
    weight = (ref_weight + est_weight) / 2.0
    distortion = np.sum(weight * (ref_slope - est_slope) ** 2, axis=1) / np.sum(weight, axis=1)
    return _mean_of_lowest(distortion)


def _rating(value: float) -> float:
    """A composite rating limited to the listening-test scale [1, 5] (NaN stays NaN)."""
    return float(np.clip(value, 1.0, 5.0))


def csig(llr: float, pesq: float, wss: float) -> float:
    """CSIG, the predicted rating of signal distortion:
    3.093 − 1.029·LLR + 0.603·PESQ − 0.009·WSS, limited to [1, 5]."""
    return _rating(3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss)


def cbak(pesq: float, wss: float, ssnr: float) -> float:
    """CBAK, the predicted rating of background intrusiveness:
    1.634 + 0.478·PESQ − 0.007·WSS + 0.063·segSNR (dB), limited to [1, 5]."""
    return _rating(1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * ssnr)


def covl(pesq: float, llr: float, wss: float) -> float:
    """COVL, the predicted rating of overall quality:
    1.594 + 0.805·PESQ − 0.512·LLR − 0.007·WSS, limited to [1, 5]."""
    return _rating(1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss)
