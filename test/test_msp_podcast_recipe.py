"""egs/msp_podcast/merit end to end on CPU: a generated tree in the release layout, noise
corpora in their own layouts, and a tiny random WavLM standing in for WavLM Large: the
recipe's default upstream wavlm_large, loaded from a local file with --upstream_ckpt."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from fake_corpora import make_msp_tree, make_noise_dir
from merit.data.datadir import read_kv
from merit.models.frontend import load_dumped
from recipe_tree import make_recipe_tree
from tiny_wavlm import make_tiny_wavlm

# the generated labels have Test3 rows, so run.sh adds test3; one SNR and condition
TEST_SETS = [f"{t}_snr-5_unseen" for t in ("test1", "test2", "test3")]
# the paper's sizes would make CPU training slow; everything else is the recipe's own
SMALL = ("--moe_conf hidden_size=64 --moe_conf output_size=32 --se_head_conf blstm_size=16 "
         "--ser_head_conf hidden_size=32 --max_epoch 1 --batch_size 4 --num_workers 0")


def make_corpora(root: Path) -> dict:
    """An MSP-Podcast tree (one listed file missing, one at 44.1 kHz) and three noise corpora."""
    msp = root / "MSP-Podcast"
    rows = make_msp_tree(msp, n_speakers=10, per_speaker=10)
    train = [r["FileName"] for r in rows if r["Split_Set"] == "Train" and r["EmoClass"] in "ASHN"]
    (msp / "Audios" / train[0]).unlink()
    wav, rate = sf.read(str(msp / "Audios" / train[1]))
    sf.write(str(msp / "Audios" / train[1]), np.interp(np.arange(0, len(wav), rate / 44100),
                                                        np.arange(len(wav)), wav), 44100)
    crss = root / "CRSS-4ENGLISH-14"
    make_noise_dir(crss / "babble", n_files=4, seconds=1.0, seed=1)
    fsd = root / "FSD50K"
    make_noise_dir(fsd / "FSD50K.dev_audio", n_files=4, seconds=1.0, seed=2)
    dns = root / "DNS-Challenge"
    make_noise_dir(dns / "datasets" / "noise", n_files=3, seconds=1.0, seed=3)
    return {"MSP_PODCAST": str(msp), "CRSS_NOISE": str(crss), "FREESOUND_NOISE": str(fsd),
            "DNS_NOISE": str(dns), "missing": train[0], "resampled": train[1]}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, run_tool_module):
    root = tmp_path_factory.mktemp("msp")
    env = make_recipe_tree(root / "tree", recipes=["msp_podcast"])
    corpora = make_corpora(root)
    env.update({k: v for k, v in corpora.items() if k.isupper()})
    recipe_dir = root / "tree" / "egs" / "msp_podcast" / "merit"
    ckpt = make_tiny_wavlm(root / "tiny_wavlm.pt")
    run = ["./run.sh", "--skip_missing", "true", "--ngpu", "0", "--nj", "2",
           "--upstream_ckpt", str(ckpt), "--test_snrs", "-5", "--test_conditions", "unseen",
           "--train_args", SMALL]
    return recipe_dir, env, corpora, run


@pytest.fixture(scope="module")
def full_run(recipe, run_tool_module):
    recipe_dir, env, _, run = recipe
    res = run_tool_module(run, cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


def test_missing_corpus_variables_are_named(recipe, run_tool):
    recipe_dir, env, _, _ = recipe
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir,
                   env={**env, "MSP_PODCAST": ""})
    assert res.returncode != 0 and "set MSP_PODCAST in db.sh" in res.stderr
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir,
                   env={**env, "MSP_PODCAST": str(recipe_dir / "nowhere")})
    assert res.returncode != 0 and "labels_consensus.csv is missing" in res.stderr


def test_missing_audio_stops_stage_1_unless_skipped(recipe, run_tool, tmp_path):
    recipe_dir, env, corpora, _ = recipe
    work = tmp_path / "merit"
    shutil.copytree(recipe_dir.parents[2], work, symlinks=True)
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=work / "egs" / "msp_podcast" / "merit",
                   env=env, timeout=300)
    assert res.returncode != 0 and corpora["missing"] in res.stderr
    assert "--skip_missing" in res.stderr


def test_stages_1_to_6_on_cpu_with_a_tiny_wavlm(recipe, full_run):
    recipe_dir, _, corpora, _ = recipe
    data = recipe_dir / "data"
    wav_scp = read_kv(data / "train" / "wav.scp")
    assert Path(corpora["missing"]).stem not in wav_scp
    assert "audio_16k" in wav_scp[Path(corpora["resampled"]).stem]
    assert set(read_kv(data / "train" / "utt2emo").values()) == set("ASHN")
    for split in ("dev", "test1", "test2", "test3"):
        assert (data / split / "wav.scp").is_file(), split
    info = yaml.safe_load((recipe_dir / "dump" / "wavlm_large" / "train_noisy" / "feats_info.yaml").read_text())
    assert info["num_layers"] == 3 and info["hidden_size"] == 32 and info["downsample_rate"] == 320
    exp = recipe_dir / "exp" / "sparse_merit_wavlm_large_seed1"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["emotion_classes"] == ["A", "S", "H", "N"] and config["optim_conf"]["lr"] == 5e-5
    assert config["moe_conf"]["num_experts"] == 3 and config["moe_conf"]["top_k"] == 1
    for name in TEST_SETS:
        scores = json.loads((exp / f"decode_{name}" / "scores.json").read_text())
        assert "macro_f1" in scores["ser"] and "pesq" in scores["se"]["enhanced"], name
    assert "| sparse_merit_wavlm_large |" in (recipe_dir / "exp" / "tables_wavlm_large.md").read_text()


def test_noise_pools_follow_the_documented_split(recipe, full_run):
    recipe_dir, _, corpora, _ = recipe
    pools = {p: read_kv(recipe_dir / "data" / "noise" / f"{p}.scp")
             for p in ("train", "dev", "test_seen", "test_unseen")}
    assert all(pools.values())
    unseen = set(pools["test_unseen"].values())
    assert {Path(p).parent for p in unseen} == {Path(corpora["DNS_NOISE"]) / "datasets" / "noise"}
    seen = [set(pools[p].values()) for p in ("train", "dev", "test_seen")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert not unseen & set().union(*seen)


def test_interrupted_dump_resumes_without_redoing_finished_parts(recipe, full_run, run_tool):
    recipe_dir, env, _, run = recipe
    dump = recipe_dir / "dump" / "wavlm_large" / "train_noisy"
    first, second = dump / "job1of2", dump / "job2of2"
    before = (first / "feats.ark").stat().st_mtime_ns
    listed = read_kv(second / "feats.scp")
    arrays = {utt: load_dumped(where) for utt, where in listed.items()}
    # as if killed inside job 2 while writing its last record: no marker, the record cut
    # short and not listed yet, no merged lists
    last, offset = list(listed)[-1], int(listed[list(listed)[-1]].rpartition(":")[2])
    (second / "done").unlink()
    (second / "feats.scp").write_text("".join(f"{u} {w}\n" for u, w in listed.items() if u != last))
    os.truncate(second / "feats.ark", offset + 100)
    (dump / "feats.scp").unlink()
    res = run_tool(run + ["--stage", "3", "--stop_stage", "3"], cwd=recipe_dir, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (first / "feats.ark").stat().st_mtime_ns == before
    logs = "".join(p.read_text() for p in (recipe_dir / "dump" / "wavlm_large" / "log").glob("dump.*.log"))
    assert "job1of2 is complete: nothing to do" in logs
    assert f"{len(listed)} utterances ({len(listed) - 1} already there)" in logs
    assert (dump / "feats.scp").is_file() and (second / "done").is_file()
    assert read_kv(second / "feats.scp") == listed
    for utt, where in listed.items():
        np.testing.assert_allclose(load_dumped(where), arrays[utt], rtol=0, atol=1e-3)


def test_eight_classes_with_online_features(recipe, full_run, run_tool):
    recipe_dir, env, _, run = recipe
    res = run_tool(["./run.sh", "--classes", "A,S,H,U,F,D,C,N", *run[1:], "--stop_stage", "4",
                    "--systems", "ser_only", "--test_sets", "", "--ssl_mode", "online"],
                   cwd=recipe_dir, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "nothing to dump" in res.stderr
    assert (recipe_dir / "data" / "train_ASHUFDCN_noisy" / "wav.scp").is_file()
    assert not (recipe_dir / "dump" / "wavlm_large" / "train_ASHUFDCN_noisy").exists()
    data = recipe_dir / "data" / "train_ASHUFDCN"
    assert set(read_kv(data / "utt2emo").values()) == set("ASHUFDCN")
    assert read_kv(recipe_dir / "data" / "train" / "utt2emo").keys() < read_kv(data / "utt2emo").keys()
    exp = recipe_dir / "exp" / "ser_only_wavlm_large_ASHUFDCN_seed1"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["emotion_classes"] == list("ASHUFDCN") and len(config["class_weights"]) == 8
    assert config["frontend"] == "s3prl" and config["frontend_conf"]["upstream"] == "wavlm_large"
