"""Decoding gives what the trained model computes: ``Speech2Merit`` and
``merit.bin.merit_inference`` against the model's own forward on the same input.

The posteriors are tied to ``MeritModel.forward`` itself: for one utterance with
target class c, its ``loss_ser`` is −log p_c (the class weight cancels in a batch of
one), so exp(−loss_ser) over the C targets is the posterior vector. Expert usage is
forward's ``<task>_expert<i>``; the enhanced audio is the SE head's waveform of the
forward's SE features.
"""
import shutil

import numpy as np
import pytest
import torch
import yaml

from merit.bin import merit_inference
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.models.frontend import load_dumped
from merit.tasks.merit_task import MeritTask

UTTERANCES = 4


@pytest.fixture(scope="module")
def dev(tiny_data):
    """(utterance ids, wav.scp, feats.scp) of the tiny experiment's dev set."""
    wav = read_kv(tiny_data / "data" / "dev_noisy" / "wav.scp")
    feats = read_kv(tiny_data / "dump" / "dev_noisy" / "feats.scp")
    return sorted(wav)[:UTTERANCES], wav, feats


def forward_of(model, noisy, feats):
    """(posteriors (C,), {task: usage (E,)}, enhanced (S,)) from the model's forward."""
    speech = torch.from_numpy(noisy)[None]
    inputs = dict(speech=speech, speech_lengths=torch.tensor([speech.shape[1]]),
                  speech_ref1=speech, speech_ref1_lengths=torch.tensor([speech.shape[1]]),
                  feats=torch.from_numpy(feats)[None], feats_lengths=torch.tensor([len(feats)]))
    with torch.no_grad():
        losses = []
        for c in range(model.num_classes):
            _, stats, _ = model(**inputs, emotion=torch.tensor([[c]]))
            losses.append(float(stats["loss_ser"]))
        usage = {task: np.array([float(stats[f"{task}_expert{i}"])
                                 for i in range(model.moe.num_experts)])
                 for task in model.moe.tasks}
        features, lengths, _ = model.encode(**{k: inputs[k] for k in (
            "speech", "speech_lengths", "feats", "feats_lengths")})
        se_out = model.se_head(features["se"], lengths, speech, inputs["speech_lengths"])
        enhanced = model.se_head.enhance(se_out)[0].numpy()
    return np.exp(-np.array(losses)), usage, enhanced


def test_speech2merit_equals_the_models_forward(tiny_model, dev):
    utts, wav, feats = dev
    model, _ = MeritTask.build_model_from_file(tiny_model / "config.yaml",
                                               tiny_model / "valid.macro_f1.best.pth")
    model.eval()
    speech2merit = Speech2Merit(tiny_model)
    for utt in utts:
        noisy, hidden = read_audio(wav[utt]), load_dumped(feats[utt])
        posteriors, usage, enhanced = forward_of(model, noisy, hidden)
        result = speech2merit(noisy, hidden)
        np.testing.assert_allclose(result.posteriors, posteriors, rtol=1e-5, atol=1e-7)
        assert result.expert_usage.keys() == usage.keys()
        for task in usage:
            np.testing.assert_allclose(result.expert_usage[task], usage[task], atol=1e-7)
        assert result.enhanced.shape == noisy.shape
        np.testing.assert_allclose(result.enhanced, enhanced, rtol=1e-5, atol=1e-6)
        # the trained mask is not the identity: the output is not the input
        assert np.abs(result.enhanced - noisy).max() > 0.05 * np.abs(noisy).max()


def test_merit_inference_writes_what_speech2merit_computes(tiny_model, tiny_data, dev, tmp_path):
    utts, wav, feats = dev
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "wav.scp").write_text("".join(f"{u} {wav[u]}\n" for u in utts))
    out = tmp_path / "decode"
    assert merit_inference.main(["--model_dir", str(tiny_model), "--data_dir", str(data_dir),
                                 "--feats_dir", str(tiny_data / "dump" / "dev_noisy"),
                                 "--out_dir", str(out)]) == 0
    speech2merit = Speech2Merit(tiny_model)
    classes = (out / "classes").read_text().split()
    assert classes == ["A", "S", "H", "N"]
    tables = {name: read_kv(out / name) for name in (
        "utt2posteriors", "utt2emo_hyp", "enhanced.scp", "utt2expert_usage_se",
        "utt2expert_usage_ser")}
    assert all(sorted(table) == utts for table in tables.values())
    for utt in utts:
        result = speech2merit(read_audio(wav[utt]), load_dumped(feats[utt]))
        written = np.array([float(p) for p in tables["utt2posteriors"][utt].split()])
        np.testing.assert_allclose(written, result.posteriors, atol=1e-6)
        assert tables["utt2emo_hyp"][utt] == classes[int(np.argmax(result.posteriors))]
        for task in ("se", "ser"):
            usage = [float(f) for f in tables[f"utt2expert_usage_{task}"][utt].split()]
            np.testing.assert_allclose(usage, result.expert_usage[task], atol=1e-6)
        enhanced = read_audio(tables["enhanced.scp"][utt])
        np.testing.assert_allclose(enhanced, result.enhanced, atol=1 / 32768 + 1e-7)  # 16-bit PCM


def test_default_checkpoint_is_the_configs_first_criterion(tiny_model, tmp_path):
    """Without ``checkpoint``, the model of the config's first best_model_criterion loads
    (an SE-only system keeps ``valid.loss.best.pth``, not the macro-F1 one)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    config["best_model_criterion"] = [["valid", "loss", "min"], ["valid", "macro_f1", "max"]]
    (model_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(FileNotFoundError, match="valid.loss.best.pth: not found"):
        Speech2Merit(model_dir)
    shutil.copy(tiny_model / "valid.macro_f1.best.pth", model_dir / "valid.loss.best.pth")
    assert Speech2Merit(model_dir).checkpoint == "valid.loss.best.pth"
    assert Speech2Merit(tiny_model).checkpoint == "valid.macro_f1.best.pth"
