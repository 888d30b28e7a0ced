"""merit.bin.score --oracle_config: the oracle bounds of a model's SE head, checked
against an STFT / ideal mask / overlap-add written out here in numpy (independent of
merit.models.se_head), their cache beside the noisy-input one, and the table rows."""
import json
import shutil
import os

import numpy as np
import pytest
import soundfile as sf
import yaml

from fake_corpora import RATE, speechlike
from merit.bin import make_tables, results_md, score
from merit.metrics.se import se_scores
from merit.utils.fingerprint import fingerprint

UTTS = ("utt_a", "utt_b")
SET = "test_snr0_seen"
SMALL = {"linear_size": 4, "blstm_size": 4, "blstm_layers": 1}  # weights are not used
# two SE heads: the paper's (log1p mask, n_fft 400, hop 160), and a magnitude mask with a
# floor on a window shorter than the FFT (centred in it)
LOG1P = {"mask_domain": "log1p", "n_fft": 400, "win_length": 400, "hop_length": 160}
MAGNITUDE = {"mask_domain": "magnitude", "mask_floor": 0.1, "n_fft": 256, "win_length": 200,
             "hop_length": 64}


# ---- the oracles written out -----------------------------------------------------------

def hamming(length):
    """torch.hamming_window's default: periodic, 0.54 − 0.46·cos(2πn/length)."""
    return 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(length) / length)


def analysis_window(conf):
    """(n_fft,) the hamming window of win_length samples, centred in n_fft."""
    n_fft, win = conf["n_fft"], conf["win_length"]
    left = (n_fft - win) // 2
    return np.pad(hamming(win), (left, n_fft - win - left))


def stft(wave, conf):
    """(N, n_fft // 2 + 1) complex: frames of the reflect-padded signal, hop apart."""
    n_fft, hop = conf["n_fft"], conf["hop_length"]
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    count = 1 + (padded.size - n_fft) // hop
    frames = np.stack([padded[i * hop:i * hop + n_fft] for i in range(count)])
    return np.fft.rfft(frames * analysis_window(conf), axis=1)


def istft(spec, num_samples, conf):
    """Weighted overlap-add of the windowed inverse frames, divided by the summed squared
    window, cut back to the unpadded signal."""
    n_fft, hop = conf["n_fft"], conf["hop_length"]
    window = analysis_window(conf)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    signal = np.zeros((spec.shape[0] - 1) * hop + n_fft)
    envelope = np.zeros_like(signal)
    for i, frame in enumerate(frames):
        signal[i * hop:i * hop + n_fft] += frame
        envelope[i * hop:i * hop + n_fft] += window ** 2
    signal = np.where(envelope > 1e-11, signal / np.maximum(envelope, 1e-11), 0.0)
    return signal[n_fft // 2:n_fft // 2 + num_samples]


def hand_oracles(noisy, clean, conf):
    """{oracle: waveform}: the ideal mask of the conf's family, and the clean magnitude,
    each with the noisy phase."""
    noisy_spec, clean_spec = stft(noisy, conf), stft(clean, conf)
    phase = np.exp(1j * np.angle(noisy_spec))
    floor = conf.get("mask_floor", 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf["mask_domain"] == "log1p":
            noisy_log = np.log1p(np.abs(noisy_spec))
            mask = np.clip(np.where(noisy_log > 0, np.log1p(np.abs(clean_spec)) / noisy_log, 0.0),
                           floor, 1.0)
            masked = np.expm1(mask * noisy_log)
        else:
            mask = np.clip(np.where(np.abs(noisy_spec) > 0,
                                    np.abs(clean_spec) / np.abs(noisy_spec), 0.0), floor, 1.0)
            masked = mask * np.abs(noisy_spec)
    return {"oracle_mask": istft(masked * phase, noisy.size, conf),
            "oracle_magnitude": istft(np.abs(clean_spec) * phase, noisy.size, conf)}


#: |hand − score.py| allowed per metric: score.py resynthesises in float32 (torch), the
#: hand computation in float64; the waveforms differ by about 1e-7. PESQ is not smooth in
#: its input: such a difference moves it by up to 0.003 (its level and time alignment),
#: and CSIG, CBAK, COVL with it (measured: LLR 1e-5, WSS 3e-5, CBAK 0.0013).
TOLERANCE = {"ssnr": 1e-4, "pesq": 1e-2, "stoi": 1e-4, "estoi": 1e-4, "si_sdr": 1e-4, "lsd": 1e-3,
             "llr": 1e-4, "wss": 1e-3, "csig": 1e-2, "cbak": 1e-2, "covl": 1e-2}


def expected_rows(audio, utt, conf):
    """{<oracle>_<metric>: value} of one utterance, by hand."""
    clean = sf.read(str(audio / f"{utt}_clean.wav"), dtype="float32")[0]
    noisy = sf.read(str(audio / f"{utt}_noisy.wav"), dtype="float32")[0]
    return {f"{which}_{metric}": value for which, wav in hand_oracles(noisy, clean, conf).items()
            for metric, value in se_scores(clean, wav).items()}


# ---- fixtures --------------------------------------------------------------------------

def noisy_version(clean, seed, snr_db=0.0):
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    noise *= np.sqrt(np.sum(clean ** 2) / (np.sum(noise ** 2) * 10 ** (snr_db / 10)))
    return (clean + noise).astype(np.float32)


def write_config(path, se_head_conf, se_head="mask"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"se_head": se_head, "se_head_conf": {**SMALL, **se_head_conf},
                                    "ser_head": "attentive_stats"}))
    return path


@pytest.fixture
def tree(tmp_path):
    """A set of two 0.6 s mixtures (harmonic tones + white noise at 0 dB, float wavs),
    two systems' decode dirs of it (their enhanced output: clean + noise at 10 dB) and
    their configs: ``log1p`` and ``magnitude`` (see above)."""
    data, audio = tmp_path / "data" / SET, tmp_path / "audio"
    data.mkdir(parents=True)
    audio.mkdir()
    scp = {"wav.scp": "", "spk1.scp": "", "enhanced.scp": ""}
    for i, utt in enumerate(UTTS):
        clean = speechlike(0.6, 120 + 40 * i, seed=i)
        for name, wav in (("clean", clean), ("noisy", noisy_version(clean, 10 + i)),
                          ("enh", noisy_version(clean, 20 + i, snr_db=10.0))):
            sf.write(str(audio / f"{utt}_{name}.wav"), wav, RATE, subtype="FLOAT")
        for name, which in (("spk1.scp", "clean"), ("wav.scp", "noisy"), ("enhanced.scp", "enh")):
            scp[name] += f"{utt} {audio / f'{utt}_{which}.wav'}\n"
    (data / "wav.scp").write_text(scp["wav.scp"])
    (data / "spk1.scp").write_text(scp["spk1.scp"])
    systems = {}
    for system, conf in (("log1p_sys", LOG1P), ("magnitude_sys", MAGNITUDE)):
        decode = tmp_path / "exp" / system / f"decode_{SET}"
        decode.mkdir(parents=True)
        (decode / "enhanced.scp").write_text(scp["enhanced.scp"])
        systems[system] = (decode, write_config(tmp_path / "exp" / system / "config.yaml", conf))
    return {"data": data, "audio": audio, "systems": systems, "cache": data / "noisy_se_scores.tsv",
            "exp": tmp_path / "exp"}


def run_score(capsys, tree, system, cache=True):
    """(scores.json, per_utt_se.tsv as {utt: {column: value}}, stderr) of one run."""
    decode, config = tree["systems"][system]
    argv = ["--data_dir", str(tree["data"]), "--decode_dir", str(decode), "--nj", "1",
            "--oracle_config", str(config)]
    assert score.main(argv + (["--noisy_cache", str(tree["cache"])] if cache else [])) == 0
    header, *lines = (decode / "per_utt_se.tsv").read_text().splitlines()
    columns = header.split("\t")[1:]
    per_utt = {line.split("\t")[0]: dict(zip(columns, map(float, line.split("\t")[1:])))
               for line in lines}
    return json.loads((decode / "scores.json").read_text()), per_utt, capsys.readouterr().err


def oracle_cache(tree):
    """The one oracle cache file of the set."""
    (path,) = tree["data"].glob("oracle_se_scores_*.tsv")
    return path


# ---- tests -----------------------------------------------------------------------------

@pytest.mark.parametrize("system, conf", [("log1p_sys", LOG1P), ("magnitude_sys", MAGNITUDE)])
def test_oracle_rows_equal_the_hand_computation(tree, capsys, system, conf):
    scores, per_utt, _ = run_score(capsys, tree, system, cache=False)
    se = scores["se"]
    assert list(se) == ["count", "noisy", "oracle_mask", "oracle_magnitude", "enhanced",
                        "oracle_settings"]
    stft_settings = {k: conf[k] for k in ("n_fft", "win_length", "hop_length")}
    assert se["oracle_settings"]["oracle_magnitude"] == {**stft_settings, "window": "hamming"}
    assert se["oracle_settings"]["oracle_mask"] == {
        **stft_settings, "window": "hamming", "mask_domain": conf["mask_domain"],
        "mask_floor": conf.get("mask_floor", 0.0)}
    columns = list(per_utt[UTTS[0]])
    assert columns == [f"{which}_{m}" for which in ("noisy", "oracle_mask", "oracle_magnitude",
                                                    "enhanced") for m in score.SE_NAMES]
    expected = {utt: expected_rows(tree["audio"], utt, conf) for utt in UTTS}
    for utt in UTTS:
        for key, value in expected[utt].items():
            metric = key.split("_", 2)[2]
            assert per_utt[utt][key] == pytest.approx(value, abs=TOLERANCE[metric] + 5e-5), (utt, key)
    for which in score.ORACLES:
        for metric in score.SE_NAMES:
            mean = np.mean([expected[u][f"{which}_{metric}"] for u in UTTS])
            assert se[which][metric] == pytest.approx(mean, abs=TOLERANCE[metric]), (which, metric)
    # the waveforms themselves, from score.py's worker
    score.start_worker(score.load_oracle(tree["systems"][system][1]))
    for utt in UTTS:
        clean, noisy = (sf.read(str(tree["audio"] / f"{utt}_{n}.wav"), dtype="float32")[0]
                        for n in ("clean", "noisy"))
        hand = hand_oracles(noisy, clean, conf)
        for which, wav in score.oracle_waveforms(noisy, clean).items():
            assert wav.dtype == np.float32 and wav.shape == clean.shape
            np.testing.assert_allclose(wav, hand[which], rtol=0, atol=1e-6, err_msg=which)
    # bounds: the clean magnitude beats the noisy input by far on this 0 dB noise
    assert se["oracle_magnitude"]["si_sdr"] > se["noisy"]["si_sdr"] + 5
    assert se["oracle_mask"]["pesq"] > se["noisy"]["pesq"]


def test_the_oracle_cache_is_reused_and_a_rewritten_file_recomputed(tree, capsys, monkeypatch):
    data, audio, cache = tree["data"], tree["audio"], tree["cache"]
    before = fingerprint(data)
    first, first_utt, err = run_score(capsys, tree, "log1p_sys")
    path = oracle_cache(tree)
    assert f"oracle metrics of 0/2 utterances from {path}" in err
    assert fingerprint(data) == before  # the caches are not inputs of the set
    header = path.read_text().splitlines()[0].split("\t")
    assert header == ["utt", *score.STAMP_COLUMNS] + [
        f"{which}_{m}" for which in score.ORACLES for m in score.SE_NAMES]
    # another system with the same SE head, no enhanced output: nothing is computed
    other = tree["exp"] / "other_sys" / f"decode_{SET}"
    other.mkdir(parents=True)
    tree["systems"]["other_sys"] = (other, write_config(other.parent / "config.yaml", LOG1P))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although every row is cached")
    with monkeypatch.context() as patch:
        patch.setattr(score, "ProcessPoolExecutor", fail)
        patch.setattr(score, "read_audio", fail)
        second, second_utt, err = run_score(capsys, tree, "other_sys")
    assert f"oracle metrics of 2/2 utterances from {path}" in err
    assert f"noisy-input metrics of 2/2 utterances from {cache}" in err
    for which in ("noisy",) + score.ORACLES:  # bit for bit: full precision in the cache
        assert second["se"][which] == first["se"][which]
    assert "enhanced" not in second["se"]
    # a rewritten noisy file (same size, later mtime): only its row is computed again
    noisy_b = audio / "utt_b_noisy.wav"
    stat = os.stat(noisy_b)
    clean_b = sf.read(str(audio / "utt_b_clean.wav"), dtype="float32")[0]
    sf.write(str(noisy_b), noisy_version(clean_b, 99, snr_db=-5.0), RATE, subtype="FLOAT")
    os.utime(noisy_b, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    third, third_utt, err = run_score(capsys, tree, "log1p_sys")
    assert f"oracle metrics of 1/2 utterances from {path}" in err
    # (pystoi's ESTOI varies in the last digits between calls on the same signals)
    assert third_utt["utt_a"] == pytest.approx(first_utt["utt_a"], rel=1e-9)
    expected = expected_rows(audio, "utt_b", LOG1P)
    assert third_utt["utt_b"]["oracle_mask_si_sdr"] != first_utt["utt_b"]["oracle_mask_si_sdr"]
    for key, value in expected.items():
        assert third_utt["utt_b"][key] == pytest.approx(value, abs=TOLERANCE[key.split("_", 2)[2]]
                                                        + 5e-5), key
    # other oracle settings: a cache of their own, the first one kept
    run_score(capsys, tree, "magnitude_sys")
    assert len(list(data.glob("oracle_se_scores_*.tsv"))) == 2 and path.exists()


def test_without_a_decode_dir_only_the_caches_are_filled(tree, capsys, monkeypatch):
    # stage 4 fills them from the config it composes, before the model has a config.yaml
    composed = write_config(tree["exp"] / "other_sys" / "train_config.yaml", LOG1P)
    assert score.main(["--data_dir", str(tree["data"]), "--nj", "1", "--noisy_cache",
                       str(tree["cache"]), "--oracle_config", str(composed)]) == 0
    assert tree["cache"].is_file() and oracle_cache(tree).is_file()
    assert not list(tree["exp"].rglob("scores.json")) and not list(tree["exp"].rglob("per_utt_se.tsv"))
    capsys.readouterr()
    # a decode without enhanced output then computes nothing ...
    other = tree["exp"] / "other_sys" / f"decode_{SET}"
    other.mkdir(parents=True)
    tree["systems"]["other_sys"] = (other, composed)

    def fail(*args, **kwargs):
        raise AssertionError("noisy or oracle metrics recomputed")
    with monkeypatch.context() as patch:
        patch.setattr(score, "ProcessPoolExecutor", fail)
        filled, _, err = run_score(capsys, tree, "other_sys")
    assert "oracle metrics of 2/2 utterances" in err and "noisy-input metrics of 2/2" in err
    # ... and finds what scoring with a decode computes
    tree["cache"].unlink()
    oracle_cache(tree).unlink()
    scored, _, _ = run_score(capsys, tree, "log1p_sys")
    for which in ("noisy",) + score.ORACLES:  # numpy's sums may differ in the last bit
        assert filled["se"][which] == pytest.approx(scored["se"][which], rel=1e-12)


def test_without_a_decode_dir_a_cache_is_required(tree, capsys):
    with pytest.raises(SystemExit):
        score.main(["--data_dir", str(tree["data"])])
    assert "give --noisy_cache" in capsys.readouterr().err


def test_no_se_head_no_oracle_rows(tree, capsys):
    decode, _ = tree["systems"]["log1p_sys"]
    config = write_config(decode.parent / "ser_only.yaml", {}, se_head="none")
    tree["systems"]["ser_only"] = (decode, config)
    scores, per_utt, err = run_score(capsys, tree, "ser_only")
    assert f"{config}: no SE head (se_head: none), no oracle rows" in err
    assert list(scores["se"]) == ["count", "noisy", "enhanced"]
    assert not any(c.startswith("oracle") for c in per_utt["utt_a"])
    assert not list(tree["data"].glob("oracle_*"))


def test_an_unusable_oracle_config_is_an_error(tree, capsys):
    decode, _ = tree["systems"]["log1p_sys"]
    for name, text, says in (
            ("missing.yaml", None, "cannot read the --oracle_config"),
            ("bad_conf.yaml", "se_head: mask\nse_head_conf: {mask_domain: cubic}\n",
             "cannot build its SE head from se_head_conf: mask_domain must be one of"),
            ("bad_head.yaml", "se_head: unet\n", "unknown se_head 'unet' (choices: mask)")):
        config = decode.parent / name
        if text is not None:
            config.write_text(text)
        argv = ["--data_dir", str(tree["data"]), "--decode_dir", str(decode),
                "--oracle_config", str(config)]
        assert score.main(argv) == 1
        err = capsys.readouterr().err
        assert f"score: error: {config}: {says}" in err, err
    assert not (decode / "scores.json").exists()


def test_tables_show_the_oracle_rows_after_noisy(tree, capsys):
    for system in ("log1p_sys", "magnitude_sys"):
        run_score(capsys, tree, system)
    exps = [str(tree["exp"] / s) for s in ("log1p_sys", "magnitude_sys")]
    assert make_tables.main(exps) == 0
    out = capsys.readouterr().out
    tables = out.split("### ")[2:]  # after SER macro-F1 (all "–": no classifier output here)
    assert [t.splitlines()[0] for t in tables] == ["SSNR (dB)", "PESQ", "STOI"]
    scores = {s: json.loads((tree["systems"][s][0] / "scores.json").read_text())["se"]
              for s in ("log1p_sys", "magnitude_sys")}
    for table, metric in zip(tables, ("ssnr", "pesq", "stoi")):
        rows = [line for line in table.splitlines()[4:] if line]
        labels = [line.split(" | ")[0][2:] for line in rows]
        assert labels == ["noisy", "oracle_mask (n_fft=400, win_length=400, hop_length=160, "
                          "log1p, mask_floor=0.0)",
                          "oracle_mask (n_fft=256, win_length=200, hop_length=64, magnitude, "
                          "mask_floor=0.1)",
                          "oracle_magnitude (n_fft=400, win_length=400, hop_length=160)",
                          "oracle_magnitude (n_fft=256, win_length=200, hop_length=64)",
                          "log1p_sys", "magnitude_sys"], metric
        cells = {line.split(" | ")[0][2:]: line.split(" | ")[1].rstrip(" |") for line in rows}
        digits = 3 if metric == "stoi" else 2
        assert cells[labels[1]] == f"{scores['log1p_sys']['oracle_mask'][metric]:.{digits}f}"
        assert cells[labels[2]] == f"{scores['magnitude_sys']['oracle_mask'][metric]:.{digits}f}"
        assert cells[labels[4]] == \
            f"{scores['magnitude_sys']['oracle_magnitude'][metric]:.{digits}f}"
    # one system: plain labels; its RESULTS.md lists the bounds and their settings
    assert make_tables.main(exps[:1]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("| noisy | " + lines[lines.index("### PESQ") + 4].split(" | ", 1)[1])
    assert [line.split(" | ")[0] for line in lines[at:at + 4]] == [
        "| noisy", "| oracle_mask", "| oracle_magnitude", "| log1p_sys"]
    text = results_md.oracle_table(tree["exp"] / "log1p_sys")
    assert f"| {SET} | oracle_mask | " in text and f"| {SET} | oracle_magnitude | " in text
    assert "- `oracle_mask`: n_fft=400, win_length=400, hop_length=160, window=hamming, " \
           "mask_domain=log1p, mask_floor=0.0" in text


def test_one_process_scores_several_sets_as_one_call_each(tree, capsys, tmp_path):
    """Repeated --data_dir/--decode_dir/--noisy_cache (stage 6 scores a run's sets in one
    process) give each set what a call of its own gives."""
    alone, _, _ = run_score(capsys, tree, "log1p_sys")
    second = tmp_path / "data" / "second"
    shutil.copytree(tree["data"], second, ignore=shutil.ignore_patterns("*.tsv"))
    decode, config = tree["systems"]["log1p_sys"]
    other = decode.parent / "decode_second"
    shutil.copytree(decode, other, ignore=shutil.ignore_patterns("scores.json", "*.tsv"))
    argv = ["--nj", "1", "--oracle_config", str(config)]
    for data, dec in ((tree["data"], decode), (second, other)):
        argv += ["--data_dir", str(data), "--decode_dir", str(dec),
                 "--noisy_cache", str(data / "noisy_se_scores.tsv")]
    assert score.main(argv) == 0
    for dec in (decode, other):
        together = json.loads((dec / "scores.json").read_text())
        assert together["se"].keys() == alone["se"].keys()
        for which in ("noisy", "enhanced") + score.ORACLES:
            assert together["se"][which] == pytest.approx(alone["se"][which], rel=1e-12), which
    with pytest.raises(SystemExit):  # a decode dir for each set, or none
        score.main(argv[:-2] + ["--data_dir", str(second)])
