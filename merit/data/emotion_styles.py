"""Render neutral read speech in four constructed emotion styles with the WORLD vocoder.

The toolkit's corpus has neutral speech only. To give the speech-emotion classifier
labels to learn, each base utterance is analysed once with WORLD (``analyze``) and
resynthesised four times (``render``) with its prosody moved towards a target style:
A (hot anger), S (sadness), H (happiness / elation) and N (neutral). Every parameter
gets per-utterance Gaussian jitter, so neighbouring classes overlap and SER on clean
speech is learnable but not trivial. N keeps the means at "no change" but gets the
same jitter and goes through the same analysis/resynthesis path, so vocoder
artefacts are never a class cue.

Directions of change follow the acoustic correlates of emotion reported in:

* Banse & Scherer (1996), "Acoustic profiles in vocal emotion expression", J. Pers.
  Soc. Psychol. 70(3): acted hot anger and elation have high mean F0 and energy,
  sadness low F0 and energy.
* Scherer (2003), "Vocal communication of emotion: a review of research paradigms",
  Speech Communication 40: synthetic table of correlates -- anger and joy: intensity,
  F0 mean, F0 range/variability and speech rate up, HF energy up (joy: weaker);
  sadness: all of these down.
* Juslin & Laukka (2003), "Communication of emotions in vocal expression and music
  performance: different channels, same code?", Psychol. Bull. 129(5): meta-analysis;
  anger fast, loud, much HF energy, high and variable F0; happiness fast, fairly loud,
  high and variable F0, moderate HF energy; sadness slow, soft, little HF energy,
  low F0 with little variability.
* Gobl & Ni Chasaide (2003), "The role of voice quality in communicating emotion, mood
  and attitude", Speech Communication 40: tense voice goes with anger, lax/breathy
  voice with low-activation states such as sadness -- the basis for the small
  aperiodicity (breathiness) change.

The magnitudes are our own engineering choices, not numbers taken from those papers:
moderate compared with acted portrayals, and with jitter (standard deviations, same for
every class) large enough that A and H overlap on every single cue.

=====  ============  ============  ============  ===========  ============  ============
style  F0 shift      F0 range      tempo         level        tilt          aperiodicity
       (semitones)   (factor)      (factor)      (dB)         (dB/octave)   (dB, voiced)
=====  ============  ============  ============  ===========  ============  ============
A      +4.0 +- 1.5   1.35 +- 0.15  1.10 +- 0.05  +5.0 +- 2.0  +2.0 +- 1.0   -1.5 +- 1.5
H      +3.0 +- 1.5   1.30 +- 0.15  1.05 +- 0.05  +2.5 +- 2.0  +1.0 +- 1.0    0.0 +- 1.5
N       0.0 +- 1.5   1.00 +- 0.15  1.00 +- 0.05   0.0 +- 2.0   0.0 +- 1.0    0.0 +- 1.5
S      -2.5 +- 1.5   0.70 +- 0.15  0.85 +- 0.05  -4.0 +- 2.0  -2.0 +- 1.0   +4.0 +- 1.5
=====  ============  ============  ============  ===========  ============  ============

(mean +- jitter standard deviation; jitter draws are clipped at +-2.5 standard deviations.)

Meaning of each parameter (see ``EmotionStyle``):

* F0 shift: added to log-F0 of voiced frames, in semitones (+12 = one octave up).
* F0 range: factor on the deviation of log-F0 from its utterance mean (voiced frames).
* tempo: > 1 is faster, i.e. the output lasts ``1 / tempo`` times the input.
* level: output RMS relative to the input RMS, in dB (applied last, after synthesis).
* tilt: gain ``tilt * log2(f / 1 kHz)`` dB on the WORLD spectral envelope; positive
  means more high-frequency energy (flatter spectrum, higher vocal effort). Tilt only
  redistributes energy: the level step afterwards sets the overall RMS.
* aperiodicity: WORLD aperiodicity of voiced frames scaled by this many dB (amplitude
  ratio, capped at 1); positive is breathier.

The output never clips: if its peak exceeds 0.99 it is scaled down to 0.99 and the
returned info records it. Rendering is deterministic given the generator state (WORLD
reseeds its own noise generator on every synthesis call). Cost at 16 kHz on one core:
roughly 40-55 ms of CPU per second of audio for ``analyze``, 10-15 ms per second of
output for one ``render``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyworld

FRAME_PERIOD_MS = 5.0
"""WORLD frame period in milliseconds."""

F0_FLOOR_HZ = 60.0
"""Lowest F0 DIO searches for, and the floor that sets CheapTrick's FFT size."""

F0_CEIL_HZ = 800.0
"""Highest F0 DIO searches for."""

D4C_DECIMATION = 2
"""Aperiodicity is estimated on every ``D4C_DECIMATION``-th frame and interpolated
linearly in time (D4C is the slowest analysis step; aperiodicity varies slowly, and the
difference to full-rate D4C is a fraction of a dB on average)."""

TILT_PIVOT_HZ = 1000.0
"""Frequency at which the spectral tilt gain is 0 dB."""

TILT_FLOOR_HZ = 50.0
"""Below this frequency the tilt gain is held constant (log2(0) is undefined)."""

F0_OUT_RANGE_HZ = (65.0, 1000.0)
"""Modified F0 of voiced frames is clipped to this range in Hz. The floor (below the
modal range of nearly all adult voices) also bounds WORLD's pulse interval, which lets
``synthesis_fft_size`` use a short FFT; it is reached only by the lowest frames of low
voices rendered with a large downward shift or range expansion."""

MIN_SYNTHESIS_FFT_MS = 32.0
"""Shortest FFT (impulse-response length) used for synthesis, in milliseconds."""

JITTER_CLIP_SD = 2.5
"""Jitter draws (standard normal) are clipped to +- this many standard deviations."""

PEAK_LIMIT = 0.99
"""Outputs whose absolute peak exceeds this are scaled down to it."""

_PARAMETERS = (
    "f0_shift_st",
    "f0_range_scale",
    "tempo",
    "level_db",
    "tilt_db_per_octave",
    "aperiodicity_db",
)
"""Order in which ``EmotionStyle.draw`` consumes standard normals from the generator."""

_FACTORS = ("f0_range_scale", "tempo")
"""Parameters that are multiplicative factors and must stay positive."""


@dataclass(frozen=True)
class EmotionStyle:
    """Mean prosody change of one emotion style and the per-utterance jitter around it.

    Every ``*_sd`` field is the standard deviation of a Gaussian draw in the same unit as
    the matching mean; draws are clipped to ``JITTER_CLIP_SD`` standard deviations.
    """

    name: str
    f0_shift_st: float = 0.0
    """Shift of voiced log-F0, in semitones."""
    f0_range_scale: float = 1.0
    """Factor on the deviation of voiced log-F0 from its utterance mean (1 = unchanged)."""
    tempo: float = 1.0
    """Speaking-rate factor; > 1 is faster, so the duration becomes ``1 / tempo`` times."""
    level_db: float = 0.0
    """Output RMS relative to input RMS, in dB."""
    tilt_db_per_octave: float = 0.0
    """Spectral-envelope gain slope in dB per octave, 0 dB at ``TILT_PIVOT_HZ``."""
    aperiodicity_db: float = 0.0
    """Change of voiced-frame aperiodicity (amplitude ratio), in dB; > 0 is breathier."""
    f0_shift_st_sd: float = 0.0
    f0_range_scale_sd: float = 0.0
    tempo_sd: float = 0.0
    level_db_sd: float = 0.0
    tilt_db_per_octave_sd: float = 0.0
    aperiodicity_db_sd: float = 0.0

    def __post_init__(self):
        for param in _PARAMETERS:
            mean, sd = getattr(self, param), getattr(self, param + "_sd")
            if not (math.isfinite(mean) and math.isfinite(sd)) or sd < 0:
                raise ValueError(f"style {self.name!r}: {param}={mean}, sd={sd}: "
                                 "need finite values and sd >= 0")
            if param in _FACTORS and mean - JITTER_CLIP_SD * sd <= 0:
                raise ValueError(f"style {self.name!r}: {param} must stay positive: "
                                 f"mean {mean} - {JITTER_CLIP_SD} * sd {sd} <= 0")

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One jittered parameter set: ``{parameter: value}`` in the units of the fields.

        Always consumes exactly ``len(_PARAMETERS)`` standard normals from ``rng``, in
        the order of ``_PARAMETERS``, whatever the standard deviations are.
        """
        z = np.clip(rng.standard_normal(len(_PARAMETERS)), -JITTER_CLIP_SD, JITTER_CLIP_SD)
        return {param: float(getattr(self, param) + getattr(self, param + "_sd") * zi)
                for param, zi in zip(_PARAMETERS, z)}


_JITTER = dict(f0_shift_st_sd=1.5, f0_range_scale_sd=0.15, tempo_sd=0.05,
               level_db_sd=2.0, tilt_db_per_octave_sd=1.0, aperiodicity_db_sd=1.5)

STYLES: dict[str, EmotionStyle] = {
    "A": EmotionStyle("A", f0_shift_st=4.0, f0_range_scale=1.35, tempo=1.10, level_db=5.0,
                      tilt_db_per_octave=2.0, aperiodicity_db=-1.5, **_JITTER),
    "S": EmotionStyle("S", f0_shift_st=-2.5, f0_range_scale=0.70, tempo=0.85, level_db=-4.0,
                      tilt_db_per_octave=-2.0, aperiodicity_db=4.0, **_JITTER),
    "H": EmotionStyle("H", f0_shift_st=3.0, f0_range_scale=1.30, tempo=1.05, level_db=2.5,
                      tilt_db_per_octave=1.0, aperiodicity_db=0.0, **_JITTER),
    "N": EmotionStyle("N", **_JITTER),
}
"""The four constructed styles, keyed by label: A angry, S sad, H happy, N neutral."""


@dataclass(frozen=True, eq=False)
class WorldFeatures:
    """WORLD analysis of one utterance (arrays are read-only).

    ``T`` is the number of frames (one every ``frame_period_ms``), ``K = fft_size // 2 + 1``
    the number of frequency bins, bin ``k`` at ``k * fs / fft_size`` Hz.
    """

    f0: np.ndarray
    """(T,) float64, F0 in Hz; 0 marks unvoiced frames."""
    sp: np.ndarray
    """(T, K) float64, CheapTrick power spectral envelope."""
    ap: np.ndarray
    """(T, K) float64, D4C aperiodicity (amplitude ratio) in [0, 1]."""
    fs: int
    """Sample rate in Hz."""
    frame_period_ms: float
    n_samples: int
    """Length of the analysed waveform in samples."""
    rms: float
    """RMS of the analysed waveform (linear, full scale 1)."""

    @property
    def fft_size(self) -> int:
        return 2 * (self.sp.shape[1] - 1)

    @property
    def n_frames(self) -> int:
        return self.f0.shape[0]


def analyze(wav: np.ndarray, fs: int) -> WorldFeatures:
    """WORLD analysis of a mono waveform, done once per base utterance.

    ``wav``: shape (samples,), float in [-1, 1] (any float dtype; converted to float64).
    ``fs``: sample rate in Hz. F0 comes from DIO refined by StoneMask, the spectral
    envelope from CheapTrick, aperiodicity from D4C (on every ``D4C_DECIMATION``-th
    frame, interpolated in time), all on a ``FRAME_PERIOD_MS`` frame grid.
    """
    x = np.ascontiguousarray(wav, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (samples,), got {x.shape}")
    fs = int(fs)
    if x.shape[0] < fs * 4 * FRAME_PERIOD_MS / 1000:
        raise ValueError(f"waveform too short for WORLD analysis: {x.shape[0]} samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform contains NaN or infinite samples")
    f0, times = pyworld.dio(x, fs, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ,
                            frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, fs)
    fft_size = pyworld.get_cheaptrick_fft_size(fs, F0_FLOOR_HZ)
    sp = pyworld.cheaptrick(x, f0, times, fs, f0_floor=F0_FLOOR_HZ, fft_size=fft_size)
    n_frames = f0.shape[0]
    coarse = np.arange(0, n_frames, D4C_DECIMATION)
    if coarse[-1] != n_frames - 1:
        coarse = np.append(coarse, n_frames - 1)
    ap_coarse = pyworld.d4c(x, np.ascontiguousarray(f0[coarse]),
                            np.ascontiguousarray(times[coarse]), fs, fft_size=fft_size)
    ap = np.clip(_interp_rows(coarse.astype(np.float64), ap_coarse,
                              np.arange(n_frames, dtype=np.float64)), 0.0, 1.0)
    for array in (f0, sp, ap):
        array.setflags(write=False)
    return WorldFeatures(f0=f0, sp=sp, ap=ap, fs=fs, frame_period_ms=FRAME_PERIOD_MS,
                         n_samples=x.shape[0], rms=float(np.sqrt(np.mean(x * x))))


def render(features: WorldFeatures, style: EmotionStyle,
           rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Resynthesise ``features`` in ``style`` with parameters drawn from ``rng``.

    Returns ``(wav, info)``: ``wav`` has shape (samples,), float32, at ``features.fs``,
    about ``features.n_samples / tempo`` samples long, with ``max |wav| <= PEAK_LIMIT``.
    ``info`` holds plain Python values for logging: ``style``, the drawn parameters
    (keys of ``_PARAMETERS``, units as in ``EmotionStyle``), ``n_frames_in``,
    ``n_frames_out``, ``synthesis_fft_size``, ``duration_s``, ``peak_scale`` (1.0 unless
    the peak was limited) and ``peak_limited``.

    Steps: draw parameters; shift/scale log-F0 of voiced frames; apply tilt to the
    envelope and the aperiodicity change to voiced frames; resample all frame sequences
    in time for the tempo (log envelope and aperiodicity linearly, F0 see
    ``_resample_f0``); synthesise (FFT size from ``synthesis_fft_size``); set the RMS to
    input RMS + level; limit the peak.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    params = style.draw(rng)
    fs = features.fs

    f0 = features.f0.copy()
    voiced = f0 > 0
    if voiced.any():
        log_f0 = np.log(f0[voiced])
        centre = log_f0.mean()
        log_f0 = (centre + params["f0_range_scale"] * (log_f0 - centre)
                  + params["f0_shift_st"] * math.log(2.0) / 12.0)
        f0[voiced] = np.clip(np.exp(log_f0), *F0_OUT_RANGE_HZ)

    fft_size = synthesis_fft_size(fs, features.fft_size)
    step = features.fft_size // fft_size  # keep every step-th bin: same frequencies, fewer bins
    freqs = np.arange(fft_size // 2 + 1) * fs / fft_size
    octaves = np.log2(np.maximum(freqs, TILT_FLOOR_HZ) / TILT_PIVOT_HZ)
    # power envelope: a gain of g dB multiplies it by 10 ** (g / 10)
    log_sp = np.log(features.sp[:, ::step])
    log_sp += (params["tilt_db_per_octave"] * octaves) * (math.log(10.0) / 10.0)

    ap = features.ap[:, ::step].copy()
    ap[voiced] = np.minimum(ap[voiced] * 10.0 ** (params["aperiodicity_db"] / 20.0), 1.0)

    n_in = features.n_frames
    n_out = max(2, int(round((n_in - 1) / params["tempo"])) + 1)
    positions = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    source = np.arange(n_in, dtype=np.float64)
    f0_out = _resample_f0(f0, positions)
    sp_out = np.exp(_interp_rows(source, log_sp, positions))
    ap_out = _interp_rows(source, ap, positions)

    wav = pyworld.synthesize(f0_out, sp_out, ap_out, fs, features.frame_period_ms)
    n_target = int(round(features.n_samples * (n_out - 1) / (n_in - 1)))
    if wav.shape[0] >= n_target:
        wav = wav[:n_target]
    else:
        wav = np.concatenate([wav, np.zeros(n_target - wav.shape[0])])

    rms = float(np.sqrt(np.mean(wav * wav))) if wav.size else 0.0
    if rms > 0 and features.rms > 0:
        wav = wav * (features.rms / rms * 10.0 ** (params["level_db"] / 20.0))
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    peak_scale = 1.0
    if peak > PEAK_LIMIT:
        peak_scale = PEAK_LIMIT / peak
        wav = wav * peak_scale
    wav = wav.astype(np.float32)

    info = {"style": style.name, **params, "n_frames_in": int(n_in),
            "n_frames_out": int(n_out), "synthesis_fft_size": int(fft_size),
            "duration_s": wav.shape[0] / fs,
            "peak_scale": peak_scale, "peak_limited": peak_scale < 1.0}
    return wav, info


def synthesis_fft_size(fs: int, analysis_fft_size: int) -> int:
    """FFT size for ``pyworld.synthesize``: the smallest safe power of two, never above
    the CheapTrick ``analysis_fft_size``. Synthesis time is roughly proportional to it.

    It depends on ``fs`` and constants only, never on the style, so every class goes
    through the same vocoder settings. WORLD makes one FFT-long response per pulse and
    writes the noise of a whole pulse interval into that FFT buffer, so the interval
    must fit. Next to voicing boundaries WORLD ramps F0 towards 0 and keeps the frame
    voiced down to half its F0, so an interval can reach twice the longest period:
    we require ``fft_size > 2 * fs / F0_OUT_RANGE_HZ[0] + 2`` samples, and at least
    ``MIN_SYNTHESIS_FFT_MS``. At 16 kHz that is 512 (CheapTrick analyses with 1024 for a
    60 Hz floor). The envelope is smooth in frequency (CheapTrick smooths over at least
    one F0 width), so keeping every other bin changes the output spectrum by about
    0.1 dB on average; it halves synthesis time.
    """
    def safe(size):
        return (size >= fs * MIN_SYNTHESIS_FFT_MS / 1000.0
                and size > 2.0 * fs / F0_OUT_RANGE_HZ[0] + 2.0)

    size = analysis_fft_size
    while size % 2 == 0 and safe(size // 2):
        size //= 2
    return size


def _interp_rows(source: np.ndarray, values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0.

    ``source``: (N,) increasing frame positions of the rows of ``values`` (N, ...);
    ``target``: (M,) positions within ``[source[0], source[-1]]``. Returns (M, ...).
    """
    right = np.clip(np.searchsorted(source, target, side="right"), 1, source.shape[0] - 1)
    left = right - 1
    frac = (target - source[left]) / (source[right] - source[left])
    frac = np.clip(frac, 0.0, 1.0).reshape((-1,) + (1,) * (values.ndim - 1))
    start = values[left]
    out = values[right]
    out -= start
    out *= frac
    out += start
    return out


def _resample_f0(f0: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """F0 track (N,) in Hz (0 = unvoiced) read at fractional frame ``positions`` (M,).

    Between two voiced frames log-F0 is interpolated linearly. Where either neighbour is
    unvoiced the nearest frame is copied (its F0 or its 0), so voiced/unvoiced
    boundaries move with the time axis and no F0 is ever interpolated towards 0.
    """
    left = np.clip(np.floor(positions).astype(np.int64), 0, f0.shape[0] - 2)
    right = left + 1
    frac = np.clip(positions - left, 0.0, 1.0)
    nearest = np.where(frac < 0.5, left, right)
    out = f0[nearest].copy()
    both = (f0[left] > 0) & (f0[right] > 0)
    if both.any():
        log_left = np.log(f0[left[both]])
        log_right = np.log(f0[right[both]])
        out[both] = np.exp(log_left + frac[both] * (log_right - log_left))
    return out
