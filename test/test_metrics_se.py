"""SE metrics against hand computations on real speech (mini_emo download, 16 kHz FLAC)."""
from pathlib import Path

import numpy as np
import pytest
import soundfile

from merit.metrics.se import (DEFAULT_SE_METRICS, SE_METRICS, log_spectral_distance, pesq_wb,
                             se_metrics, se_scores, segmental_snr, si_sdr, stoi)

SPEECH = (Path(__file__).resolve().parent.parent
          / "egs/mini_emo/merit/downloads/speech/en_f1/en_f1_001.flac")


@pytest.fixture(scope="module")
def speech():
    signal, fs = soundfile.read(SPEECH, dtype="float64")
    assert fs == 16000 and signal.ndim == 1
    return signal


def add_white_noise(clean, snr_db, seed):
    """clean + white Gaussian noise scaled so that 10·log10(Σclean² / Σnoise²) = snr_db."""
    noise = np.random.default_rng(seed).standard_normal(clean.shape[0])
    noise *= np.sqrt(np.sum(clean ** 2) / (np.sum(noise ** 2) * 10 ** (snr_db / 10)))
    return clean + noise, noise


def ssnr_plain_loop(clean, estimate):
    """Segmental SNR written out as in the reference evaluation code, one frame at a time."""
    frame, hop = 480, 120  # 30 ms and 7.5 ms at 16 kHz
    window = np.hanning(frame + 2)[1:-1]  # MATLAB hanning(480): no zero end points
    values = []
    for k in range(int(len(clean) / hop - frame / hop)):
        c = clean[k * hop:k * hop + frame] * window
        e = estimate[k * hop:k * hop + frame] * window
        snr = 10 * np.log10(np.sum(c ** 2) / (np.sum((c - e) ** 2) + 1e-10) + 1e-10)
        values.append(min(max(snr, -10.0), 35.0))
    return float(np.mean(values))


def test_ssnr_of_identical_signals_is_the_ceiling(speech):
    assert segmental_snr(speech, speech.copy()) == 35.0
    # also with digitally silent stretches, which the reference code would put at -10 dB
    padded = np.concatenate([np.zeros(4000), speech, np.zeros(4000)])
    assert segmental_snr(padded, padded) == 35.0


def test_ssnr_of_a_scaled_copy_is_exact():
    # estimate = 0.9·clean: the error is 0.1·clean in every frame, so each frame has
    # SNR = 10·log10(1 / 0.1²) = 20 dB (eps = 1e-10 is negligible against S ≈ 45).
    t = np.arange(16000) / 16000
    clean = 0.5 * np.sin(2 * np.pi * 440 * t)
    assert segmental_snr(clean, 0.9 * clean) == pytest.approx(20.0, abs=1e-6)
    # 0.999·clean: 60 dB per frame, clipped to 35; 3·clean: error 2·clean, -6.02 dB;
    # -10·clean: error 11·clean, -20.8 dB per frame, clipped to -10.
    assert segmental_snr(clean, 0.999 * clean) == 35.0
    assert segmental_snr(clean, 3 * clean) == pytest.approx(-20 * np.log10(2), abs=1e-6)
    assert segmental_snr(clean, -10 * clean) == -10.0


def test_ssnr_matches_a_plain_loop_on_noisy_speech(speech):
    for snr_db, seed in ((5.0, 1), (-5.0, 2), (25.0, 3)):
        noisy, _ = add_white_noise(speech, snr_db, seed)
        expected = ssnr_plain_loop(speech, noisy)
        assert segmental_snr(speech, noisy) == pytest.approx(expected, abs=1e-9)
    # 28822 samples: int(28822/120 - 4) = 236 frames; a plain mean over all of them
    # (no voice-activity detection) puts it far below the 5 dB global SNR because
    # of the quiet frames
    noisy, _ = add_white_noise(speech, 5.0, 1)
    assert segmental_snr(speech, noisy) < 5.0 - 3


def test_ssnr_rejects_too_short_signals():
    with pytest.raises(ValueError, match="too short"):
        segmental_snr(np.ones(599), np.ones(599))
    assert segmental_snr(np.ones(600), np.ones(600)) == 35.0  # one frame


def test_si_sdr_of_noisy_speech_is_the_global_snr(speech):
    noisy, _ = add_white_noise(speech, 5.0, seed=4)
    # the noise is nearly orthogonal to the speech, so the projection is ~1·clean
    assert si_sdr(speech, noisy) == pytest.approx(5.0, abs=0.2)


def test_si_sdr_exact_with_orthogonal_noise(speech):
    clean = speech - speech.mean()
    noise = np.random.default_rng(5).standard_normal(clean.shape[0])
    noise -= noise.mean()
    noise -= (noise @ clean) / (clean @ clean) * clean  # exactly orthogonal, zero mean
    noise *= np.sqrt((clean @ clean) / (noise @ noise) / 10 ** (7.5 / 10))  # 7.5 dB
    # projection of clean + noise on clean is clean itself: SI-SDR = Σclean²/Σnoise²
    assert si_sdr(clean, clean + noise) == pytest.approx(7.5, abs=1e-6)
    # scale invariant, and a DC offset on either side is removed first
    assert si_sdr(clean + 0.3, 0.25 * (clean + noise) - 0.1) == pytest.approx(7.5, abs=1e-6)


def test_si_sdr_errors(speech):
    with pytest.raises(ValueError, match="constant"):
        si_sdr(np.full(100, 0.5), np.ones(100))
    with pytest.raises(ValueError, match="100 samples.*99 samples"):
        si_sdr(np.ones(100), np.ones(99))


def test_pesq_and_stoi_of_identical_speech(speech):
    assert pesq_wb(speech, speech) == pytest.approx(4.64, abs=0.01)
    assert stoi(speech, speech) == pytest.approx(1.0, abs=1e-6)
    assert stoi(speech, speech, extended=True) == pytest.approx(1.0, abs=1e-6)


def test_noisier_speech_scores_worse_everywhere(speech):
    noisy, _ = add_white_noise(speech, 0.0, seed=6)
    cleaner, _ = add_white_noise(speech, 20.0, seed=7)
    worse, better = se_scores(speech, noisy), se_scores(speech, cleaner)
    assert set(worse) == {"ssnr", "pesq", "stoi", "estoi", "si_sdr", "lsd", "llr", "wss",
                          "csig", "cbak", "covl"}
    for metric in DEFAULT_SE_METRICS:  # each in its declared direction
        low, high = sorted((worse[metric.name], better[metric.name]))
        assert (worse[metric.name], better[metric.name]) == (
            (low, high) if metric.higher_is_better else (high, low)), metric.name
        assert low < high, metric.name
    assert 1.0 < worse["pesq"] < better["pesq"] < 4.64
    assert better["si_sdr"] == pytest.approx(20.0, abs=0.2)


def test_pesq_needs_16_khz_and_speech(speech):
    with pytest.raises(ValueError, match="16000"):
        pesq_wb(speech, speech, fs=8000)
    silence = np.zeros(16000)
    assert np.isnan(pesq_wb(silence, silence))


def test_se_scores_rejects_length_mismatch(speech):
    with pytest.raises(ValueError, match=f"{len(speech)} samples.*{len(speech) - 160} samples"):
        se_scores(speech, speech[:-160])


def test_log_spectral_distance_known_answers(speech):
    assert log_spectral_distance(speech, speech) == 0.0
    # a uniform gain g moves every log power by 20·log10(g) dB (white noise: no bin
    # is so weak that the eps floor matters)
    white = np.random.default_rng(1).standard_normal(16000)
    assert log_spectral_distance(white, 0.5 * white) == pytest.approx(20 * np.log10(2), abs=1e-6)
    noisy = speech + 0.05 * np.random.default_rng(0).standard_normal(speech.size)
    assert log_spectral_distance(speech, noisy) == pytest.approx(log_spectral_distance(noisy, speech))
    assert log_spectral_distance(speech, noisy) > 1.0
    with pytest.raises(ValueError, match="too short"):
        log_spectral_distance(speech[:100], speech[:100])


def test_se_scores_holds_every_declared_metric(speech):
    scores = se_scores(speech, 0.5 * speech)
    assert list(scores) == [metric.name for metric in SE_METRICS if metric.default]
    assert scores["lsd"] == log_spectral_distance(speech, 0.5 * speech)
    # DNSMOS is declared but opt-in: scored only when named
    assert {m.name for m in SE_METRICS} - set(scores) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
    assert [m.name for m in se_metrics(["dnsmos_bak"])] == list(scores) + ["dnsmos_bak"]
    with pytest.raises(ValueError, match="unknown opt-in SE metric.*pesq.*choices: dnsmos_sig"):
        se_metrics(["pesq"])


def test_a_derived_metric_is_declared_after_its_sources():
    names = [metric.name for metric in SE_METRICS]
    for metric in SE_METRICS:
        for source in metric.derived_from:
            assert names.index(source) < names.index(metric.name), (metric.name, source)
    assert {m.name for m in SE_METRICS if m.derived_from} == {"csig", "cbak", "covl"}


def test_a_derived_metric_without_its_sources_is_an_error(speech):
    csig = next(metric for metric in SE_METRICS if metric.name == "csig")
    pesq = next(metric for metric in SE_METRICS if metric.name == "pesq")
    with pytest.raises(ValueError, match="csig is computed from llr, wss: score them before it"):
        se_scores(speech, speech, metrics=(pesq, csig))


def test_stoi_equals_pystoi_whatever_was_scored_before(speech):
    """Each signal is resampled once and reused (merit.metrics.se._resampled): every
    STOI and ESTOI must still be pystoi's own on the signals given, also for a signal
    of the same length as one seen before, and after the kept ones are evicted."""
    from pystoi import stoi as pystoi_stoi

    clean = speech[:32000]
    estimates = [add_white_noise(clean, snr, seed)[0] for seed, snr in enumerate((-5, 0, 5, 10) * 3)]
    for estimate in estimates + estimates[:2]:
        for extended in (False, True):
            expected = pystoi_stoi(clean, estimate, 16000, extended=extended)
            # (numpy's sums may differ in the last bit with the arrays' alignment)
            assert stoi(clean, estimate, extended=extended) == pytest.approx(expected, rel=1e-12)
