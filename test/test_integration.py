"""Layer integration: ConcatIntegration (the paper's) and WeightedSumIntegration."""
import pytest
import torch

from merit.models.abs_integration import AbsIntegration
from merit.models.integration import ConcatIntegration, WeightedSumIntegration

B, T, L, D = 3, 7, 4, 6


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, L, D, generator=gen) * 3 + 1
    lengths = torch.tensor([7, 5, 2])
    return hidden, lengths


def _randomise_norms(module):
    with torch.no_grad():
        for norm in module.layer_norms:
            norm.weight.normal_()
            norm.bias.normal_()


def test_abstract_base_cannot_be_built():
    with pytest.raises(TypeError):
        AbsIntegration()
    assert issubclass(ConcatIntegration, AbsIntegration)
    assert issubclass(WeightedSumIntegration, AbsIntegration)


@pytest.mark.parametrize(
    "cls, kwargs, size",
    [
        (ConcatIntegration, {}, L * D),
        (WeightedSumIntegration, {}, D),
        (WeightedSumIntegration, {"layer_norm": False}, D),
    ],
)
def test_shapes_and_zero_padding(cls, kwargs, size):
    module = cls(num_layers=L, hidden_size=D, **kwargs)
    hidden, lengths = _inputs()
    out = module(hidden, lengths)
    assert module.output_size == size
    assert out.shape == (B, T, size)
    assert torch.all(out[1, 5:] == 0) and torch.all(out[2, 2:] == 0)
    assert torch.all(out[0].abs().sum(-1) > 0)


def test_wrong_shape_is_rejected():
    with pytest.raises(ValueError):
        ConcatIntegration(L, D)(torch.randn(B, T, L + 1, D), torch.full((B,), T))


def test_concat_equals_manual_layer_norm_and_cat():
    module = ConcatIntegration(L, D)
    _randomise_norms(module)
    hidden, lengths = _inputs()
    out = module(hidden, lengths)
    expected = torch.cat(
        [
            torch.nn.functional.layer_norm(
                hidden[:, :, i], (D,), module.layer_norms[i].weight, module.layer_norms[i].bias
            )
            for i in range(L)
        ],
        dim=-1,
    )
    torch.testing.assert_close(out[0], expected[0])
    torch.testing.assert_close(out[1, :5], expected[1, :5])
    # the layers have separate norms: layer i occupies features [i*D, (i+1)*D)
    assert len({id(n) for n in module.layer_norms}) == L


def test_weighted_sum_with_equal_weights_is_mean_of_normalised_layers():
    module = WeightedSumIntegration(L, D)
    _randomise_norms(module)
    torch.testing.assert_close(module.normalized_weights(), torch.full((L,), 1.0 / L))
    hidden, lengths = _inputs()
    out = module(hidden, torch.full((B,), T))
    normed = torch.stack([module.layer_norms[i](hidden[:, :, i]) for i in range(L)], dim=2)
    torch.testing.assert_close(out, normed.mean(dim=2))

    plain = WeightedSumIntegration(L, D, layer_norm=False)
    torch.testing.assert_close(plain(hidden, torch.full((B,), T)), hidden.mean(dim=2))


def test_weights_get_gradients():
    module = WeightedSumIntegration(L, D)
    hidden, lengths = _inputs()
    target = torch.randn(B, T, D)
    ((module(hidden, lengths) - target) ** 2).sum().backward()
    grad = module.layer_weights.grad
    assert grad is not None and torch.all(torch.isfinite(grad)) and grad.abs().sum() > 0


def test_concat_layer_norms_get_gradients():
    module = ConcatIntegration(L, D)
    hidden, lengths = _inputs()
    hidden.requires_grad_(True)
    module(hidden, lengths).pow(2).mul(torch.randn(B, T, L * D)).sum().backward()
    assert all(norm.weight.grad.abs().sum() > 0 for norm in module.layer_norms)
    assert hidden.grad.abs().sum() > 0
