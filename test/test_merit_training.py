"""merit.bin.merit_train: a short real ESPnet training, reload and resume."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fake_corpora import make_msp_tree, make_noise_dir
from merit.bin import dump_ssl, simulate_noise
from merit.data import msp_podcast
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.metrics.classification import macro_f1
from merit.tasks.merit_task import MeritTask

CONFIG = {
    "integration": "concat", "moe": "sparse",
    "moe_conf": {"num_experts": 3, "top_k": 1, "hidden_size": 32, "output_size": 16},
    "se_head": "mask", "se_head_conf": {"linear_size": 16, "blstm_size": 16},
    "ser_head": "attentive_stats", "ser_head_conf": {"attention_size": 8, "hidden_size": 16},
    "optim": "adamw", "optim_conf": {"lr": 0.002},
    "batch_type": "unsorted", "batch_size": 8, "num_workers": 0, "seed": 1,
    "best_model_criterion": [["valid", "macro_f1", "max"]], "keep_nbest_models": 1,
    "num_att_plot": 0, "use_tensorboard": False,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Noisy train/dev sets from a generated corpus, with dumped fbank features."""
    root = tmp_path_factory.mktemp("training")
    make_msp_tree(root / "msp", n_speakers=5, per_speaker=12)
    msp_podcast.prepare(root / "msp", root / "data")
    make_noise_dir(root / "noise")
    for clean, noisy in (("train", "train_noisy"), ("dev", "dev_noisy")):
        assert simulate_noise.main([
            "--clean_dir", str(root / "data" / clean), "--noise", str(root / "noise"),
            "--category", "seen", "--snrs", "0 5", "--out_dir", str(root / "data" / noisy),
            "--audio_dir", str(root / "audio" / noisy)]) == 0
        assert dump_ssl.main(["--data_dir", str(root / "data" / noisy),
                              "--out_dir", str(root / "dump" / noisy), "--upstream", "fbank"]) == 0
    return root


def train(root: Path, exp: Path, max_epoch: int):
    config = dict(CONFIG, max_epoch=max_epoch)
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    info = yaml.safe_load((root / "dump" / "train_noisy" / "feats_info.yaml").read_text())
    cmd = [sys.executable, "-m", "merit.bin.merit_train", "--config", str(root / "train.yaml"),
           "--output_dir", str(exp), "--ngpu", "0", "--resume", "true",
           "--class_weights", str(root / "data/train_noisy/utt2emo"),
           "--frontend", "dumped", "--frontend_conf", f"num_layers={info['num_layers']}",
           "--frontend_conf", f"hidden_size={info['hidden_size']}",
           "--frontend_conf", f"downsample_rate={info['downsample_rate']}"]
    for mode, name in (("train", "train_noisy"), ("valid", "dev_noisy")):
        d = root / "data" / name
        cmd += [f"--{mode}_data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
                f"--{mode}_data_path_and_name_and_type", f"{d}/spk1.scp,speech_ref1,sound",
                f"--{mode}_data_path_and_name_and_type", f"{d}/utt2emo,emotion,text",
                f"--{mode}_data_path_and_name_and_type",
                f"{root}/dump/{name}/feats.scp,feats,npy",
                f"--{mode}_shape_file", f"{d}/utt2num_samples"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


@pytest.fixture(scope="module")
def trained(data):
    exp = data / "exp" / "sparse"
    first = train(data, exp, max_epoch=1)
    second = train(data, exp, max_epoch=2)  # resumes from the checkpoint of epoch 1
    return exp, second.stderr, first.stderr


def test_two_epochs_write_checkpoints_and_config(trained):
    exp, _, _ = trained
    for name in ("config.yaml", "checkpoint.pth", "valid.macro_f1.best.pth"):
        assert (exp / name).exists(), name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["emotion_classes"] == ["A", "S", "H", "N"]
    assert len(config["class_weights"]) == 4 and all(w > 0 for w in config["class_weights"])


def test_resume_continues_after_epoch_one(trained):
    _, log, first_log = trained
    assert "1/1epoch started" in first_log
    assert "The training was resumed using" in log
    assert "2/2epoch started" in log and "1/2epoch started" not in log


def test_reloaded_best_model_reproduces_logged_macro_f1(trained, data):
    exp, log, first_log = trained
    log = first_log + log
    model, args = MeritTask.build_model_from_file(exp / "config.yaml", exp / "valid.macro_f1.best.pth")
    again, _ = MeritTask.build_model_from_file(exp / "config.yaml", exp / "valid.macro_f1.best.pth")
    model.eval(), again.eval()
    d = data / "data" / "dev_noisy"
    wav, emo = read_kv(d / "wav.scp"), read_kv(d / "utt2emo")
    feats = read_kv(data / "dump" / "dev_noisy" / "feats.scp")
    classes = args.emotion_classes
    confusion = np.zeros((4, 4), dtype=int)
    for utt in sorted(wav):
        speech = torch.from_numpy(read_audio(wav[utt]))[None]
        f = torch.from_numpy(np.load(feats[utt]))[None]
        inputs = dict(speech=speech, speech_lengths=torch.tensor([speech.shape[1]]),
                      feats=f, feats_lengths=torch.tensor([f.shape[1]]))
        with torch.no_grad():
            task_feats, lengths, _ = model.encode(**inputs)
            logits = model.ser_head(task_feats["ser"], lengths)
            logits_again = again.ser_head(again.encode(**inputs)[0]["ser"], lengths)
        assert torch.equal(logits, logits_again)
        confusion[classes.index(emo[utt]), int(logits.argmax())] += 1
    best_epoch = int(re.match(r"(\d+)epoch", (exp / "valid.macro_f1.best.pth").resolve().name).group(1))
    logged = float(re.search(rf"{best_epoch}epoch results: .*\[valid\].*?macro_f1=([0-9.e-]+)", log).group(1))
    assert macro_f1(confusion) == pytest.approx(logged, abs=1e-3)
