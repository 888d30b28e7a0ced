"""The GPU paths of merit, run for real: ESPnet training on CUDA (fp32 and ``--use_amp``),
decoding and SSL dumping on CUDA against the CPU, the sparse MoE on CUDA and under bf16
autocast. Each test takes seconds on a GPU.

Without a CUDA GPU every test is skipped. ``MERIT_TEST_DEVICE=cpu`` makes "cpu" the
target device instead of "cuda", so that the tests' own logic can be checked on a
machine without a GPU (the device-vs-CPU comparisons then compare the CPU with itself):

    MERIT_TEST_DEVICE=cpu python -m pytest -q test/test_cuda.py

Reuses the session's tiny experiment (fixture ``tiny_data``: noisy train/dev sets with
fbank dumps; ``tiny_experiment.train``), and test_moe's layer and batch builders.
"""
import copy
import math
import os
import re

import numpy as np
import pytest
import torch
import yaml

from merit.bin import dump_ssl, merit_inference
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.models.frontend import load_dumped
from test_moe import F_IN, TASKS, make_batch, make_layer
from tiny_experiment import train
from tiny_wavlm import make_tiny_wavlm

DEVICE = os.environ.get("MERIT_TEST_DEVICE", "cuda")
if DEVICE not in ("cuda", "cpu"):
    raise ValueError(f"MERIT_TEST_DEVICE must be 'cuda' or 'cpu', not {DEVICE!r}")
NGPU = 1 if DEVICE == "cuda" else 0

pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU")


@pytest.fixture
def strict_fp32():
    """No TF32 while comparing with the CPU: cuDNN allows it by default (matmul does not)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# --- a. ESPnet training on the device ----------------------------------------------------

def train_on_device(root, name, *extra):
    """The tiny model trained for one epoch with ``--ngpu NGPU`` and ``extra`` options.
    Returns (exp dir, stderr of merit_train, also saved as ``exp/train.log``)."""
    exp = root / "exp" / f"device_{name}"
    return exp, train(root, exp, max_epoch=1, ngpu=NGPU, extra=extra).stderr


@pytest.fixture(scope="module")
def trained_fp32(tiny_data):
    return train_on_device(tiny_data, "fp32")


@pytest.fixture(scope="module")
def trained_amp(tiny_data):
    return train_on_device(tiny_data, "amp", "--use_amp", "true")


def storage_locations(path):
    """The devices the tensors of a saved state dict were on ("cuda:0", "cpu")."""
    seen = set()

    def record(storage, location):
        seen.add(location)
        return storage

    state = torch.load(path, map_location=record)
    return seen, state


def epoch_losses(log):
    """loss of [train] and [valid] from ESPnet's "1epoch results:" line."""
    line = re.search(r"1epoch results: (.*)", log).group(1)
    return {mode: float(re.search(rf"\[{mode}\].*?\bloss=([^,\s]+)", line).group(1))
            for mode in ("train", "valid")}


@pytest.mark.parametrize("run", ["trained_fp32", "trained_amp"])
def test_one_epoch_trains_on_device(run, request):
    exp, log = request.getfixturevalue(run)
    assert "1/1epoch started" in log
    for name in ("config.yaml", "checkpoint.pth", "1epoch.pth", "valid.macro_f1.best.pth"):
        assert (exp / name).exists(), name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["ngpu"] == NGPU
    assert config["use_amp"] == (run == "trained_amp")
    losses = epoch_losses(log)
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert re.search(r"\[valid\].*macro_f1=", log)
    assert "Skipping updating the model" not in log  # ESPnet's note of a non-finite grad norm
    # the saved model tensors were on the device, and are finite float32 (AMP keeps fp32 weights)
    locations, state = storage_locations(exp / "1epoch.pth")
    assert locations == ({"cuda:0"} if DEVICE == "cuda" else {"cpu"}), locations
    for key, value in state.items():
        if value.is_floating_point():
            assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
    if DEVICE == "cuda":
        assert "cuda.available=True" in log
        assert "gpu_max_cached_mem_GB" in log  # ESPnet reports it only once CUDA was used


# --- b. decoding on the device matches the CPU ------------------------------------------

def test_inference_on_device_matches_cpu(trained_fp32, tiny_data, strict_fp32):
    exp, _ = trained_fp32
    dev = tiny_data / "data" / "dev_noisy"
    tables = {}
    for name, ngpu in (("cpu", 0), ("device", NGPU)):
        out = tiny_data / "decode" / name
        assert merit_inference.main(["--model_dir", str(exp), "--data_dir", str(dev),
                                     "--feats_dir", str(tiny_data / "dump" / "dev_noisy"),
                                     "--out_dir", str(out), "--ngpu", str(ngpu)]) == 0
        tables[name] = (read_kv(out / "utt2posteriors"), read_kv(out / "utt2emo_hyp"))
    (cpu_post, cpu_hyp), (dev_post, dev_hyp) = tables["cpu"], tables["device"]
    assert sorted(dev_post) == sorted(cpu_post) == sorted(read_kv(dev / "wav.scp"))
    utts = sorted(cpu_post)
    as_array = lambda table: np.array([[float(v) for v in table[u].split()] for u in utts])
    np.testing.assert_allclose(as_array(dev_post), as_array(cpu_post), rtol=0, atol=2e-5)
    assert dev_hyp == cpu_hyp

    # in memory, without dumped features: the upstream runs on the device too; SE as well
    on_cpu, on_device = Speech2Merit(exp, device="cpu"), Speech2Merit(exp, device=DEVICE)
    assert {p.device.type for p in on_device.model.parameters()} == {DEVICE}
    wav = read_kv(dev / "wav.scp")
    for utt in utts[:4]:
        noisy = read_audio(wav[utt])
        a, b = on_cpu(noisy), on_device(noisy)
        np.testing.assert_allclose(b.posteriors, a.posteriors, rtol=1e-4, atol=1e-6)
        assert b.enhanced.shape == a.enhanced.shape == noisy.shape
        np.testing.assert_allclose(b.enhanced, a.enhanced, rtol=0,
                                   atol=1e-4 * max(1.0, float(np.abs(a.enhanced).max())))
        assert set(b.expert_usage) == set(a.expert_usage)


def test_batched_decoding_on_device_matches_one_at_a_time(trained_fp32, tiny_data, strict_fp32):
    """On the CPU a batch gives each utterance the same bits as alone
    (test_batched_decoding); GPU kernels were never measured, so on the device: the same
    emotions and expert usage, and posteriors and samples within 1e-6 (the same bits
    on the CPU)."""
    exp, _ = trained_fp32
    speech2merit = Speech2Merit(exp, device=DEVICE)
    wav = read_kv(tiny_data / "data" / "dev_noisy" / "wav.scp")
    noisy = [read_audio(wav[utt]) for utt in sorted(wav)[:6]]
    atol = 1e-6 if DEVICE == "cuda" else 0.0
    for alone, batched in zip(map(speech2merit, noisy), speech2merit.batch(noisy)):
        assert np.argmax(batched.posteriors) == np.argmax(alone.posteriors)
        for task, usage in alone.expert_usage.items():
            np.testing.assert_array_equal(batched.expert_usage[task], usage)
        np.testing.assert_allclose(batched.posteriors, alone.posteriors, rtol=0, atol=atol)
        np.testing.assert_allclose(batched.enhanced, alone.enhanced, rtol=0, atol=atol)


# --- c. SSL dumping on the device matches the CPU ---------------------------------------

def test_dump_ssl_on_device_matches_cpu(tiny_data, tmp_path, strict_fp32):
    ckpt = make_tiny_wavlm(tmp_path / "tiny_wavlm.pt")
    dev = tiny_data / "data" / "dev_noisy"
    for name, ngpu in (("cpu", 0), ("device", NGPU)):
        assert dump_ssl.main(["--data_dir", str(dev), "--out_dir", str(tmp_path / name),
                              "--upstream", "wavlm_local", "--upstream_ckpt", str(ckpt),
                              "--dtype", "float32", "--ngpu", str(ngpu)]) == 0
    info = (tmp_path / "cpu" / "feats_info.yaml").read_text()
    assert (tmp_path / "device" / "feats_info.yaml").read_text() == info
    assert yaml.safe_load(info)["num_layers"] == 3  # tiny WavLM: CNN output + 2 layers
    cpu, device = (read_kv(tmp_path / name / "feats.scp") for name in ("cpu", "device"))
    assert sorted(cpu) == sorted(device) == sorted(read_kv(dev / "wav.scp"))
    for utt in sorted(cpu):
        a, b = load_dumped(cpu[utt]), load_dumped(device[utt])
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.shape[1:] == (3, 32)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(a).max())))


# --- d. the sparse MoE on the device ----------------------------------------------------

def larger_batch(seed=1):
    """Three utterances of 40, 17 and 1 valid frames (T = 40), input size of test_moe."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 40, F_IN, generator=gen)
    mask = torch.arange(40)[None] < torch.tensor([40, 17, 1])[:, None]
    return x, mask


def run_moe(layer, x, mask):
    """Forward and backward of a loss touching every output; returns (output, x.grad)."""
    x = x.detach().clone().requires_grad_(True)
    out = layer(x, mask)
    loss = out.balance_loss.float()
    weight = torch.linspace(-1, 1, layer.output_size, device=x.device)
    expert_weight = torch.arange(layer.num_experts, device=x.device, dtype=torch.float32)
    for task in layer.tasks:
        loss = (loss + (out.features[task].float() * weight).sum()
                + (out.gate_probs[task].float() * expert_weight).sum())
    loss.backward()
    return out, x.grad


@pytest.mark.parametrize("top_k, normalize_topk", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("batch", [make_batch, larger_batch])
def test_sparse_moe_on_device_matches_cpu(top_k, normalize_topk, batch, strict_fp32):
    layer = make_layer(top_k=top_k, normalize_topk=normalize_topk)
    moved = copy.deepcopy(layer).to(DEVICE)
    x, mask = batch()
    ref, ref_grad = run_moe(layer, x, mask)
    out, grad = run_moe(moved, x.to(DEVICE), mask.to(DEVICE))
    close = dict(rtol=1e-5, atol=1e-6)
    for task in TASKS:
        assert out.features[task].device.type == DEVICE
        torch.testing.assert_close(out.features[task].cpu(), ref.features[task], **close)
        torch.testing.assert_close(out.gate_probs[task].cpu(), ref.gate_probs[task], **close)
        assert torch.equal(out.expert_index[task].cpu(), ref.expert_index[task])
        torch.testing.assert_close(out.expert_fraction[task].cpu(), ref.expert_fraction[task])
    torch.testing.assert_close(out.balance_loss.cpu(), ref.balance_loss, **close)
    torch.testing.assert_close(grad.cpu(), ref_grad, **close)
    for (name, p), q in zip(layer.named_parameters(), moved.parameters()):
        assert q.grad is not None and q.grad.device.type == DEVICE, name
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("top_k", [1, 2])
def test_sparse_moe_bf16_autocast_forward_backward(top_k):
    layer = make_layer(top_k=top_k).to(DEVICE)
    x, mask = (t.to(DEVICE) for t in larger_batch())
    ref, _ = run_moe(copy.deepcopy(layer), x, mask)
    with torch.autocast(device_type=DEVICE, dtype=torch.bfloat16):
        out, grad = run_moe(layer, x, mask)
    assert torch.isfinite(grad).all() and grad.dtype == torch.float32
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name
    assert torch.isfinite(out.balance_loss).all()
    for task in TASKS:
        features = out.features[task]
        assert features.dtype == torch.bfloat16 and torch.isfinite(features).all()
        assert (features[~mask] == 0).all()
        assert (out.expert_index[task][~mask] == -1).all()
        # bf16 keeps ~3 significant digits; compare where bf16 chose the experts fp32 did
        chosen, expected_chosen = (r.expert_index[task].sort(-1).values for r in (out, ref))
        same = (chosen == expected_chosen).all(-1) & mask
        assert same.sum() >= 0.9 * mask.sum()
        expected = ref.features[task].detach()
        torch.testing.assert_close(features.detach().float()[same], expected[same],
                                   rtol=0.05, atol=0.02 * float(expected.abs().max()))
