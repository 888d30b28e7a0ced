"""The composite measures (merit.metrics.composite) against a reference implementation on
real speech (mini_emo download, 16 kHz FLAC), and their defining properties."""
from pathlib import Path

import numpy as np
import pytest
import soundfile

from merit.metrics.composite import (cbak, covl, csig, log_likelihood_ratio, lpc_order,
                                     weighted_spectral_slope)
from merit.metrics.se import se_scores

SPEECH = (Path(__file__).resolve().parent.parent
          / "egs/mini_emo/merit/downloads/speech/en_f1/en_f1_001.flac")

#: (LLR, WSS, CSIG, CBAK, COVL) of ``estimates()`` against the clean recording, from
#: DeepFilterNet 0.5.6 (PyPI wheel ``deepfilternet-0.5.6-py3-none-any.whl``), module
#: ``df/sepm.py`` (its port of Loizou's ``composite.m`` via pysepm): ``llr(clean, est,
#: 16000)``, ``wss(clean, est, 16000)`` and ``composite(clean, est, 16000)`` (which
#: computes its own wide-band PESQ with the ``pesq`` package and its own segmental SNR),
#: run once on these float64 signals (numpy 2.4.6, scipy 1.17.1, pesq 0.0.4).
REFERENCE = {
    "white_noise_5db": (2.795316, 50.739308, 1.000000, 1.819805, 1.000000),
    "white_noise_20db": (1.318719, 21.235265, 2.273125, 2.935345, 1.742316),
    "muffled": (0.061257, 0.006866, 5.000000, 4.213936, 5.000000),
}
#: |ours − reference| allowed. LLR: DeepFilterNet rounds the autocorrelation and the LPC
#: coefficients to float32 (``lpcoeff``), which moves its LLR by up to 8e-4 here; with
#: those casts removed it agrees with ours to 1e-7. WSS: both in float64 (measured 5e-9).
#: CSIG, CBAK, COVL: the LLR's difference times its coefficient (≤ 1.029) and the
#: difference of segmental SNRs (theirs adds 2.2e-16 where ours adds 1e-10; 1e-4 dB).
TOLERANCE = {"llr": 1e-3, "wss": 1e-5, "csig": 2e-3, "cbak": 2e-3, "covl": 2e-3}


@pytest.fixture(scope="module")
def speech():
    signal, fs = soundfile.read(SPEECH, dtype="float64")
    assert fs == 16000 and signal.shape == (28822,)  # 236 frames: 95 % keeps 224, no tie
    return signal


def estimates(clean):
    """The fixed estimates of ``REFERENCE``: the recording plus seeded white noise at 5
    and 20 dB (energy ratio over the whole signal), and attenuated by 6 dB through the
    low-pass FIR [0.1, 0.8, 0.1]."""
    noise = np.random.default_rng(1234).standard_normal(clean.shape[0])

    def with_noise(snr_db):
        return clean + noise * np.sqrt(np.sum(clean ** 2) / (np.sum(noise ** 2) * 10 ** (snr_db / 10)))
    return {"white_noise_5db": with_noise(5.0), "white_noise_20db": with_noise(20.0),
            "muffled": 0.5 * np.convolve(clean, [0.1, 0.8, 0.1], mode="same")}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_equal_to_the_reference_implementation(speech, name):
    estimate = estimates(speech)[name]
    scores = se_scores(speech, estimate)
    expected = dict(zip(("llr", "wss", "csig", "cbak", "covl"), REFERENCE[name]))
    assert log_likelihood_ratio(speech, estimate) == scores["llr"]
    assert weighted_spectral_slope(speech, estimate) == scores["wss"]
    for metric, value in expected.items():
        assert scores[metric] == pytest.approx(value, abs=TOLERANCE[metric]), metric


def test_identical_signals_are_the_ceiling(speech):
    assert log_likelihood_ratio(speech, speech.copy()) == 0.0
    assert weighted_spectral_slope(speech, speech.copy()) == 0.0
    scores = se_scores(speech, speech.copy())
    assert scores["csig"] == scores["cbak"] == scores["covl"] == 5.0


def test_the_clean_signal_is_the_reference(speech):
    # LLR weighs both LPC models with the clean frame's autocorrelation: swapping the
    # signals changes it (WSS is symmetric in the two)
    noisy = estimates(speech)["white_noise_20db"]
    assert log_likelihood_ratio(noisy, speech) != pytest.approx(log_likelihood_ratio(speech, noisy),
                                                                abs=0.05)


def test_invariant_to_the_estimate_gain(speech):
    # LPC models and spectral slopes do not see a gain (up to the -100 dB floor of WSS)
    noisy = estimates(speech)["white_noise_20db"]
    assert log_likelihood_ratio(speech, 0.25 * noisy) == pytest.approx(
        log_likelihood_ratio(speech, noisy), rel=1e-9)
    assert weighted_spectral_slope(speech, 0.25 * noisy) == pytest.approx(
        weighted_spectral_slope(speech, noisy), rel=1e-9)


def test_more_noise_is_worse(speech):
    found = {name: se_scores(speech, est) for name, est in estimates(speech).items()}
    for metric in ("llr", "wss"):
        assert 0 < found["white_noise_20db"][metric] < found["white_noise_5db"][metric], metric
    for metric in ("csig", "cbak", "covl"):
        assert found["white_noise_5db"][metric] <= found["white_noise_20db"][metric], metric
    assert found["white_noise_5db"]["cbak"] < found["white_noise_20db"]["cbak"]


@pytest.mark.parametrize("llr, pesq, wss, ssnr", [
    (1.3, 1.2, 21.2, 13.9), (0.4, 2.5, 30.0, 5.0), (0.9, 3.1, 12.0, -2.0)])
def test_each_term_of_the_regressions(llr, pesq, wss, ssnr):
    """Hu & Loizou's coefficients written out, and each input moved on its own: a
    dropped or mis-signed term changes one of these."""
    expected = {"csig": 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss,
                "cbak": 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * ssnr,
                "covl": 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss}
    assert all(1 < value < 5 for value in expected.values())  # not at a limit
    assert csig(llr, pesq, wss) == pytest.approx(expected["csig"], abs=1e-12)
    assert cbak(pesq, wss, ssnr) == pytest.approx(expected["cbak"], abs=1e-12)
    assert covl(pesq, llr, wss) == pytest.approx(expected["covl"], abs=1e-12)
    step = 0.01
    assert csig(llr + step, pesq, wss) - csig(llr, pesq, wss) == pytest.approx(-1.029 * step)
    assert csig(llr, pesq + step, wss) - csig(llr, pesq, wss) == pytest.approx(0.603 * step)
    assert csig(llr, pesq, wss + step) - csig(llr, pesq, wss) == pytest.approx(-0.009 * step)
    assert cbak(pesq + step, wss, ssnr) - cbak(pesq, wss, ssnr) == pytest.approx(0.478 * step)
    assert cbak(pesq, wss + step, ssnr) - cbak(pesq, wss, ssnr) == pytest.approx(-0.007 * step)
    assert cbak(pesq, wss, ssnr + step) - cbak(pesq, wss, ssnr) == pytest.approx(0.063 * step)
    assert covl(pesq + step, llr, wss) - covl(pesq, llr, wss) == pytest.approx(0.805 * step)
    assert covl(pesq, llr + step, wss) - covl(pesq, llr, wss) == pytest.approx(-0.512 * step)
    assert covl(pesq, llr, wss + step) - covl(pesq, llr, wss) == pytest.approx(-0.007 * step)


def test_the_ratings_are_limited_to_one_to_five():
    assert csig(0.0, 4.64, 0.0) == cbak(4.64, 0.0, 35.0) == covl(4.64, 0.0, 0.0) == 5.0
    assert csig(3.0, 1.0, 100.0) == cbak(1.0, 100.0, -10.0) == covl(1.0, 3.0, 100.0) == 1.0
    # no PESQ (no speech found): no rating either
    assert np.isnan(csig(0.5, float("nan"), 20.0)) and np.isnan(cbak(float("nan"), 20.0, 5.0))


def test_the_scored_row_is_the_regression_of_its_own_values(speech):
    scores = se_scores(speech, estimates(speech)["white_noise_20db"])
    assert scores["csig"] == csig(scores["llr"], scores["pesq"], scores["wss"])
    assert scores["cbak"] == cbak(scores["pesq"], scores["wss"], scores["ssnr"])
    assert scores["covl"] == covl(scores["pesq"], scores["llr"], scores["wss"])


def test_lpc_order_and_errors(speech):
    assert (lpc_order(8000), lpc_order(16000)) == (10, 16)
    for measure in (log_likelihood_ratio, weighted_spectral_slope):
        with pytest.raises(ValueError, match="599 samples is too short for the (LLR|WSS)"):
            measure(speech[:599], speech[:599])
        with pytest.raises(ValueError, match="28822 samples.*28821 samples"):
            measure(speech, speech[:-1])
    # digitally silent stretches stay finite: a silent clean frame scores 0 in the LLR
    padded = np.concatenate([np.zeros(4000), speech])
    noisy = padded + 1e-3 * np.random.default_rng(0).standard_normal(padded.shape[0])
    assert np.isfinite(log_likelihood_ratio(padded, noisy))
    assert np.isfinite(weighted_spectral_slope(padded, noisy))
