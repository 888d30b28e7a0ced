"""merit.bin.disk_preflight: its estimates match what stages 2, 3 and 5 write on small
real runs, and merit.sh stops before stage 2, 3 or 5 writes anything when the estimate
does not fit in the (faked) free space, unless --force true.
"""
import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import make_noise_dir, speechlike
from merit.bin import disk_preflight, merit_inference, simulate_noise
from merit.bin.disk_preflight import (KNOWN_UPSTREAMS, audio_bytes, feature_bytes,
                                      feature_layout, read_lengths)
from merit.data.datadir import read_kv, write_datadir
from recipe_tree import REPO, make_recipe_tree
from test_merit_sh_stage_choices import (EXP, NOISY_TEST_SETS, SETS_OPTIONS, recipe,  # noqa: F401
                                         recorded_calls)

RATE = 16000


def clean_dir(root: Path, name: str, seconds, peak: float) -> Path:
    """A data dir of speech-like utterances of the given lengths and peak level."""
    audio = root / f"{name}_audio"
    audio.mkdir(parents=True)
    wav_scp = {}
    for i, length in enumerate(seconds):
        path = audio / f"u{i}.wav"
        sf.write(str(path), speechlike(length, 120 + 10 * i, i, peak=peak), RATE, subtype="PCM_16")
        wav_scp[f"u{i}"] = path
    write_datadir(root / "data" / name, {"wav.scp": wav_scp, "utt2spk": {u: u for u in wav_scp}})
    return root / "data" / name


def written(directory: Path) -> int:
    """Bytes of the files under ``directory``, but the jobs' logs."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.suffix != ".log")


@pytest.mark.parametrize("peak, snr, copies", [
    (0.05, "10", 2),  # quiet speech over quieter noise: no mixture clips, 2 WAVs each
    (0.95, "-5", 3),  # loud speech under louder noise: every mixture is scaled down, 3 WAVs
])
def test_audio_estimate_is_what_simulate_noise_writes(tmp_path, peak, snr, copies):
    """At least 2 and at most 3 WAVs per utterance, byte for byte: the two ends of the
    estimate are both reached."""
    data = clean_dir(tmp_path, "train", [0.7, 1.0, 1.35, 2.0], peak)
    noise = make_noise_dir(tmp_path / "noise")
    audio_dir = tmp_path / "dump" / "audio" / "train_noisy"
    assert simulate_noise.main(["--clean_dir", str(data), "--noise", str(noise[0].parent),
                                "--category", "seen", "--snrs", snr, "--out_dir",
                                str(tmp_path / "data" / "train_noisy"),
                                "--audio_dir", str(audio_dir)]) == 0
    gains = (tmp_path / "data" / "train_noisy" / "utt2gain").read_text().split()[1::2]
    assert all((float(g) != 1.0) == (copies == 3) for g in gains)
    samples, problems = read_lengths(data)  # from the headers: no utt2num_samples there
    assert problems == [] and sorted(samples) == [11200, 16000, 21600, 32000]
    assert written(audio_dir) == audio_bytes(samples, copies)
    # the noisy set's utt2num_samples gives the same lengths as the clean set's headers
    assert sorted(read_lengths(tmp_path / "data" / "train_noisy")[0]) == sorted(samples)


def test_feature_estimate_is_within_a_few_percent_of_an_fbank_dump(tmp_path, run_tool):
    """The estimate counts the feature values; the dump adds one header per utterance
    (npy: 128 bytes; an ark entry: its key and matrix header), the lists (feats.scp,
    feats_shape) and the small files of its parts (feats_info.yaml, settings.yaml):
    here 0.5 % on 1-2 s utterances (ark shards), less on the corpus's 2.75-11 s."""
    data = clean_dir(tmp_path, "train_noisy", [1.003, 1.5, 2.0, 2.2], 0.5)  # 16048 samples:
    # not a whole number of 160-sample hops, so its last frame is a started one
    out = tmp_path / "dump" / "fbank" / "train_noisy"
    res = run_tool([sys.executable, "-m", "merit.bin.dump_ssl", "--data_dir", data,
                    "--out_dir", out, "--upstream", "fbank"])
    assert res.returncode == 0, res.stderr
    num_layers, dims, rate, _ = feature_layout("fbank", None, None)
    estimate = feature_bytes(read_lengths(data)[0], num_layers, dims, rate, 2)
    frames = [int(shape.split(",")[0]) for shape in read_kv(out / "feats_shape").values()]
    assert estimate == sum(frames) * 240 * 2  # the frames the dump wrote, each one counted
    assert estimate <= written(out) <= 1.03 * estimate, (written(out), estimate)


def test_known_upstreams_agree_with_the_upstreams():
    """fbank against s3prl's own extractor; WavLM Large against the architecture that
    bench_stages builds (read from its source: importing it loads ESPnet): the CNN output
    + one state per layer, one frame per product of the CNN's strides."""
    from merit.models.frontend import S3PRLFrontend

    source = (REPO / "merit" / "bin" / "bench_stages.py").read_text()
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.Assign)
               and getattr(n.targets[0], "id", None) == "WAVLM_LARGE"]
    WAVLM_LARGE = ast.literal_eval(node.value)

    fbank = S3PRLFrontend("fbank")
    assert KNOWN_UPSTREAMS["fbank"] == (fbank.upstream.num_layers, fbank.hidden_size,
                                        fbank.downsample_rate)
    strides = [stride for _, _, stride in eval(WAVLM_LARGE["conv_feature_layers"])]
    assert KNOWN_UPSTREAMS["wavlm_large"] == (WAVLM_LARGE["encoder_layers"] + 1,
                                              WAVLM_LARGE["encoder_embed_dim"],
                                              int(np.prod(strides)))


def test_an_upstream_not_in_the_table_is_loaded_and_layers_are_counted(tmp_path):
    from tiny_wavlm import make_tiny_wavlm

    ckpt = make_tiny_wavlm(tmp_path / "tiny.pt")
    assert feature_layout("wavlm_local", str(ckpt), None)[:3] == (3, 32, 320)
    assert feature_layout("wavlm_local", str(ckpt), "0,2")[:3] == (2, 32, 320)
    assert feature_layout("wavlm_large", None, "0,6,12,18,24")[:3] == (5, 1024, 320)
    with pytest.raises(ValueError, match="has hidden states 0..24"):
        feature_layout("wavlm_large", None, "25")


def preflight(args, monkeypatch, capsys, free):
    monkeypatch.setenv("MERIT_FAKE_FREE_BYTES", str(free))
    status = disk_preflight.main([str(a) for a in args])
    return status, capsys.readouterr().err


def test_a_set_counts_every_copy_and_what_is_already_there(tmp_path, monkeypatch, capsys):
    """Each (SNR, condition) copy of a test set counts; bytes already under a set's
    output dir are taken as written (a rerun or a resumed stage needs no more)."""
    data = tmp_path / "data" / "test"
    write_datadir(data, {"wav.scp": {"a": "a.wav", "b": "b.wav"}, "utt2spk": {"a": "a", "b": "b"},
                         "utt2num_samples": {"a": 16000, "b": 48000}})
    one = audio_bytes([16000, 48000], 3)
    target = tmp_path / "dump" / "audio"
    pairs = [p for i in range(8) for p in (data, target / f"test_{i}")]
    status, err = preflight(["audio", "--target", target, *pairs], monkeypatch, capsys,
                            free=math.ceil(8 * one * 1.05) - 1)
    assert status == 1
    assert f"needs {math.ceil(8 * one * 1.05):,} bytes" in err
    assert f"at {target}, but {math.ceil(8 * one * 1.05) - 1:,} bytes" in err
    for i in range(7):  # seven sets done before: one left to write
        (target / f"test_{i}").mkdir(parents=True)
        (target / f"test_{i}" / "all.wav").write_bytes(bytes(one))
    status, err = preflight(["audio", "--target", target, *pairs], monkeypatch, capsys,
                            free=math.ceil(one * 1.05))
    assert status == 0, err
    status, err = preflight(["audio", "--target", target, *pairs], monkeypatch, capsys,
                            free=math.ceil(one * 1.05) - 1)
    assert status == 1 and "--force true" in err


def test_a_cascades_enhanced_features_count_as_dumped_features(tmp_path, monkeypatch, capsys):
    """enhanced_feats estimates what feats does, and says which dump stops and how to
    avoid it."""
    data = tmp_path / "exp" / "se" / "decode_train_noisy" / "data"
    write_datadir(data, {"wav.scp": {"a": "a.wav"}, "utt2spk": {"a": "a"},
                         "utt2num_samples": {"a": 3600 * RATE}})
    needed = math.ceil(feature_bytes([3600 * RATE], 25, 1024, 320, 2) * 1.05)
    pair = [data, data.parent / "feats"]
    for kind in ("feats", "enhanced_feats"):
        status, err = preflight([kind, "--target", tmp_path / "exp" / "se", "--upstream",
                                 "wavlm_large", *pair], monkeypatch, capsys, free=needed - 1)
        assert status == 1 and f"needs {needed:,} bytes" in err
    assert "the cascade's feature dump of enhanced speech (stage 4 or 5) needs" in err
    assert "(--ssl_mode online)" in err


def test_free_space_is_that_of_the_nearest_existing_parent(tmp_path, monkeypatch):
    import shutil

    monkeypatch.delenv("MERIT_FAKE_FREE_BYTES", raising=False)
    free, where = disk_preflight.free_bytes(tmp_path / "not" / "yet" / "there")
    assert where == tmp_path.resolve()
    assert abs(free - shutil.disk_usage(tmp_path).free) < 1e8  # others write meanwhile


# merit.sh

def recipe_data(recipe_dir: Path, names, with_lengths: bool):
    """Sets of two 10-hour utterances (by their utt2num_samples), or, without lengths, of
    two short real WAVs (their headers give the lengths)."""
    for name in names:
        files = {"utt2spk": {"u1": "s1", "u2": "s2"}, "utt2emo": {"u1": "N", "u2": "A"}}
        if with_lengths:
            files["wav.scp"] = {"u1": "u1.wav", "u2": "u2.wav"}
            files["utt2num_samples"] = {"u1": 10 * 3600 * RATE, "u2": 10 * 3600 * RATE}
            files["spk1.scp"] = files["wav.scp"]
        else:
            wavs = recipe_dir / "audio" / name
            wavs.mkdir(parents=True)
            files["wav.scp"] = {}
            for utt in ("u1", "u2"):
                sf.write(str(wavs / f"{utt}.wav"), speechlike(0.5, 150, 1, peak=0.05), RATE,
                         subtype="PCM_16")
                files["wav.scp"][utt] = wavs / f"{utt}.wav"
        write_datadir(recipe_dir / "data" / name, files)


STAGE3 = ["--stage", "3", "--stop_stage", "3", "--ssl_mode", "dumped", "--train_set", "train",
          "--valid_set", "dev", "--upstream", "wavlm_large"]


def test_merit_sh_stage3_stops_before_dumping_what_does_not_fit(recipe, run_tool):  # noqa: F811
    """Two 20-hour sets of WavLM Large features (369 GB) against 100 GB free: the stage
    stops naming the target, the bytes needed and free, and dumps nothing; --force true
    dumps."""
    recipe_dir, env, calls = recipe
    recipe_data(recipe_dir, ["train_noisy", "dev_noisy"], with_lengths=True)
    env = {**env, "MERIT_FAKE_FREE_BYTES": str(10 ** 11)}
    res = run_tool(["./merit.sh", *STAGE3], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    needed = 2 * 2 * 10 * 3600 * 50 * 25 * 1024 * 2 * 1.05
    assert f"stage 3 (SSL feature dumping) needs {math.ceil(needed):,} bytes (387.1 GB" in res.stderr
    assert "at dump/wavlm_large, but 100,000,000,000 bytes (100.0 GB) are free" in res.stderr
    assert recorded_calls(calls, "merit.bin.dump_ssl") == []
    res = run_tool(["./merit.sh", *STAGE3, "--force", "true"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "going on (--force true)" in res.stderr
    assert recorded_calls(calls, "merit.bin.dump_ssl")


def test_merit_sh_stage2_stops_before_simulating_what_does_not_fit(tmp_path, run_tool):
    """Stage 2 on real WAVs: 6 sets (train, dev, one test set × 2 SNRs × 2 conditions)
    stop with a faked free space below their estimate and write nothing; --force true
    simulates them, and the bytes written lie between the estimate's two ends."""
    root = tmp_path / "merit"
    env = make_recipe_tree(root)
    recipe_dir = root / "egs" / "TEMPLATE" / "merit"
    recipe_data(recipe_dir, ["train", "dev", "test"], with_lengths=False)
    pools = recipe_dir / "data" / "noise"
    noise = make_noise_dir(recipe_dir / "noise_audio")
    pools.mkdir()
    for pool in ("train", "dev", "test_seen", "test_unseen"):
        (pools / f"{pool}.scp").write_text("".join(f"n{i} {p}\n" for i, p in enumerate(noise)))
    command = ["./merit.sh", "--stage", "2", "--stop_stage", "2", "--nj", "1", "--train_set",
               "train", "--valid_set", "dev", "--test_sets", "test", "--test_snrs", "0 10"]
    one_set = audio_bytes([8000, 8000], 3)
    env = {**env, "MERIT_FAKE_FREE_BYTES": str(math.ceil(6 * one_set * 1.05) - 1)}
    res = run_tool(command, cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert f"needs {math.ceil(6 * one_set * 1.05):,} bytes" in res.stderr  # 6 sets, 3 WAVs each
    assert "at dump/audio, but" in res.stderr
    assert not (recipe_dir / "dump").exists() and not (recipe_dir / "data" / "train_noisy").exists()
    res = run_tool(command + ["--force", "true"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert 6 * audio_bytes([8000, 8000], 2) <= written(recipe_dir / "dump" / "audio") <= 6 * one_set


def test_enhanced_estimate_is_what_decoding_writes(tiny_model, tiny_data, tmp_path):
    """Stage 5 of a model with an SE head: one 16-bit WAV per utterance, byte for byte."""
    data = tiny_data / "data" / "dev_noisy"
    out = tmp_path / "decode_dev_noisy"
    assert merit_inference.main(["--model_dir", str(tiny_model), "--data_dir", str(data),
                                 "--out_dir", str(out)]) == 0
    samples, problems = read_lengths(data)
    assert problems == [] and len(samples) == len(read_kv(out / "enhanced.scp"))
    assert written(out / "enhanced") == audio_bytes(samples, 1)


STAGE5 = ["--stage", "5", "--stop_stage", "5", *SETS_OPTIONS]


def test_merit_sh_stage5_stops_before_decoding_what_does_not_fit(recipe, run_tool):  # noqa: F811
    """Four 20-hour test sets of enhanced speech (4 × 20 h × 115.2 MB) against 1 GB free:
    stage 5 stops naming the bytes and decodes nothing; a model without an SE head writes
    no audio and is not stopped."""
    recipe_dir, env, calls = recipe
    recipe_data(recipe_dir, NOISY_TEST_SETS, with_lengths=True)
    env = {**env, "MERIT_FAKE_FREE_BYTES": str(10 ** 9)}
    res = run_tool(["./merit.sh", *STAGE5], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    needed = math.ceil(4 * 2 * (44 + 2 * 10 * 3600 * RATE) * 1.05)
    assert f"stage 5 (decoding) needs {needed:,} bytes" in res.stderr
    assert f"at {EXP}, but 1,000,000,000 bytes (1.0 GB) are free" in res.stderr
    assert recorded_calls(calls, "merit.bin.merit_inference") == []
    (recipe_dir / EXP / "config.yaml").write_text("se_head: null\nser_head: attentive_stats\n")
    res = run_tool(["./merit.sh", *STAGE5], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "stage 5 (decoding)" not in res.stderr
    assert recorded_calls(calls, "merit.bin.merit_inference")
