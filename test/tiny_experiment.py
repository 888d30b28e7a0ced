"""A tiny real experiment for tests: a generated corpus with noisy train/dev sets and
dumped fbank features, and ESPnet training of a small sparse MERIT model on it.

conftest.py builds both once per session (fixtures ``tiny_data`` and ``tiny_model``)
for the tests that only need *a* trained model; tests of training itself call
``train`` into their own exp dirs on the same data.
"""
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import yaml

from fake_corpora import make_msp_tree, make_noise_dir
from merit.bin import dump_ssl, simulate_noise
from merit.data import msp_podcast

CONFIG = {
    "integration": "concat", "moe": "sparse",
    "moe_conf": {"num_experts": 3, "top_k": 1, "hidden_size": 32, "output_size": 16},
    "se_head": "mask", "se_head_conf": {"linear_size": 16, "blstm_size": 16},
    "ser_head": "attentive_stats", "ser_head_conf": {"attention_size": 8, "hidden_size": 16},
    "optim": "adamw", "optim_conf": {"lr": 0.002},
    "batch_type": "unsorted", "batch_size": 2, "num_workers": 0, "seed": 1,  # 3 steps per epoch
    "best_model_criterion": [["valid", "macro_f1", "max"]], "keep_nbest_models": 1,
    "num_att_plot": 0, "use_tensorboard": True,
}


def make_data(root: Path) -> Path:
    """Noisy ``data/{train,dev}_noisy`` (0 and 5 dB) from a generated corpus, with fbank
    dumps in ``dump/<set>``. Returns ``root``."""
    make_msp_tree(root / "msp", n_speakers=5, per_speaker=12)
    msp_podcast.prepare(root / "msp", root / "data")
    make_noise_dir(root / "noise")
    for clean, noisy in (("train", "train_noisy"), ("dev", "dev_noisy")):
        if simulate_noise.main([
                "--clean_dir", str(root / "data" / clean), "--noise", str(root / "noise"),
                "--category", "seen", "--snrs", "0 5", "--out_dir", str(root / "data" / noisy),
                "--audio_dir", str(root / "audio" / noisy)]) != 0:
            raise RuntimeError(f"simulate_noise failed for {noisy}")
        if dump_ssl.main(["--data_dir", str(root / "data" / noisy),
                          "--out_dir", str(root / "dump" / noisy), "--upstream", "fbank"]) != 0:
            raise RuntimeError(f"dump_ssl failed for {noisy}")
    return root


def train_command(root: Path, exp: Path, max_epoch: int, ngpu: int = 0,
                  extra: Sequence[str] = ()) -> list:
    """The ``merit.bin.merit_train`` command line of the tiny model (``--resume true``)."""
    config = dict(CONFIG, max_epoch=max_epoch)
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "train_config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "merit.bin.merit_train", "--config", str(exp / "train_config.yaml"),
           "--output_dir", str(exp), "--ngpu", str(ngpu), "--resume", "true",
           "--class_weights", str(root / "data/train_noisy/utt2emo"), "--frontend", "dumped",
           "--frontend_conf", f"feats_info={root}/dump/train_noisy/feats_info.yaml"]
    for mode, name in (("train", "train_noisy"), ("valid", "dev_noisy")):
        d = root / "data" / name
        cmd += [f"--{mode}_data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
                f"--{mode}_data_path_and_name_and_type", f"{d}/spk1.scp,speech_ref1,sound",
                f"--{mode}_data_path_and_name_and_type", f"{d}/utt2emo,emotion,text",
                f"--{mode}_data_path_and_name_and_type",
                f"{root}/dump/{name}/feats.scp,feats,kaldi_ark",
                f"--{mode}_shape_file", f"{d}/utt2num_samples"]
    return cmd + list(extra)


def train(root: Path, exp: Path, max_epoch: int, ngpu: int = 0,
          extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Train (or resume) the tiny model into ``exp``; fails with ESPnet's log tail.
    The log is also saved as ``exp/train.log``."""
    res = subprocess.run(train_command(root, exp, max_epoch, ngpu, extra),
                         capture_output=True, text=True, timeout=600)
    (exp / "train.log").write_text(res.stderr)
    if res.returncode != 0:
        raise AssertionError(f"merit_train failed in {exp}:\n{res.stderr[-4000:]}")
    return res
