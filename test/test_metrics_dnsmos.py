"""DNSMOS P.835 (merit.metrics.dnsmos) on real speech (mini_emo download): offline, equal
to speechmos's own computation, deterministic, and lower for noisy speech."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from merit.metrics import dnsmos
from merit.metrics.se import se_metrics, se_scores

REPO = Path(__file__).resolve().parent.parent
SPEAKER = REPO / "egs/mini_emo/merit/downloads/speech/en_f1"
DNSMOS_NAMES = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


@pytest.fixture(scope="module")
def speech():
    """The speaker's first recordings joined: 9.5 s, so one model segment of 9.01 s."""
    pieces = [soundfile.read(path, dtype="float64")[0] for path in sorted(SPEAKER.glob("*.flac"))]
    joined = np.concatenate(pieces)[:int(9.5 * 16000)]
    assert joined.shape[0] == 9.5 * 16000
    return joined


def with_noise(clean, snr_db, seed=0):
    noise = np.random.default_rng(seed).standard_normal(clean.shape[0])
    return clean + noise * np.sqrt(np.sum(clean ** 2) / (np.sum(noise ** 2) * 10 ** (snr_db / 10)))


def fresh(signal, fs=16000):
    """dnsmos_p835 with nothing remembered."""
    dnsmos._SCORED.clear()
    return dnsmos.dnsmos_p835(signal, fs)


def test_equal_to_speechmos(speech):
    """speechmos.dnsmos.run (the DNS Challenge's dnsmos_local.py, non-personalised) on
    the same signals: one segment, and a 1.8 s recording doubled to 14.4 s (5 segments)."""
    from speechmos import dnsmos as speechmos_dnsmos

    short = soundfile.read(SPEAKER / "en_f1_001.flac", dtype="float64")[0]
    assert dnsmos.segments(short).shape == (5, 144160)
    for signal in (speech, short):
        expected = speechmos_dnsmos.run(signal, 16000)
        found = fresh(signal)
        assert list(found) == ["sig", "bak", "ovrl"]
        for part in found:
            # one thread and a batch of segments here, speechmos's default threads one
            # segment at a time: float32 inference agrees to about 1e-7
            assert found[part] == pytest.approx(float(expected[f"{part}_mos"]), abs=1e-5), part


def test_clean_speech_beats_noisy_speech_and_runs_once_per_signal(speech, monkeypatch):
    runs = []
    session = dnsmos._session()
    monkeypatch.setattr(dnsmos, "_session", lambda: runs.append(1) or session)
    dnsmos._SCORED.clear()
    metrics = se_metrics(DNSMOS_NAMES)
    clean = se_scores(speech, speech, metrics=metrics)
    noisy = se_scores(speech, with_noise(speech, 0.0), metrics=metrics)
    assert len(runs) == 2  # the three ratings of one signal share one run of the model
    for scores in (clean, noisy):
        assert all(1.0 <= scores[name] <= 5.0 for name in DNSMOS_NAMES), scores
    assert clean["dnsmos_bak"] > noisy["dnsmos_bak"] + 1.0
    assert clean["dnsmos_ovrl"] > noisy["dnsmos_ovrl"] + 0.5
    # non-intrusive: the reference plays no part
    assert se_scores(with_noise(speech, 10.0), speech, metrics=metrics)["dnsmos_ovrl"] \
        == clean["dnsmos_ovrl"]


def test_deterministic(speech):
    noisy = with_noise(speech, 5.0, seed=3)
    assert fresh(noisy) == fresh(noisy.copy())


def test_one_thread_and_no_network():
    """In a fresh process: the model is the wheel's file, the session has one thread, and
    scoring opens no socket and imports neither speechmos's module nor requests."""
    script = (
        "import socket, sys\n"
        "import numpy as np\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('DNSMOS opened a network connection')\n"
        "socket.socket.connect = socket.create_connection = refuse\n"
        "from merit.metrics import dnsmos\n"
        "signal = 0.1 * np.random.default_rng(0).standard_normal(16000 * 10)\n"
        "print(dnsmos.dnsmos_p835(signal)['ovrl'])\n"
        "options = dnsmos._session().get_session_options()\n"
        "print(options.intra_op_num_threads, options.inter_op_num_threads)\n"
        "print(sorted(m for m in ('requests', 'speechmos.dnsmos', 'librosa') if m in sys.modules))\n"
        "print(dnsmos.model_path())\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    ovrl, threads, imported, path = out.stdout.splitlines()
    assert 1.0 <= float(ovrl) <= 5.0
    assert threads == "1 1"
    assert imported == "[]"
    assert path.endswith("speechmos/dnsmos_models/sig_bak_ovr.onnx")


def test_segments_as_the_reference_cuts_them():
    second = 16000
    # short signals are doubled until 9.01 s: 3 s -> 6 s -> 12 s, segments at 0, 1, 2 s
    assert dnsmos.segments(np.ones(3 * second)).shape == (3, 144160)
    # 9.01 s to 10.99 s: one segment
    assert dnsmos.segments(np.ones(int(10.9 * second))).shape == (1, 144160)
    # 30 s: starts 0..20 s, of which those at 7..20 s end one sample short in the
    # reference's floating point and are skipped
    ramp = np.arange(30 * second, dtype=np.float64)
    cut = dnsmos.segments(ramp)
    assert cut.shape == (7, 144160)
    np.testing.assert_array_equal(cut[:, 0], np.arange(7) * second)


def test_errors(speech):
    with pytest.raises(ValueError, match="fs=16000.*fs=8000"):
        dnsmos.dnsmos_p835(speech, fs=8000)
    with pytest.raises(ValueError, match="non-empty 1-D signal, got shape \\(0,\\)"):
        dnsmos.dnsmos_p835(np.zeros(0))
    with pytest.raises(ValueError, match="1-D signal, got shape \\(2, 5\\)"):
        dnsmos.dnsmos_p835(np.zeros((2, 5)))
