"""egs/mini_emo/merit stages 1-6 end to end on the shipped corpus (a few minutes; training
runs one epoch)."""
import csv
import hashlib
import json
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyworld
import pytest
import soundfile as sf
import yaml

from merit.data import mini_emo
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.metrics.se import DEFAULT_SE_METRICS
from recipe_tree import REPO, make_recipe_tree

DOWNLOADS = REPO / "egs" / "mini_emo" / "merit" / "downloads"
SNRS = ("-5", "0", "5", "10")
TEST_SETS = [f"test1_snr{s}_{c}" for c in ("seen", "unseen") for s in SNRS]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, run_tool_module):
    root = tmp_path_factory.mktemp("tree")
    env = make_recipe_tree(root, recipes=["mini_emo"])
    recipe_dir = root / "egs" / "mini_emo" / "merit"
    res = run_tool_module(["./run.sh", "--stage", "1", "--stop_stage", "2"], cwd=recipe_dir,
                          env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return recipe_dir, res


def speakers(data_dir: Path):
    return set(read_kv(data_dir / "utt2spk").values())


def test_sets_validate_and_have_the_promised_sizes(recipe, run_tool):
    recipe_dir, _ = recipe
    data = recipe_dir / "data"
    for name in ["train", "dev", "test1", "train_noisy", "dev_noisy", *TEST_SETS]:
        res = run_tool(["utils/validate_data_dir.sh", "--check-audio", data / name], cwd=recipe_dir)
        assert res.returncode == 0, res.stderr
    assert len(read_kv(data / "train_noisy" / "wav.scp")) == 320
    assert len(read_kv(data / "dev_noisy" / "wav.scp")) == 160  # two speakers
    for name in TEST_SETS:
        snrs = set(read_kv(data / name / "utt2snr").values())
        assert len(read_kv(data / name / "wav.scp")) >= 60
        assert snrs == {name.split("_")[1][3:]}
        assert set(read_kv(data / name / "utt2category").values()) == {name.split("_")[2]}
    assert set(read_kv(data / "train" / "utt2emo").values()) == set("ASHN")


def test_speakers_and_noise_are_disjoint(recipe):
    recipe_dir, _ = recipe
    data = recipe_dir / "data"
    train, dev, test = (speakers(data / s) for s in ("train", "dev", "test1"))
    assert train and dev and test
    assert not (train & dev) and not (train & test) and not (dev & test)
    pools = {p: set(read_kv(data / "noise" / f"{p}.scp").values())
             for p in ("train", "dev", "test_seen", "test_unseen")}
    for a in pools:
        for b in pools:
            if a < b:
                assert not (pools[a] & pools[b]), (a, b)
    noise_type = lambda path: Path(path).stem.rsplit("_", 1)[0]  # noqa: E731
    seen_types = {noise_type(p) for p in pools["train"] | pools["dev"] | pools["test_seen"]}
    unseen_types = {noise_type(p) for p in pools["test_unseen"]}
    assert len(seen_types | unseen_types) >= 6 and len(unseen_types) >= 2
    assert not seen_types & unseen_types
    used = defaultdict(set)
    for name in ["train_noisy", "dev_noisy", *TEST_SETS]:
        used[name.rsplit("_", 1)[-1]] |= set(read_kv(data / name / "utt2noise").values())
    assert not used["unseen"] & (used["noisy"] | used["seen"])


def test_mixtures_hit_their_snr(recipe):
    recipe_dir, _ = recipe
    for name in ("train_noisy", "test1_snr-5_unseen"):
        d = recipe_dir / "data" / name
        clean, noise, snr = (read_kv(d / f) for f in ("spk1.scp", "noise1.scp", "utt2snr"))
        for utt in clean:
            s, _ = sf.read(clean[utt])
            n, _ = sf.read(noise[utt])
            measured = 10 * np.log10(np.mean(s ** 2) / np.mean(n ** 2))
            assert abs(measured - float(snr[utt])) < 0.05, utt


def test_emotion_styles_differ_in_f0_and_duration(recipe):
    recipe_dir, _ = recipe
    corpus = recipe_dir / "data" / "local" / "mini_emo"
    with open(corpus / "Labels" / "labels_consensus.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    f0, dur = defaultdict(list), defaultdict(list)
    for row in rows[: 4 * 40]:  # 40 base utterances, all four styles
        wav, rate = sf.read(corpus / "Audios" / row["FileName"])
        contour, _ = pyworld.dio(wav, rate, frame_period=10.0)
        voiced = contour[contour > 0]
        f0[row["EmoClass"]].append(12 * np.log2(np.mean(voiced)))
        dur[row["EmoClass"]].append(len(wav) / rate)
    mean = {e: np.mean(v) for e, v in f0.items()}
    length = {e: np.mean(v) for e, v in dur.items()}
    assert mean["A"] > mean["N"] + 1 and mean["H"] > mean["N"] + 1 and mean["S"] < mean["N"] - 1
    assert length["S"] > length["N"] * 1.05 and length["A"] < length["N"] * 0.97


def test_stage_logs_report_progress_and_summaries(recipe):
    _, res = recipe
    assert "Stage 1: Data preparation: done in" in res.stderr
    assert "Stage 2: Noise simulation: done in" in res.stderr
    assert "data/train_noisy: " in res.stderr and " h, SNR dB -5:" in res.stderr


def test_rendering_is_byte_identical(tmp_path):
    """Two builds from the same downloads and seed give the same bytes."""
    small = tmp_path / "downloads"
    spk_dir = small / "speech"
    spk_dir.mkdir(parents=True)
    with open(DOWNLOADS / "speech" / "speakers.tsv") as f:
        lines = f.read().splitlines()
    header, first, second = lines[0], lines[1], lines[2]
    (spk_dir / "speakers.tsv").write_text("\n".join([header, first, second]) + "\n")
    for line in (first, second):
        spk = line.split("\t")[0]
        (spk_dir / spk).mkdir()
        for src in sorted((DOWNLOADS / "speech" / spk).glob("*.flac"))[:3]:
            shutil.copy(src, spk_dir / spk / src.name)
    test_spk = second.split("\t")[0]

    def build(out):
        count, rendered = mini_emo.build(small, out, dev_speakers=[], test_speakers=[test_spk],
                                         seed=5, nj=2)
        assert count == 2 * 3 * 4
        return rendered, {p.relative_to(out): hashlib.sha256(p.read_bytes()).hexdigest()
                          for p in sorted(out.rglob("*")) if p.is_file()}

    (_, first_run), (_, second_run) = build(tmp_path / "a"), build(tmp_path / "b")
    assert len(first_run) == 2 * 3 * 4 + 3
    assert first_run == second_run
    # built again from the same speech: kept as it is (stage 1 must not touch later
    # stages' inputs); from a changed base file: rendered again
    audio = tmp_path / "a" / "Audios"
    mtimes = {p: p.stat().st_mtime_ns for p in audio.iterdir()}
    assert build(tmp_path / "a")[0] is False
    assert {p: p.stat().st_mtime_ns for p in audio.iterdir()} == mtimes
    base = next((spk_dir / test_spk).glob("*.flac"))
    os.utime(base, ns=(base.stat().st_atime_ns, base.stat().st_mtime_ns + 10**9))
    assert build(tmp_path / "a")[0] is True


@pytest.fixture(scope="module")
def trained_recipe(recipe, run_tool_module):
    """Stages 3-4 on top of stages 1-2, with one short epoch instead of the configured
    eight; stage 3 also dumps the clean training sets of the cascade (matrix_recipe)."""
    recipe_dir, _ = recipe
    env = {"MERIT_VENV": str(recipe_dir.parents[2] / "test_env")}
    res = run_tool_module(["./run.sh", "--stage", "3", "--stop_stage", "3", "--systems", "cascade"],
                          cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_tool_module(["./run.sh", "--stage", "4", "--stop_stage", "4",
                           "--train_args", "--max_epoch 1 --num_iters_per_epoch 8"],
                          cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return recipe_dir, res


def test_stages_3_4_dump_features_and_train(trained_recipe):
    recipe_dir, res = trained_recipe
    dump = recipe_dir / "dump" / "fbank"
    # the default config mixes online: stage 3 dumps only the cascade classifier's clean sets
    for name in ["train_clean", "dev_clean"]:
        shapes = read_kv(dump / name / "feats_shape")
        assert shapes.keys() == read_kv(recipe_dir / "data" / name / "wav.scp").keys()
        assert all(s.endswith(",1,240") for s in shapes.values())
    assert sorted(p.name for p in dump.iterdir() if p.name != "log") == ["dev_clean", "train_clean"]
    exp = recipe_dir / "exp" / "sparse_merit_fbank_seed1"
    for name in ("config.yaml", "valid.macro_f1.best.pth", "1epoch.pth", "train.log"):
        assert (exp / name).exists(), name
    log = (exp / "train.log").read_text()
    assert "macro_f1=" in log and "# Ended (code 0)" in log
    assert "Stage 4: Training: done in" in res.stderr


@pytest.fixture(scope="module")
def decoded_recipe(trained_recipe, run_tool_module):
    """Stage 5 on top of stages 1-4: the trained model decodes test1_snr-5_unseen."""
    recipe_dir, _ = trained_recipe
    env = {"MERIT_VENV": str(recipe_dir.parents[2] / "test_env")}
    res = run_tool_module(["./run.sh", "--stage", "5", "--stop_stage", "5", "--test_snrs", "-5",
                           "--test_conditions", "unseen"], cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return recipe_dir, env


def test_stage_5_decodes_test_sets(decoded_recipe, run_tool):
    recipe_dir, _ = decoded_recipe
    exp = recipe_dir / "exp" / "sparse_merit_fbank_seed1"
    for cond in ("unseen",):
        decode = exp / f"decode_test1_snr-5_{cond}"
        utts = read_kv(recipe_dir / "data" / f"test1_snr-5_{cond}" / "wav.scp")
        hyp = read_kv(decode / "utt2emo_hyp")
        assert hyp.keys() == utts.keys() and set(hyp.values()) <= set("ASHN")
        for utt, line in read_kv(decode / "utt2posteriors").items():
            probs = [float(p) for p in line.split()]
            assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-4
            assert "ASHN"[int(np.argmax(probs))] == hyp[utt]
        enhanced = read_kv(decode / "enhanced.scp")
        assert enhanced.keys() == utts.keys()
        utt = sorted(utts)[0]
        assert sf.info(enhanced[utt]).frames == sf.info(utts[utt]).frames
        usage = read_kv(decode / "utt2expert_usage_ser")
        assert all(abs(sum(map(float, v.split())) - 1) < 1e-3 for v in usage.values())
    # merit-infer on one file (the model records its upstream, so audio alone works)
    res = run_tool([sys.executable, "-m", "merit.bin.merit_infer", "--model_dir", exp, utts[utt],
                    "--out", recipe_dir / "one.wav"], cwd=recipe_dir)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "emotion" in res.stdout and (recipe_dir / "one.wav").exists()


def test_stage_6_scores_and_writes_results(decoded_recipe, run_tool):
    recipe_dir, env = decoded_recipe
    exp = recipe_dir / "exp" / "sparse_merit_fbank_seed1"
    res = run_tool(["./run.sh", "--stage", "6", "--stop_stage", "6", "--test_snrs", "-5",
                    "--test_conditions", "unseen"], cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    scores = json.loads((exp / "decode_test1_snr-5_unseen" / "scores.json").read_text())
    assert scores["snr_db"] == "-5" and scores["condition"] == "unseen"
    assert scores["ser"]["count"] == 160 and 0 <= scores["ser"]["macro_f1"] <= 1
    for which in ("noisy", "enhanced"):
        assert list(scores["se"][which]) == [metric.name for metric in DEFAULT_SE_METRICS]
    assert scores["se"]["noisy"]["ssnr"] < 0  # -5 dB mixtures
    assert scores["se"]["enhanced"]["si_sdr"] != scores["se"]["noisy"]["si_sdr"]  # output is not input
    results = (exp / "RESULTS.md").read_text()
    assert "## Environment" in results and "| test1_snr-5_unseen |" in results
    for png in ("decode_test1_snr-5_unseen/confusion.png", "decode_test1_snr-5_unseen/spectrograms.png",
                "expert_usage.png"):
        assert (exp / png).read_bytes()[:4] == b"\x89PNG", png


MATRIX = ["./run.sh", "--stage", "4", "--stop_stage", "6", "--systems", "cascade",
          "--seeds", "1 2", "--test_snrs", "-5", "--test_conditions", "unseen",
          "--parallel_runs", "2", "--train_args", "--max_epoch 1 --num_iters_per_epoch 2"]
MATRIX_MODELS = [f"{m}_fbank_seed{s}" for s in (1, 2) for m in ("se_only", "ser_only_clean")]


@pytest.fixture(scope="module")
def matrix_recipe(trained_recipe, run_tool_module):
    """A small experiment matrix (the cascade, two seeds, two training steps per model)
    on top of stages 1-4."""
    recipe_dir, _ = trained_recipe
    env = {"MERIT_VENV": str(recipe_dir.parents[2] / "test_env")}
    res = run_tool_module(MATRIX, cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return recipe_dir, env, res


def assert_classified_enhanced(classifier, decode, enhanced, noisy):
    """The cascade's posteriors are the classifier's on the enhancer's output, and differ
    from the classifier's on the noisy input (features computed from the audio in both:
    test sets are not dumped without --dump_test_sets true)."""
    speech2merit = Speech2Merit(classifier)  # the checkpoint of its first best_model_criterion
    posteriors = read_kv(decode / "utt2posteriors")
    moved = 0.0
    for utt in sorted(enhanced)[:5]:
        written = np.array([float(p) for p in posteriors[utt].split()])
        on_enhanced = speech2merit(read_audio(enhanced[utt])).posteriors
        on_noisy = speech2merit(read_audio(noisy[utt])).posteriors
        np.testing.assert_allclose(written, on_enhanced, atol=2e-6)
        moved = max(moved, float(np.abs(on_noisy - on_enhanced).max()))
    assert moved > 1e-4, "the classifier's output does not depend on which input it reads"


def test_cascade_enhances_then_classifies_the_enhanced_audio(matrix_recipe):
    recipe_dir, _, _ = matrix_recipe
    exp = recipe_dir / "exp"
    test_set = "test1_snr-5_unseen"
    for seed in (1, 2):
        se_exp, cascade = exp / f"se_only_fbank_seed{seed}", exp / f"cascade_fbank_seed{seed}"
        assert (cascade / "components").read_text() == (
            f"enhancer: exp/se_only_fbank_seed{seed}\n"
            f"classifier: exp/ser_only_clean_fbank_seed{seed} (trained on clean speech)\n")
        # the classifier learned from the clean speech of the training mixtures
        clean = read_kv(recipe_dir / "data" / "train_clean" / "wav.scp")
        assert clean == read_kv(recipe_dir / "data" / "train_noisy" / "spk1.scp")
        train_log = (exp / f"ser_only_clean_fbank_seed{seed}" / "train.log").read_text()
        assert "data/train_clean/wav.scp,speech,sound" in train_log
        # it classified the enhancer's output, features computed while decoding ...
        enhanced = read_kv(se_exp / f"decode_{test_set}" / "enhanced.scp")
        assert read_kv(se_exp / f"decode_{test_set}" / "data" / "wav.scp") == enhanced
        assert not (se_exp / f"decode_{test_set}" / "feats").exists()
        decode = cascade / f"decode_{test_set}"
        assert read_kv(decode / "enhanced.scp") == enhanced
        assert read_kv(decode / "utt2emo_hyp").keys() == enhanced.keys()
        assert_classified_enhanced(exp / f"ser_only_clean_fbank_seed{seed}", decode, enhanced,
                                   read_kv(recipe_dir / "data" / test_set / "wav.scp"))
        # ... and is scored as one system: SER of the classifier, SE of the enhancer
        scores = json.loads((decode / "scores.json").read_text())
        assert scores["ser"]["count"] == 160 and "enhanced" in scores["se"]
    config = yaml.safe_load((exp / "se_only_fbank_seed2" / "config.yaml").read_text())
    assert config["seed"] == 2 and config["ser_head"] is None and config["moe"] == "shared"
    assert (exp / "se_only_fbank_seed2" / "valid.loss.best.pth").exists()


def test_matrix_tables_average_over_seeds(matrix_recipe):
    recipe_dir, _, res = matrix_recipe
    tables = (recipe_dir / "exp" / "tables_fbank.md").read_text()
    assert tables in res.stderr
    for table in tables.split("### ")[1:]:
        rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()
                if line.startswith("| ") and not line.startswith(("| noisy", "| oracle_"))}
        assert set(rows) == {"system", "cascade_fbank"}
        assert rows["cascade_fbank"].count(" ± ") == 1  # one test set, mean ± std of 2 seeds
        if "SER" not in table.splitlines()[0]:  # SE tables: the bounds of the enhancer's head
            assert "| oracle_mask |" in table and "| oracle_magnitude |" in table
    assert " vs. " not in tables and "`*`" not in tables  # the baseline alone: nothing compared


def test_second_matrix_call_does_no_training(matrix_recipe, run_tool):
    recipe_dir, env, _ = matrix_recipe
    exp = recipe_dir / "exp"
    watched = [exp / m / "checkpoint.pth" for m in MATRIX_MODELS]
    watched += [exp / f"cascade_fbank_seed{s}" / "decode_test1_snr-5_unseen" / "scores.json"
                for s in (1, 2)]
    before = [p.stat().st_mtime_ns for p in watched]
    res = run_tool(MATRIX, cwd=recipe_dir, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert res.stderr.count("already complete, skipped") == 4
    assert "merit.bin.merit_train" not in res.stderr and "Decoding 1 set" not in res.stderr
    # changed settings on a trained experiment: a clear error, not a silent retrain
    changed = MATRIX[:-1] + ["--max_epoch 2 --num_iters_per_epoch 2"]
    res = run_tool(changed, cwd=recipe_dir, env=env, timeout=300)
    assert res.returncode != 0
    assert "was trained with other settings" in res.stderr and "--exp_suffix" in res.stderr
