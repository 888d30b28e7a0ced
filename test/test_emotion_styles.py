"""merit.data.emotion_styles: WORLD-based emotion-style rendering of neutral speech.

No corpus exists in the tests, so the input is a deterministic synthetic voice: a
harmonic glottal-like source with a moving F0 contour, three formant resonators, a
fricative-like unvoiced gap and short silences at both ends, 2 s at 16 kHz.
"""
import numpy as np
import pytest
import pyworld
from scipy.signal import butter, lfilter, sosfilt

from merit.data.emotion_styles import (
    PEAK_LIMIT, STYLES, EmotionStyle, WorldFeatures, _resample_f0, analyze, render)

FS = 16000
N_RENDERS = 10
CLASSES = ("A", "H", "N", "S")

VOICES = {
    "male": (120.0, ((700, 80), (1220, 100), (2600, 150))),
    "female": (210.0, ((850, 90), (1550, 110), (2900, 160))),
}


def synthetic_voice(f0_hz, formants, peak=0.5, seed=0):
    """Deterministic voice-like test signal, shape (2 * FS,), float64, |x| max = peak.

    F0 follows a declining contour with two accent peaks (about -2 to +3 semitones
    around ``f0_hz``); the source has harmonics falling at 6 dB/octave up to 7.2 kHz and
    goes through one two-pole resonator per ``(frequency, bandwidth)`` in ``formants``.
    0-0.1 s and 1.9-2.0 s are near-silent, 0.95-1.10 s holds high-passed noise only.
    """
    rng = np.random.default_rng(seed)
    n = 2 * FS
    t = np.arange(n) / FS
    contour_st = (3.0 * np.exp(-((t - 0.55) / 0.12) ** 2)
                  + 2.0 * np.exp(-((t - 1.45) / 0.15) ** 2) - 1.0 * t)
    f0 = f0_hz * 2.0 ** (contour_st / 12.0)
    phase = 2.0 * np.pi * np.cumsum(f0) / FS
    source = np.zeros(n)
    for k in range(1, int(0.45 * FS / f0.min()) + 1):
        source += np.where(k * f0 < 0.45 * FS, 1.0 / k, 0.0) * np.sin(k * phase)
    source += 0.02 * rng.standard_normal(n)  # a little aspiration noise
    voice = source
    for freq, bandwidth in formants:
        r = np.exp(-np.pi * bandwidth / FS)
        a = [1.0, -2.0 * r * np.cos(2.0 * np.pi * freq / FS), r * r]
        voice = lfilter([sum(a)], a, voice)

    def gate(start_s, stop_s):
        g = ((t >= start_s) & (t < stop_s)).astype(float)
        ramp = np.hanning(int(0.015 * FS))
        return np.convolve(g, ramp / ramp.sum(), mode="same")

    voiced_gate = gate(0.10, 0.95) + gate(1.10, 1.90)
    syllables = 0.7 + 0.3 * np.cos(2.0 * np.pi * 4.0 * (t - 0.1))
    voice = voice / np.sqrt(np.mean(voice[voiced_gate > 0.5] ** 2)) * voiced_gate * syllables
    hiss = sosfilt(butter(4, 3000, "highpass", fs=FS, output="sos"), rng.standard_normal(n))
    hiss = 0.3 * hiss / np.sqrt(np.mean(hiss ** 2)) * gate(0.95, 1.10)
    x = voice + hiss + 1e-3 * rng.standard_normal(n)
    return x * (peak / np.max(np.abs(x)))


def mean_f0_st(wav):
    """(mean log-F0 over voiced frames in semitones re 100 Hz, voiced 10 ms frames).

    DIO (on a 2x downsampled copy, for speed) refined by StoneMask on the full signal.
    """
    x = np.asarray(wav, dtype=np.float64)
    f0, times = pyworld.dio(x, FS, f0_floor=60.0, f0_ceil=800.0, frame_period=10.0, speed=2)
    f0 = pyworld.stonemask(x, f0, times, FS)
    voiced = f0[f0 > 0]
    return float(np.mean(12.0 * np.log2(voiced / 100.0))), int(voiced.size)


def rms_db(wav):
    return float(10.0 * np.log10(np.mean(np.asarray(wav, dtype=np.float64) ** 2)))


def hf_lf_db(wav):
    """Energy above 2 kHz over energy below 1 kHz (50 Hz and up), in dB."""
    power = np.abs(np.fft.rfft(np.asarray(wav, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1.0 / FS)
    high = power[freqs > 2000].sum()
    low = power[(freqs >= 50) & (freqs < 1000)].sum()
    return float(10.0 * np.log10(high / low))


def seeds(cls, count, offset=0):
    """Distinct seeds per class, so classes do not share their jitter draws."""
    return [1000 * (CLASSES.index(cls) + 1) + offset + i for i in range(count)]


@pytest.fixture(scope="module")
def inputs():
    return {name: synthetic_voice(f0, formants) for name, (f0, formants) in VOICES.items()}


@pytest.fixture(scope="module")
def features(inputs):
    return {name: analyze(x, FS) for name, x in inputs.items()}


@pytest.fixture(scope="module")
def stats(features):
    """Per voice and class: arrays of per-render measurements over N_RENDERS seeds."""
    out = {}
    for voice, feats in features.items():
        for cls in CLASSES:
            rows = []
            for seed in seeds(cls, N_RENDERS):
                wav, info = render(feats, STYLES[cls], np.random.default_rng(seed))
                f0_st, n_voiced = mean_f0_st(wav)
                rows.append((f0_st, n_voiced, len(wav) / FS, rms_db(wav), hf_lf_db(wav)))
            out[voice, cls] = dict(zip(("f0_st", "n_voiced", "duration_s", "rms_db", "hf_lf_db"),
                                       np.array(rows).T))
    return out


def test_styles_table_directions():
    a, s, h, n = (STYLES[c] for c in "ASHN")
    assert set(STYLES) == {"A", "S", "H", "N"}
    assert all(style.name == key for key, style in STYLES.items())
    assert (n.f0_shift_st, n.f0_range_scale, n.tempo, n.level_db, n.tilt_db_per_octave,
            n.aperiodicity_db) == (0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    assert a.f0_shift_st > h.f0_shift_st > 0 > s.f0_shift_st
    assert a.f0_range_scale > h.f0_range_scale > 1 > s.f0_range_scale
    assert a.tempo > h.tempo > 1 > s.tempo
    assert a.level_db > h.level_db > 0 > s.level_db
    assert a.tilt_db_per_octave > h.tilt_db_per_octave > 0 > s.tilt_db_per_octave
    assert s.aperiodicity_db > 0
    for style in STYLES.values():  # N gets the same jitter as the emotional classes
        assert style.f0_shift_st_sd == n.f0_shift_st_sd > 0
        assert style.tempo_sd == n.tempo_sd > 0
        assert style.level_db_sd == n.level_db_sd > 0


def test_analyze_shapes_and_units(inputs):
    feats = analyze(inputs["male"].astype(np.float32), FS)
    assert isinstance(feats, WorldFeatures)
    n_frames = feats.n_frames
    assert abs(n_frames - (2 * FS / (FS * 0.005) + 1)) <= 1
    assert feats.f0.shape == (n_frames,) and feats.f0.dtype == np.float64
    assert feats.sp.shape == feats.ap.shape == (n_frames, feats.fft_size // 2 + 1)
    assert np.all(feats.sp > 0) and np.all((feats.ap >= 0) & (feats.ap <= 1))
    assert feats.n_samples == 2 * FS and feats.fs == FS
    voiced = feats.f0 > 0
    # the near-silent ends and the fricative gap are unvoiced, the vowels voiced
    times = np.arange(n_frames) * 0.005
    assert not voiced[(times > 1.0) & (times < 1.05)].any()
    assert voiced[(times > 0.3) & (times < 0.8)].mean() > 0.95
    with pytest.raises(ValueError):
        feats.f0[0] = 1.0  # read-only: renders must not be able to change shared features
    with pytest.raises(ValueError):
        analyze(np.zeros((2, FS)), FS)


def test_render_returns_float32_and_logged_parameters(features):
    wav, info = render(features["male"], STYLES["A"], np.random.default_rng(0))
    assert wav.dtype == np.float32 and wav.ndim == 1
    for key in ("f0_shift_st", "f0_range_scale", "tempo", "level_db", "tilt_db_per_octave",
                "aperiodicity_db", "peak_scale", "peak_limited", "duration_s"):
        assert key in info
    assert info["style"] == "A"
    assert info["duration_s"] == pytest.approx(len(wav) / FS)
    assert len(wav) == pytest.approx(2 * FS / info["tempo"], abs=FS * 0.005)
    with pytest.raises(TypeError):
        render(features["male"], STYLES["A"], np.random.RandomState(0))


@pytest.mark.parametrize("voice", VOICES)
def test_mean_f0_is_ordered_by_class(stats, voice):
    f0 = {cls: stats[voice, cls]["f0_st"].mean() for cls in CLASSES}
    assert f0["A"] - f0["N"] > 1.0, f0
    assert f0["H"] - f0["N"] > 1.0, f0
    assert f0["N"] - f0["S"] > 1.0, f0


@pytest.mark.parametrize("voice", VOICES)
def test_duration_is_ordered_by_tempo(stats, voice):
    duration = {cls: stats[voice, cls]["duration_s"].mean() for cls in CLASSES}
    voiced = {cls: stats[voice, cls]["n_voiced"].mean() for cls in CLASSES}
    assert duration["S"] > 1.05 * duration["N"] > 1.05 ** 2 * duration["A"], duration
    # the speech itself is stretched, not just padded: voiced frames scale the same way
    assert voiced["S"] > 1.05 * voiced["N"] > 1.05 ** 2 * voiced["A"], voiced


@pytest.mark.parametrize("voice", VOICES)
def test_level_is_ordered_by_class(stats, voice):
    level = {cls: stats[voice, cls]["rms_db"].mean() for cls in CLASSES}
    assert level["A"] > level["N"] + 2.0 > level["S"] + 4.0, level


@pytest.mark.parametrize("voice", VOICES)
def test_angry_has_more_high_frequency_energy_than_sad(stats, voice):
    ratio = {cls: stats[voice, cls]["hf_lf_db"].mean() for cls in CLASSES}
    assert ratio["A"] > ratio["S"] + 4.0, ratio
    assert ratio["A"] > ratio["N"] > ratio["S"], ratio


@pytest.mark.parametrize("voice", VOICES)
def test_neutral_stays_close_to_input(inputs, stats, voice):
    f0_in, _ = mean_f0_st(inputs[voice])
    neutral = stats[voice, "N"]
    assert abs(neutral["f0_st"].mean() - f0_in) < 1.0
    assert abs(neutral["duration_s"].mean() / 2.0 - 1.0) < 0.10
    assert abs(neutral["rms_db"].mean() - rms_db(inputs[voice])) < 1.5


def test_same_seed_same_output_different_seed_different_output(features):
    feats = features["female"]
    for cls in CLASSES:
        first, info1 = render(feats, STYLES[cls], np.random.default_rng(7))
        second, info2 = render(feats, STYLES[cls], np.random.default_rng(7))
        assert first.tobytes() == second.tobytes() and info1 == info2
        other, _ = render(feats, STYLES[cls], np.random.default_rng(8))
        assert first.shape != other.shape or not np.array_equal(first, other)


def test_loud_input_never_clips():
    loud = analyze(synthetic_voice(*VOICES["male"], peak=0.99), FS)
    limited = 0
    for seed in range(4):
        for cls in ("A", "H", "N"):
            wav, info = render(loud, STYLES[cls], np.random.default_rng(seed))
            assert np.max(np.abs(wav)) <= PEAK_LIMIT < 1.0
            assert info["peak_limited"] == (info["peak_scale"] < 1.0)
            limited += info["peak_limited"]
    assert limited > 0  # the limiter did have work to do


def test_angry_and_happy_overlap_in_mean_f0(features, stats):
    def f0_range(cls):
        extra = [mean_f0_st(render(features["male"], STYLES[cls],
                                   np.random.default_rng(seed))[0])[0]
                 for seed in seeds(cls, 20 - N_RENDERS, offset=N_RENDERS)]
        values = np.concatenate([stats["male", cls]["f0_st"], extra])
        return values.min(), values.max()

    a_low, a_high = f0_range("A")
    h_low, h_high = f0_range("H")
    assert a_low < h_high and h_low < a_high, ((a_low, a_high), (h_low, h_high))


def test_f0_is_never_interpolated_across_voicing_boundaries():
    f0 = np.array([0, 0, 100, 110, 121, 0, 0, 200, 0, 150, 160], dtype=float)
    positions = np.linspace(0, len(f0) - 1, 4 * len(f0) - 3)  # tempo 0.25
    out = _resample_f0(f0, positions)
    nearest = f0[np.floor(positions + 0.5).astype(int)]  # ties go right
    assert np.array_equal(out > 0, nearest > 0)  # voicing of the nearest source frame
    assert np.all((out == 0) | (out >= 100))  # never a value pulled towards 0
    assert np.all(out[(positions > 7.5) & (positions < 8.5)] == 0)
    inside = (positions > 2) & (positions < 4)
    assert np.all((out[inside] > 100) & (out[inside] < 121))
    assert np.allclose(out[positions == 7], 200)


def test_style_validation():
    with pytest.raises(ValueError):
        EmotionStyle("X", level_db_sd=-1.0)
    with pytest.raises(ValueError):
        EmotionStyle("X", tempo=0.2, tempo_sd=0.1)  # could draw a non-positive tempo
    with pytest.raises(ValueError):
        EmotionStyle("X", f0_shift_st=float("nan"))
