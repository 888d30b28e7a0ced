"""merit.bin.simulate_noise and merit.data.noise_mixing: SNRs, sums, determinism."""
import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import make_msp_tree, make_noise_dir, speechlike
from merit.bin import simulate_noise
from merit.data import msp_podcast, noise_mixing
from merit.data.datadir import read_kv
from merit.data.noise_mixing import PEAK_LIMIT, fit_noise, mix_at_snr, power


def snr_db(clean, noise):
    return 10 * np.log10(power(clean) / power(noise))


def test_fit_noise_shift_tile_cut():
    noise = np.arange(5.0)
    assert fit_noise(noise, 12, 2).tolist() == [2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert fit_noise(noise, 3, 4).tolist() == [4, 0, 1]


def test_a_noise_tiled_more_than_ten_times_is_warned_about_once(caplog, monkeypatch):
    monkeypatch.setattr(noise_mixing, "_warned_tiling", False, raising=False)
    noise = np.ones(1600)                                       # 0.1 s at 16 kHz
    with caplog.at_level(logging.WARNING, logger=noise_mixing.__name__):
        fit_noise(noise, 16000, 0, name="ten_copies.wav")        # 10 copies: fine
        assert not caplog.records
        for name in ("blip.wav", "click.wav"):
            for _ in range(3):
                fit_noise(noise, 80000, 7, name=name)
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage() == (
        "noise blip.wav is 0.10 s long and is repeated 50.0 times to fill a 5.00 s "
        "utterance: a loop, not the noise it stands for. Build the noise pools with "
        "scripts/prep_noise.sh, whose --min_noise_seconds (default 1) leaves such files "
        "out (this warning is shown once)")


def test_simulation_warns_once_about_short_noise(clean_set, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(noise_mixing, "_warned_tiling", False, raising=False)
    short = tmp_path / "noise" / "blip.wav"
    short.parent.mkdir()
    sf.write(str(short), 0.1 * np.random.default_rng(0).standard_normal(320), 16000)
    (tmp_path / "pool.scp").write_text(f"blip {short}\n")
    args = ["--clean_dir", str(clean_set / "data/train"), "--noise", str(tmp_path / "pool.scp"),
            "--category", "seen", "--snrs", "0", "--out_dir", str(tmp_path / "out"),
            "--audio_dir", str(tmp_path / "audio")]
    with caplog.at_level(logging.WARNING, logger=noise_mixing.__name__):
        assert simulate_noise.main(args) == 0
    warned = [r.getMessage() for r in caplog.records if r.name == noise_mixing.__name__]
    assert len(warned) == 1 and warned[0].startswith(f"noise {short} is 0.02 s long")


def test_mix_hits_snr_and_limits_peak():
    clean = speechlike(1.0, 120, 0, peak=0.9)
    noise = np.random.default_rng(0).standard_normal(clean.size).astype(np.float32)
    for target in (-5.0, 0.0, 12.5):
        mix = mix_at_snr(clean, noise, target)
        assert snr_db(mix.clean, mix.noise) == pytest.approx(target, abs=1e-6)
        np.testing.assert_allclose(mix.clean + mix.noise, mix.noisy, atol=1e-6)
        assert np.max(np.abs(mix.noisy)) < 1.0
    loud = mix_at_snr(clean, noise, -5.0)
    assert loud.gain < 1.0 and np.max(np.abs(loud.noisy)) == pytest.approx(PEAK_LIMIT, rel=1e-6)
    quiet = mix_at_snr(clean * 0.01, noise, 10.0)
    assert quiet.gain == 1.0


def test_silent_signals_are_refused():
    with pytest.raises(ValueError, match="clean signal is silent"):
        mix_at_snr(np.zeros(10), np.ones(10), 0.0)
    with pytest.raises(ValueError, match="noise signal is silent"):
        mix_at_snr(np.ones(10), np.zeros(10), 0.0)


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    make_msp_tree(root / "msp", n_speakers=5, per_speaker=12)
    msp_podcast.prepare(root / "msp", root / "data")
    make_noise_dir(root / "noise")
    return root


def simulate(root: Path, out: str, extra=()):
    args = ["--clean_dir", str(root / "data" / "train"), "--noise", str(root / "noise"),
            "--category", "seen", "--snrs", "-5 0 5 10", "--out_dir", str(root / "out" / out),
            "--audio_dir", str(root / "audio" / out), "--seed", "3", *extra]
    assert simulate_noise.main(args) == 0
    return root / "out" / out


def digest(data_dir: Path):
    """Hash of every data file and every audio file it points to, by utterance."""
    h = hashlib.sha256()
    for name in sorted(p.name for p in data_dir.iterdir()):
        table = read_kv(data_dir / name)
        for utt in sorted(table):
            value = table[utt]
            h.update(f"{name} {utt} ".encode())
            h.update(Path(value).read_bytes() if name.endswith(".scp") else value.encode())
    return h.hexdigest()


def test_simulated_set_is_consistent(clean_set, run_tool):
    out = simulate(clean_set, "one")
    res = run_tool(["utils/validate_data_dir.sh", "--check-audio", out])
    assert res.returncode == 0, res.stderr
    noisy, clean = read_kv(out / "wav.scp"), read_kv(out / "spk1.scp")
    noise, snrs = read_kv(out / "noise1.scp"), read_kv(out / "utt2snr")
    assert set(read_kv(out / "utt2category").values()) == {"seen"}
    assert read_kv(out / "utt2emo") == {u: e for u, e in read_kv(clean_set / "data/train/utt2emo").items()}
    assert set(snrs.values()) <= {"-5", "0", "5", "10"} and len(set(snrs.values())) > 1
    for utt in noisy:
        x, _ = sf.read(noisy[utt], dtype="float32")
        s, _ = sf.read(clean[utt], dtype="float32")
        n, _ = sf.read(noise[utt], dtype="float32")
        assert x.shape == s.shape == n.shape
        assert snr_db(s, n) == pytest.approx(float(snrs[utt]), abs=0.05), utt
        assert np.max(np.abs(s + n - x)) < 1e-4, utt
        assert np.max(np.abs(x)) < 1.0


def test_deterministic_and_independent_of_split(clean_set):
    first = digest(simulate(clean_set, "a"))
    assert digest(simulate(clean_set, "b")) == first
    for job in (1, 2, 3):
        simulate(clean_set, "split", ["--num_jobs", "3", "--job", str(job)])
    merged = simulate(clean_set, "split", ["--num_jobs", "3", "--merge", "true"])
    assert digest(merged) == first
    assert not merged.with_name("split.parts").exists()


def test_killed_job_rerun_gives_the_same_set(clean_set):
    """A job killed while writing (no done marker, a half-written wav) and run again:
    the merged set is byte-identical to an uninterrupted run (a regression test; stage 2
    resumed correctly already)."""
    first = digest(simulate(clean_set, "whole"))
    for job in (1, 2):
        simulate(clean_set, "killed", ["--num_jobs", "2", "--job", str(job)])
    part = clean_set / "out" / "killed.parts" / "job2of2"
    (part / "done").unlink()
    written = Path(read_kv(part / "wav.scp")[sorted(read_kv(part / "wav.scp"))[0]])
    written.write_bytes(written.read_bytes()[: written.stat().st_size // 2])
    simulate(clean_set, "killed", ["--num_jobs", "2", "--job", "2"])
    assert digest(simulate(clean_set, "killed", ["--num_jobs", "2", "--merge", "true"])) == first


def test_merge_names_a_missing_part(clean_set, capsys):
    simulate(clean_set, "partial", ["--num_jobs", "2", "--job", "1"])
    args = ["--clean_dir", str(clean_set / "data/train"), "--noise", str(clean_set / "noise"),
            "--category", "seen", "--snrs", "0", "--out_dir", str(clean_set / "out/partial"),
            "--audio_dir", str(clean_set / "audio/partial"), "--num_jobs", "2", "--merge", "true"]
    assert simulate_noise.main(args) == 1
    assert "part 2 of 2 is missing" in capsys.readouterr().err
    assert not (clean_set / "out/partial").exists()


@pytest.mark.parametrize("noise, message", [
    ("empty_dir", "no audio files"),
    ("empty.scp", "noise pool is empty"),
    ("nowhere", "noise pool not found"),
])
def test_bad_noise_pools(clean_set, tmp_path, capsys, noise, message):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.scp").write_text("")
    args = ["--clean_dir", str(clean_set / "data/train"), "--noise", str(tmp_path / noise),
            "--category", "unseen", "--snrs", "0", "--out_dir", str(tmp_path / "out"),
            "--audio_dir", str(tmp_path / "audio")]
    assert simulate_noise.main(args) == 1
    err = capsys.readouterr().err
    assert message in err and noise in err
