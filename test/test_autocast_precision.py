"""Mixed precision: the SER pooling statistics and the MoE gates are computed in (at
least) float32 under autocast, so bf16 training (ESPnet's ``--use_amp``) gets the same
pooled statistics and the same routing as float32.

CPU autocast to bfloat16 stands in for the GPU's: the same ops run in bf16 there.
"""
import pytest
import torch

from merit.models.moe import DenseMoE, SparseMoE
from merit.models.ser_head import AttentiveStatsSERHead

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def features(mean, std, seed=0, frames=200, size=16):
    """Two utterances (B, T, F) ~ N(mean, std²) of ``frames`` and 3/4 of that valid frames."""
    gen = torch.Generator().manual_seed(seed)
    x = mean + std * torch.randn(2, frames, size, generator=gen)
    return x, torch.tensor([frames, 3 * frames // 4])


def small_head(size=16):
    torch.manual_seed(0)
    return AttentiveStatsSERHead(size, attention_size=8, hidden_size=16).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pooled_std_under_bf16_autocast(dtype):
    """Features with mean 5 and std 0.05 (float32, or already bf16 as the MoE gives
    them under autocast): the pooled mean and std are the float32 pooling's of the same
    values. sqrt(E[x²] − mean²) in bf16 was off by up to 650 %."""
    head = small_head()
    x, lengths = features(5.0, 0.05)
    x = x.to(dtype)
    with torch.no_grad():
        expected, expected_weights = head.pool(x.float(), lengths)
        with torch.autocast(**BF16):
            pooled, weights = head.pool(x, lengths)
    assert pooled.dtype == torch.float32 and weights.dtype == torch.float32
    size = x.shape[-1]
    torch.testing.assert_close(weights, expected_weights, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(pooled[:, :size], expected[:, :size], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pooled[:, size:], expected[:, size:], rtol=1e-4, atol=1e-6)


def test_pooled_std_is_stable_for_a_large_mean():
    """float32, no autocast: mean 100, std 0.01. E[x²] − mean² loses every digit of the
    variance (1e-4 next to 1e4); the mean of squared deviations keeps them."""
    head = small_head()
    x, lengths = features(100.0, 0.01)
    with torch.no_grad():
        pooled, _ = head.pool(x, lengths)
        weights = head.attention_weights(x, lengths).double()
        xd = x.double()
        mean = torch.einsum("bt,btf->bf", weights, xd)
        var = torch.einsum("bt,btf->bf", weights, (xd - mean[:, None]) ** 2)
    size = x.shape[-1]
    assert var.min() > 1e-5  # far above the 1e-6 floor: the floor plays no part
    torch.testing.assert_close(pooled[:, size:].double(), var.sqrt(), rtol=1e-3, atol=0.0)


def near_tie_layer(cls, **kwargs):
    """A layer whose gates score expert 1 a hair (0.1 %) above expert 0 on every frame
    (expert 2 far below): bf16 logits, 3 significant digits, cannot tell them apart."""
    torch.manual_seed(0)
    layer = cls(8, tasks=("se", "ser"), num_experts=3, hidden_size=8, output_size=4, **kwargs)
    with torch.no_grad():
        for gate in layer.gates.values():
            base = torch.rand(8) + 0.5
            gate.weight.copy_(torch.stack([base, 1.001 * base, -base]))
            gate.bias.zero_()
    return layer


@pytest.mark.parametrize("cls, kwargs", [(SparseMoE, {"top_k": 1}), (SparseMoE, {"top_k": 2}),
                                         (DenseMoE, {})])
def test_gate_in_float32_under_bf16_autocast(cls, kwargs):
    layer = near_tie_layer(cls, **kwargs)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 50, 8, generator=gen) + 0.5  # positive: expert 1 wins in float32
    mask = torch.ones(2, 50, dtype=torch.bool)
    mask[0, 40:] = False
    with torch.no_grad():
        expected = layer(x, mask)
        with torch.autocast(**BF16):
            out = layer(x, mask)
    for task in layer.tasks:
        assert out.gate_probs[task].dtype == torch.float32
        torch.testing.assert_close(out.gate_probs[task], expected.gate_probs[task],
                                   rtol=1e-5, atol=1e-7)
        top1 = out.gate_probs[task].argmax(-1)[mask]
        assert (top1 == expected.gate_probs[task].argmax(-1)[mask]).all()
        assert (top1 == 1).all()
        if out.expert_index is not None:
            assert torch.equal(out.expert_index[task], expected.expert_index[task])
        torch.testing.assert_close(out.expert_fraction[task], expected.expert_fraction[task])
    assert out.balance_loss.dtype == torch.float32
    torch.testing.assert_close(out.balance_loss, expected.balance_loss, rtol=1e-5, atol=1e-7)
