"""merit.bin.merit_train: a real ESPnet training, its saved model, and resuming after
the process was killed in the middle of an epoch."""
import math
import re
import signal
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.metrics.classification import macro_f1
from merit.models.frontend import load_dumped
from merit.tasks.merit_task import MeritTask
from tiny_experiment import train, train_command


def test_training_writes_checkpoints_and_class_weights(tiny_model, tiny_data):
    for name in ("config.yaml", "checkpoint.pth", "valid.macro_f1.best.pth"):
        assert (tiny_model / name).exists(), name
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    assert config["emotion_classes"] == ["A", "S", "H", "N"]
    counts = Counter(read_kv(tiny_data / "data" / "train_noisy" / "utt2emo").values())
    total = sum(counts.values())
    assert config["class_weights"] == pytest.approx(
        [total / (4 * counts[c]) for c in "ASHN"], abs=1e-6)
    assert len(set(config["class_weights"])) > 1  # the classes are unbalanced: weights differ


# merit_train, SIGKILLed by itself when the second batch of its second epoch is due:
# a real kill at a known point in the middle of an epoch, after one step of it.
KILLED_MID_EPOCH_2 = """
import os, signal, sys
from merit.bin import merit_train
from merit.tasks.merit_trainer import MeritTrainer

original = MeritTrainer.train_one_epoch.__func__
epochs = []

def killed_at_second_batch(batches):
    for step, batch in enumerate(batches):
        if len(epochs) == 2 and step == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        yield batch

def train_one_epoch(cls, *args, iterator, **kwargs):
    epochs.append(len(epochs) + 1)
    return original(cls, *args, iterator=killed_at_second_batch(iterator), **kwargs)

MeritTrainer.train_one_epoch = classmethod(train_one_epoch)
merit_train.main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_data):
    """The tiny model's training killed in the middle of its second epoch, then run again
    with the same command: (exp dir, log of the killed run, log of the resumed run)."""
    exp = tiny_data / "exp" / "killed"
    cmd = train_command(tiny_data, exp, max_epoch=2)
    assert cmd[1:3] == ["-m", "merit.bin.merit_train"]
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_EPOCH_2, *cmd[3:]],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = train(tiny_data, exp, max_epoch=2)
    return exp, killed.stderr, resumed.stderr


def test_resume_after_sigkill_restarts_the_interrupted_epoch(killed_and_resumed):
    _, killed_log, resumed_log = killed_and_resumed
    assert "2/2epoch started" in killed_log and "2epoch results" not in killed_log
    assert "The training was resumed using" in resumed_log
    assert "2/2epoch started" in resumed_log and "1/2epoch started" not in resumed_log


def test_resume_after_sigkill_gives_the_uninterrupted_weights_and_optimizer(
        killed_and_resumed, tiny_model):
    exp, _, _ = killed_and_resumed
    resumed = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)  # ESPnet state: not only tensors
    straight = torch.load(tiny_model / "checkpoint.pth", map_location="cpu", weights_only=False)  # ESPnet state: not only tensors
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    (resumed_optim,), (straight_optim,) = resumed["optimizers"], straight["optimizers"]
    assert resumed_optim["param_groups"] == straight_optim["param_groups"]
    assert resumed_optim["state"].keys() == straight_optim["state"].keys()
    for index, state in straight_optim["state"].items():
        for name, value in state.items():
            assert torch.equal(resumed_optim["state"][index][name], value), (index, name)
    step = int(straight_optim["state"][0]["step"])
    assert step > 0 and int(resumed_optim["state"][0]["step"]) == step


def test_reloaded_best_model_reproduces_logged_macro_f1(tiny_model, tiny_data):
    model, args = MeritTask.build_model_from_file(tiny_model / "config.yaml",
                                                  tiny_model / "valid.macro_f1.best.pth")
    model.eval()
    d = tiny_data / "data" / "dev_noisy"
    wav, emo = read_kv(d / "wav.scp"), read_kv(d / "utt2emo")
    feats = read_kv(tiny_data / "dump" / "dev_noisy" / "feats.scp")
    classes = args.emotion_classes
    confusion = np.zeros((4, 4), dtype=int)
    for utt in sorted(wav):
        speech = torch.from_numpy(read_audio(wav[utt]))[None]
        f = torch.from_numpy(load_dumped(feats[utt]))[None]
        with torch.no_grad():
            task_feats, lengths, _ = model.encode(
                speech=speech, speech_lengths=torch.tensor([speech.shape[1]]),
                feats=f, feats_lengths=torch.tensor([f.shape[1]]))
            logits = model.ser_head(task_feats["ser"], lengths)
        confusion[classes.index(emo[utt]), int(logits.argmax())] += 1
    log = (tiny_model / "train.log").read_text()
    best = (tiny_model / "valid.macro_f1.best.pth").resolve().name
    best_epoch = int(re.match(r"(\d+)epoch", best).group(1))
    logged = float(re.search(rf"{best_epoch}epoch results: .*\[valid\].*?macro_f1=([0-9.e-]+)",
                             log).group(1))
    assert macro_f1(confusion) == pytest.approx(logged, abs=1e-3)


def test_joint_score_is_dev_macro_f1_minus_ln_dev_se_loss(tiny_model):
    """The logged ``joint_score`` of every epoch, from that epoch's logged dev macro-F1
    and dev SE loss (logged to 3-4 digits: within their rounding)."""
    epochs = re.findall(r"(\d+)epoch results: .*\[valid\] (.*)", (tiny_model / "train.log").read_text())
    assert epochs
    for epoch, valid in epochs:
        logged = dict(re.findall(r"(\w+)=([-0-9.e+]+)", valid))
        expected = float(logged["macro_f1"]) - math.log(float(logged["loss_se"]))
        assert float(logged["joint_score"]) == pytest.approx(expected, abs=0.02), epoch
