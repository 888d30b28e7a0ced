"""The shared expert pool: routing, numerics against a per-frame loop, gradients,
load-balancing loss, real sparsity of the expert compute, and the two baselines."""
import math

import pytest
import torch

from merit.models.abs_moe import AbsMoE, MoEOutput
from merit.models.moe import DenseMoE, ExpertMLP, SharedMLP, SparseMoE, switch_balance_loss

TASKS = ("se", "ser")
F_IN, HIDDEN, F_OUT = 6, 8, 5


def make_batch(dtype=torch.float32, seed=0):
    """Two utterances of 3 and 5 valid frames, padded to T = 5 (padding is garbage)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, F_IN, generator=gen, dtype=dtype)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    return x, mask


def make_layer(cls=SparseMoE, seed=0, dtype=torch.float32, **kwargs):
    torch.manual_seed(seed)
    args = dict(tasks=TASKS, num_experts=4, hidden_size=HIDDEN, output_size=F_OUT)
    args.update(kwargs)
    return cls(F_IN, **args).to(dtype)


def reference(layer, x, mask, dense=False):
    """Slow per-frame loop: gate softmax, top-k (or all experts), sum of p * expert(x)."""
    out = {t: torch.zeros(*x.shape[:2], layer.output_size, dtype=x.dtype) for t in layer.tasks}
    for b in range(x.size(0)):
        for t in range(x.size(1)):
            if not mask[b, t]:
                continue
            frame = x[b, t]
            for task in layer.tasks:
                probs = torch.softmax(layer.gates[task](frame), dim=-1)
                if dense:
                    weights, experts = probs, range(layer.num_experts)
                else:
                    weights, experts = probs.topk(layer.top_k)
                    if layer.normalize_topk:
                        weights = weights / weights.sum()
                    experts = experts.tolist()
                for w, e in zip(weights, experts):
                    out[task][b, t] += w * layer.experts[e](frame)
    return out


def count_expert_frames(layer):
    """Attach forward hooks that count the rows each expert processes."""
    counts = [0] * len(layer.experts)

    def hook(index):
        def count(module, inputs, output):
            counts[index] += inputs[0].shape[0]
        return count

    handles = [expert.register_forward_hook(hook(i)) for i, expert in enumerate(layer.experts)]
    return counts, handles


# --- interface -------------------------------------------------------------------------

def test_abstract_interface():
    with pytest.raises(TypeError):
        AbsMoE(F_IN)
    for cls in (SparseMoE, DenseMoE, SharedMLP):
        layer = cls(F_IN, tasks=TASKS, hidden_size=HIDDEN, output_size=F_OUT)  # AbsMoE's arguments
        assert isinstance(layer, AbsMoE)
        assert layer.output_size == F_OUT
        assert isinstance(layer(*make_batch()), MoEOutput)


def test_bad_arguments():
    with pytest.raises(ValueError):
        SparseMoE(F_IN, num_experts=2, top_k=3)
    with pytest.raises(ValueError):
        SparseMoE(F_IN, tasks=("se", "se"))
    with pytest.raises(ValueError):
        SparseMoE(F_IN, tasks=())
    layer = make_layer()
    x, mask = make_batch()
    with pytest.raises(ValueError):
        layer(x[..., :-1], mask)
    with pytest.raises(ValueError):
        layer(x, mask[:, :-1])


# --- sparse routing and numerics -------------------------------------------------------

@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_each_valid_frame_goes_to_exactly_k_experts(top_k):
    layer = make_layer(top_k=top_k)
    x, mask = make_batch()
    out = layer(x, mask)
    for task in TASKS:
        index = out.expert_index[task]
        assert index.shape == (2, 5, top_k) and index.dtype == torch.long
        valid = index[mask]
        assert (valid >= 0).all() and (valid < layer.num_experts).all()
        assert all(len(set(row.tolist())) == top_k for row in valid)  # k distinct experts
        assert (index[~mask] == -1).all()
        # the routing is the gate's top-k
        expected = out.gate_probs[task][mask].topk(top_k).indices
        assert torch.equal(valid, expected)
        assert torch.allclose(out.gate_probs[task][mask].sum(-1), torch.ones(8))
        assert (out.gate_probs[task][~mask] == 0).all()


@pytest.mark.parametrize("top_k", [1, 2])
@pytest.mark.parametrize("normalize_topk", [False, True])
def test_sparse_matches_reference_loop(top_k, normalize_topk):
    layer = make_layer(top_k=top_k, normalize_topk=normalize_topk)
    x, mask = make_batch()
    out = layer(x, mask)
    with torch.no_grad():
        ref = reference(layer, x, mask)
    for task in TASKS:
        assert out.features[task].shape == (2, 5, F_OUT)
        torch.testing.assert_close(out.features[task], ref[task], atol=1e-5, rtol=1e-5)
        assert (out.features[task][~mask] == 0).all()


def test_no_renormalisation_by_default():
    """k = 1: the weight is the raw probability (< 1), not 1."""
    layer = make_layer(top_k=1)
    x, mask = make_batch()
    out = layer(x, mask)
    probs = out.gate_probs["se"][mask]
    top1 = probs.max(-1).values
    assert (top1 < 1).all()
    chosen = out.expert_index["se"][mask][:, 0]
    with torch.no_grad():
        raw = torch.stack([layer.experts[e](f) for e, f in zip(chosen.tolist(), x[mask])])
    torch.testing.assert_close(out.features["se"][mask], top1[:, None] * raw)


def test_float64_and_no_mask():
    layer = make_layer(top_k=2, dtype=torch.float64)
    x, mask = make_batch(dtype=torch.float64)
    out = layer(x, mask)
    ref = reference(layer, x, mask)
    for task in TASKS:
        assert out.features[task].dtype == torch.float64
        torch.testing.assert_close(out.features[task], ref[task], atol=1e-10, rtol=1e-10)
    assert out.balance_loss.dtype == torch.float64
    full = layer(x)  # mask None: every frame is valid
    ref_full = reference(layer, x, torch.ones(2, 5, dtype=torch.bool))
    torch.testing.assert_close(full.features["ser"], ref_full["ser"], atol=1e-10, rtol=1e-10)


def test_all_padded_batch():
    layer = make_layer()
    x, _ = make_batch()
    out = layer(x, torch.zeros(2, 5, dtype=torch.bool))
    assert all((f == 0).all() for f in out.features.values())
    assert out.balance_loss.item() == 0
    assert all((fr == 0).all() for fr in out.expert_fraction.values())
    sum(f.sum() for f in out.features.values()).backward()  # graph still connected


# --- gradients -------------------------------------------------------------------------

def test_gradients_reach_gates_and_used_experts_only():
    layer = make_layer(top_k=1)
    with torch.no_grad():  # no gate ever picks expert 3
        for gate in layer.gates.values():
            gate.bias[3] = -1e4
    x, mask = make_batch()
    out = layer(x, mask)
    (out.features["se"].sum() + out.features["ser"].sum()).backward()
    for gate in layer.gates.values():
        assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0
    used = set(torch.cat([out.expert_index[t][mask] for t in TASKS]).flatten().tolist())
    assert 3 not in used and used  # the case was built
    for e, expert in enumerate(layer.experts):
        grads = [p.grad for p in expert.parameters()]
        if e in used:
            assert all(g is not None and g.abs().sum() > 0 for g in grads), e
        else:
            assert all(g is None or (g == 0).all() for g in grads), e


def test_balance_loss_gradient_reaches_gate():
    layer = make_layer(top_k=1)
    out = layer(*make_batch())
    out.balance_loss.backward()
    assert all(g.weight.grad.abs().sum() > 0 for g in layer.gates.values())


# --- load-balancing loss ---------------------------------------------------------------

def test_switch_balance_loss_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1],
                          [0.1, 0.6, 0.3],
                          [0.5, 0.4, 0.1],
                          [0.2, 0.2, 0.6]])  # last frame is padding
    mask = torch.tensor([True, True, True, False])
    top = probs.argmax(-1, keepdim=True)
    f = [2 / 3, 1 / 3, 0]
    p = [(0.7 + 0.1 + 0.5) / 3, (0.2 + 0.6 + 0.4) / 3, (0.1 + 0.3 + 0.1) / 3]
    expected = 0.01 * 3 * sum(a * b for a, b in zip(f, p))
    loss = switch_balance_loss(probs, top, mask, 3, weight=0.01)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # k = 2: fractions over (frame, slot) assignments
    top2 = probs[:3].topk(2).indices  # [0,1], [1,2], [0,1]
    f2 = [2 / 6, 3 / 6, 1 / 6]
    expected2 = 3 * sum(a * b for a, b in zip(f2, p))
    loss2 = switch_balance_loss(probs[:3], top2, None, 3)
    assert loss2.item() == pytest.approx(expected2, rel=1e-6)


def test_layer_balance_loss_with_hand_set_gates():
    """Input size 2, 2 experts, gate = identity: logits are the input itself."""
    alpha = 0.05
    layer = SparseMoE(2, tasks=("se",), num_experts=2, hidden_size=3, output_size=2,
                      balance_weight=alpha)
    with torch.no_grad():
        layer.gates["se"].weight.copy_(torch.eye(2))
        layer.gates["se"].bias.zero_()
    # perfectly uniform: frames (a, 0) and (0, a) -> probs (p, 1-p) and (1-p, p)
    x = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    out = layer(x, mask)
    assert out.balance_loss.item() == pytest.approx(alpha, rel=1e-6)
    torch.testing.assert_close(out.expert_fraction["se"], torch.tensor([0.5, 0.5]))
    # skewed: both frames prefer expert 0
    x = torch.tensor([[[1.0, 0.0], [math.log(3.0), 0.0]]])
    out = layer(x, torch.ones(1, 2, dtype=torch.bool))
    p0 = (torch.sigmoid(torch.tensor(1.0)).item() + 0.75) / 2
    assert out.balance_loss.item() == pytest.approx(alpha * 2 * (1.0 * p0 + 0.0), rel=1e-6)
    # two tasks with the same gate: the total is the sum over tasks
    two = SparseMoE(2, tasks=TASKS, num_experts=2, hidden_size=3, output_size=2,
                    balance_weight=alpha)
    with torch.no_grad():
        for gate in two.gates.values():
            gate.weight.copy_(torch.eye(2))
            gate.bias.zero_()
    out = two(torch.tensor([[[2.0, 0.0], [0.0, 2.0]]]), None)
    assert out.balance_loss.item() == pytest.approx(2 * alpha, rel=1e-6)


# --- the compute is really sparse ------------------------------------------------------

def test_expert_compute_is_sparse_and_deduplicated():
    x, mask = make_batch()
    valid = int(mask.sum())
    layer = make_layer(top_k=1)
    counts, handles = count_expert_frames(layer)
    layer(x, mask)
    assert sum(counts) <= 2 * valid
    for h in handles:
        h.remove()

    # identical gates: each frame is computed once, shared by both tasks
    with torch.no_grad():
        layer.gates["ser"].load_state_dict(layer.gates["se"].state_dict())
    counts, handles = count_expert_frames(layer)
    out = layer(x, mask)
    assert sum(counts) == valid
    torch.testing.assert_close(out.features["se"], out.features["ser"])
    for h in handles:
        h.remove()

    layer2 = make_layer(top_k=2)
    counts, _ = count_expert_frames(layer2)
    layer2(x, mask)
    assert 2 * valid <= sum(counts) <= 4 * valid

    dense = make_layer(DenseMoE)
    counts, _ = count_expert_frames(dense)
    dense(x, mask)
    assert counts == [valid] * dense.num_experts


# --- baselines -------------------------------------------------------------------------

def test_dense_moe():
    with pytest.raises(TypeError, match="top_k"):  # a setting it would ignore is refused
        make_layer(DenseMoE, top_k=2)
    layer = make_layer(DenseMoE)
    x, mask = make_batch()
    out = layer(x, mask)
    with torch.no_grad():
        ref = reference(layer, x, mask, dense=True)
    for task in TASKS:
        assert out.features[task].shape == (2, 5, F_OUT)
        torch.testing.assert_close(out.features[task], ref[task], atol=1e-5, rtol=1e-5)
        assert (out.features[task][~mask] == 0).all()
        assert out.gate_probs[task].shape == (2, 5, 4)
        assert out.expert_fraction[task].sum().item() == pytest.approx(1.0)
    assert out.expert_index is None
    probs = out.gate_probs["se"]
    expected = switch_balance_loss(probs, probs.argmax(-1, keepdim=True), mask, 4, 0.01)
    expected = expected + switch_balance_loss(
        out.gate_probs["ser"], out.gate_probs["ser"].argmax(-1, keepdim=True), mask, 4, 0.01)
    torch.testing.assert_close(out.balance_loss, expected)


def test_shared_mlp():
    for ignored in ({"num_experts": 5}, {"top_k": 2}, {"balance_weight": 0.3}):
        with pytest.raises(TypeError):
            SharedMLP(F_IN, tasks=TASKS, **ignored)
    torch.manual_seed(0)
    layer = SharedMLP(F_IN, tasks=TASKS, hidden_size=HIDDEN, output_size=F_OUT)
    assert len(layer.experts) == 1 and not hasattr(layer, "gates")
    x, mask = make_batch(dtype=torch.float64)
    layer = layer.double()
    out = layer(x, mask)
    assert out.features["se"].shape == (2, 5, F_OUT)
    assert out.features["se"].dtype == torch.float64
    torch.testing.assert_close(out.features["se"], out.features["ser"])
    assert (out.features["se"][~mask] == 0).all()
    torch.testing.assert_close(out.features["se"][mask], layer.experts[0](x[mask]))
    assert out.balance_loss.item() == 0
    assert out.gate_probs is None and out.expert_index is None
    for task in TASKS:
        torch.testing.assert_close(out.expert_fraction[task], torch.ones(1, dtype=torch.float64))


def test_expert_mlp_shape():
    mlp = ExpertMLP(F_IN, HIDDEN, F_OUT)
    assert mlp(torch.randn(0, F_IN)).shape == (0, F_OUT)
    assert mlp(torch.randn(3, 4, F_IN)).shape == (3, 4, F_OUT)
