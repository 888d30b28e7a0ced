"""The shared expert pool of Sparse MERIT and its two baselines.

One idea, three variants, all with the ``AbsMoE`` constructor and output contract:

* ``SparseMoE``: E expert MLPs shared by all tasks; each task has its own linear gate
  that picks, per frame, its top-k experts. A task's feature for a frame is
  ``sum_{e in topk} p_task(e | frame) * expert_e(frame)`` with the raw softmax
  probability p (not renormalised over the top-k unless ``normalize_topk=True``:
  with k = 1 renormalising makes every weight 1 and the gate gets no gradient).
  Dispatch is really sparse: each expert runs once on exactly the frames that any
  task routed to it (the union over tasks, so a frame that two tasks send to the same
  expert is computed once and reused), then the results are gathered back per task.
  Expert compute therefore grows with k and the number of tasks, not with E.
* ``DenseMoE``: every expert on every valid frame, weighted by the full softmax.
* ``SharedMLP``: one MLP, no gate, the same output for every task ("naive MTL").

Load balancing (Switch Transformer), per gate: ``alpha * E * sum_i f_i * P_i`` with f_i
the fraction of routed (frame, slot) assignments that went to expert i (for k = 1: the
fraction of valid frames whose top-1 is i) and P_i the mean gate probability of expert i
over valid frames; ``MoEOutput.balance_loss`` is the sum over tasks.

Padded frames (mask False) are never routed, never reach an expert, and give exactly 0.
Every expert is called on every forward, with zero rows if no frame was routed to it,
so all parameters stay in the autograd graph (distributed data parallel needs no
``find_unused_parameters``); such an expert gets an all-zero gradient.

Shapes: B utterances, T frames, F = input_size, O = output_size, E = num_experts,
N = number of valid frames, k = top_k.
"""
from typing import Dict, Optional, Tuple

import torch

from merit.models.abs_moe import AbsMoE, MoEOutput, check_positive_int


class ExpertMLP(torch.nn.Module):
    """One expert: Linear(input_size -> hidden_size) -> ReLU -> Linear(hidden_size -> output_size).

    Maps (..., input_size) to (..., output_size); works on zero rows.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.fc1 = torch.nn.Linear(input_size, hidden_size)
        self.fc2 = torch.nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _expert_counts(index: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Long expert ids of any shape -> (E,) how often each id occurs.

    A comparison with arange rather than one_hot/bincount, which check the id range
    (or size their output) on the host and so stall a GPU stream.
    """
    ids = torch.arange(num_experts, device=index.device)
    return (index.reshape(-1, 1) == ids).sum(0)


def switch_balance_loss(
    probs: torch.Tensor,
    top_idx: torch.Tensor,
    mask: Optional[torch.Tensor],
    num_experts: int,
    weight: float = 1.0,
) -> torch.Tensor:
    """Switch-Transformer load-balancing loss of one gate: ``weight * E * sum_i f_i * P_i``.

    Args:
        probs: (..., E) gate softmax per frame.
        top_idx: (..., k) long, the experts each frame was routed to.
        mask: (...) bool, True on frames that count; None means all frames count.
        num_experts: E.
        weight: alpha.

    f_i is the fraction of (frame, slot) assignments of the counted frames that went to
    expert i (sums to 1; for k = 1 the fraction of frames whose top-1 is i), P_i the mean
    of ``probs[..., i]`` over the counted frames. Gradient flows through P only. Perfectly
    uniform routing gives ``weight``; with no counted frame the loss is 0.

    Returns:
        () scalar tensor, dtype of ``probs``.
    """
    probs = probs.reshape(-1, num_experts)
    top_idx = top_idx.reshape(-1, top_idx.size(-1))
    if mask is not None:
        keep = mask.reshape(-1).to(torch.bool)
        probs, top_idx = probs[keep], top_idx[keep]
    counts = _expert_counts(top_idx, num_experts).to(probs.dtype)  # (E,)
    fraction = counts / max(top_idx.numel(), 1)
    mean_prob = probs.sum(0) / max(probs.size(0), 1)
    return weight * num_experts * (fraction * mean_prob).sum()


def _top1_fraction(top1: torch.Tensor, num_experts: int, dtype: torch.dtype) -> torch.Tensor:
    """(N,) long expert ids -> (E,) detached fraction of the N frames per expert."""
    counts = _expert_counts(top1.detach(), num_experts).to(dtype)
    return counts / max(top1.numel(), 1)


class _ExpertPool(AbsMoE):
    """Shared machinery: the expert MLPs, the per-task gates, valid-frame bookkeeping.

    Args: the ``AbsMoE`` ones, plus
        num_experts: number E of expert MLPs in the shared pool.
        balance_weight: weight (alpha) of the load-balancing loss.
    """

    def __init__(self, input_size: int, *, num_experts: int = 3, balance_weight: float = 0.01,
                 gated: bool = True, **kwargs):
        super().__init__(input_size, **kwargs)
        if balance_weight < 0:
            raise ValueError(f"balance_weight must be >= 0, got {balance_weight}")
        self.num_experts = check_positive_int("num_experts", num_experts)
        self.balance_weight = float(balance_weight)
        self.experts = torch.nn.ModuleList(
            ExpertMLP(self.input_size, self.hidden_size, self.output_size)
            for _ in range(self.num_experts)
        )
        if gated:
            self.gates = torch.nn.ModuleDict(
                {task: torch.nn.Linear(self.input_size, self.num_experts) for task in self.tasks}
            )

    def _valid_frames(
        self, x: torch.Tensor, mask: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x (B, T, F), mask (B, T) -> (xv (N, F) valid frames, their flat indices (N,)).

        The indices are None when every frame is valid (then xv is a view of x).
        """
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected x of shape (B, T, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        batch, frames = x.shape[:2]
        x_flat = x.reshape(batch * frames, self.input_size)
        if mask is None:
            return x_flat, None
        if tuple(mask.shape) != (batch, frames):
            raise ValueError(f"expected mask of shape {(batch, frames)}, got {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            mask = mask != 0
        valid_idx = mask.reshape(-1).nonzero().squeeze(1)
        if valid_idx.numel() == batch * frames:
            return x_flat, None
        return x_flat.index_select(0, valid_idx), valid_idx

    @staticmethod
    def _to_full(values: torch.Tensor, valid_idx: Optional[torch.Tensor], batch: int,
                 frames: int, fill: float = 0) -> torch.Tensor:
        """values (N, C) of the valid frames -> (B, T, C), ``fill`` on padded frames."""
        if valid_idx is None:
            return values.reshape(batch, frames, values.size(-1))
        full = values.new_full((batch * frames, values.size(-1)), fill)
        return full.index_copy(0, valid_idx, values).view(batch, frames, values.size(-1))

    def _gate(self, task: str, xv: torch.Tensor) -> torch.Tensor:
        """xv (N, F) -> (N, E) softmax of the task's gate, in at least float32.

        The logits and the softmax stay in float32 (float64 stays float64) under
        autocast too: bf16 keeps ~3 significant digits, so experts whose logits are
        within ~0.4 % tie or swap, and a frame's top-k would depend on the precision.
        """
        gate = self.gates[task]
        dtype = torch.promote_types(xv.dtype, torch.float32)
        with torch.autocast(device_type=xv.device.type, enabled=False):
            logits = torch.nn.functional.linear(xv.to(dtype), gate.weight.to(dtype),
                                                gate.bias.to(dtype))
            return torch.softmax(logits, dim=-1)


class SparseMoE(_ExpertPool):
    """Sparse mixture of experts with one top-k gate per task (Sparse MERIT).

    Constructor: the ``_ExpertPool`` arguments (``AbsMoE``'s, ``num_experts``,
    ``balance_weight``), plus

        top_k: experts each frame is routed to, per task (at most ``num_experts``).
        normalize_topk: if True, divide the selected top-k probabilities by their sum
            (weights sum to 1 per frame). Default False: the raw softmax probabilities
            are used, which keeps a gradient to the gate even with k = 1 (with k = 1 and
            renormalisation every weight is exactly 1 and the gate does not learn).

    ``forward(x (B, T, F), mask (B, T) bool) -> MoEOutput`` with ``features[task]``
    (B, T, O), ``gate_probs[task]`` (B, T, E), ``expert_index[task]`` (B, T, k) long
    (-1 on padded frames), ``expert_fraction[task]`` (E,), ``balance_loss`` ().
    """

    def __init__(self, input_size: int, *, top_k: int = 1, normalize_topk: bool = False,
                 **kwargs):
        super().__init__(input_size, **kwargs)
        self.top_k = check_positive_int("top_k", top_k)
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({top_k}) must not exceed num_experts ({self.num_experts})")
        self.normalize_topk = bool(normalize_topk)

    def route(self, xv: torch.Tensor) -> Dict[str, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """xv (N, F) -> task -> (probs (N, E), top_weight (N, k), top_idx (N, k) long).

        ``top_weight`` is the weight given to each selected expert (the raw probability,
        or renormalised over the top-k when ``normalize_topk``).
        """
        routes = {}
        for task in self.tasks:
            probs = self._gate(task, xv)
            top_prob, top_idx = probs.topk(self.top_k, dim=-1)
            if self.normalize_topk:
                top_prob = top_prob / top_prob.sum(-1, keepdim=True)
            routes[task] = (probs, top_prob, top_idx)
        return routes

    def dispatch(
        self,
        xv: torch.Tensor,
        weights: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
        valid_idx: Optional[torch.Tensor],
        num_rows: int,
    ) -> Dict[str, torch.Tensor]:
        """Run each expert once on the union of the frames routed to it, mix per task.

        Args:
            xv: (N, F) valid frames.
            weights: task -> (top_weight (N, k), top_idx (N, k) long).
            valid_idx: (N,) row of each valid frame in the (B * T) output, or None when
                every frame is valid (then row n is frame n).
            num_rows: B * T.

        Returns:
            task -> (B * T, O): sum over the task's top-k of weight * expert output;
            0 on rows that are not valid frames.

        The routed (frame, expert) pairs of all tasks are deduplicated, so expert e runs
        on exactly the distinct frames any task sent to it (zero rows if none). Its output
        is added, per task, into the task's rows with that task's weight for the pair (0
        when only another task chose it): one ``index_add_`` per (task, expert), whose
        backward is a gather. Each call touches a row at most once, so the result does
        not depend on the order of atomic adds on GPUs.
        """
        num_frames = xv.size(0)
        routed = torch.zeros(num_frames, self.num_experts, dtype=torch.bool, device=xv.device)
        for _, top_idx in weights.values():
            routed.scatter_(1, top_idx, True)
        by_expert = routed.t()  # (E, N)
        pairs = by_expert.nonzero()  # (P, 2) (expert, frame), sorted by expert then frame
        pair_expert, pair_frame = pairs[:, 0].contiguous(), pairs[:, 1].contiguous()
        counts = by_expert.sum(1).tolist()
        outputs = [expert(xv.index_select(0, rows))
                   for expert, rows in zip(self.experts, pair_frame.split(counts))]
        dest = pair_frame if valid_idx is None else valid_idx.index_select(0, pair_frame)
        dests = dest.split(counts)
        mixed = {}
        for task, (top_weight, top_idx) in weights.items():
            dense_weight = top_weight.new_zeros(num_frames, self.num_experts)
            pair_weight = dense_weight.scatter(1, top_idx, top_weight)[pair_frame, pair_expert]
            # zero_() rather than new_zeros: on CPU a calloc'ed (lazily zeroed) buffer made
            # the index_add_ below page-fault its way through, measured ~50x slower
            out = outputs[0].new_empty(num_rows, self.output_size).zero_()
            for y, rows, w in zip(outputs, dests, pair_weight.split(counts)):
                out.index_add_(0, rows, y * w.unsqueeze(1).to(y.dtype))
            mixed[task] = out
        return mixed

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> MoEOutput:
        """x (B, T, F), mask (B, T) bool (None: all valid) -> MoEOutput."""
        batch, frames = x.shape[:2]
        xv, valid_idx = self._valid_frames(x, mask)
        routes = self.route(xv)
        mixed = self.dispatch(xv, {t: routes[t][1:] for t in self.tasks}, valid_idx,
                              batch * frames)

        features, gate_probs, expert_index, fraction = {}, {}, {}, {}
        balance = None
        for task in self.tasks:
            probs, _, top_idx = routes[task]
            features[task] = mixed[task].view(batch, frames, self.output_size)
            gate_probs[task] = self._to_full(probs, valid_idx, batch, frames)
            expert_index[task] = self._to_full(top_idx, valid_idx, batch, frames, fill=-1)
            fraction[task] = _top1_fraction(top_idx[:, 0], self.num_experts, probs.dtype)
            loss = switch_balance_loss(probs, top_idx, None, self.num_experts, self.balance_weight)
            balance = loss if balance is None else balance + loss
        return MoEOutput(features=features, balance_loss=balance, expert_fraction=fraction,
                         gate_probs=gate_probs, expert_index=expert_index)


class DenseMoE(_ExpertPool):
    """Dense mixture of experts: every expert on every valid frame, softmax-weighted per task.

    Constructor: the ``_ExpertPool`` arguments (no ``top_k``: every expert runs on
    every frame). The balance loss is computed as for ``SparseMoE``
    with f taken from each frame's argmax expert; whether to train with it is the
    caller's choice. ``expert_index`` is None (every frame uses every expert).
    """

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> MoEOutput:
        """x (B, T, F), mask (B, T) bool (None: all valid) -> MoEOutput."""
        batch, frames = x.shape[:2]
        xv, valid_idx = self._valid_frames(x, mask)
        probs = {task: self._gate(task, xv) for task in self.tasks}
        mixed: Dict[str, torch.Tensor] = {}
        for e, expert in enumerate(self.experts):
            y = expert(xv)  # (N, O)
            for task in self.tasks:
                term = probs[task][:, e:e + 1].to(y.dtype) * y
                mixed[task] = term if e == 0 else mixed[task] + term

        features, gate_probs, fraction = {}, {}, {}
        balance = None
        for task in self.tasks:
            top1 = probs[task].argmax(-1, keepdim=True)
            features[task] = self._to_full(mixed[task], valid_idx, batch, frames)
            gate_probs[task] = self._to_full(probs[task], valid_idx, batch, frames)
            fraction[task] = _top1_fraction(top1[:, 0], self.num_experts, probs[task].dtype)
            loss = switch_balance_loss(probs[task], top1, None, self.num_experts,
                                       self.balance_weight)
            balance = loss if balance is None else balance + loss
        return MoEOutput(features=features, balance_loss=balance, expert_fraction=fraction,
                         gate_probs=gate_probs, expert_index=None)


class SharedMLP(_ExpertPool):
    """Naive multi-task baseline: one MLP, no gate, the same output for every task.

    Constructor: the ``AbsMoE`` arguments only (one expert, no gate, no balance loss:
    ``num_experts``, ``top_k`` and ``balance_weight`` are refused). Every
    task's feature is the same tensor; ``balance_loss`` is 0; ``expert_fraction[task]``
    is ``[1.]`` (one expert takes every frame; ``[0.]`` when no frame is valid);
    ``gate_probs`` and ``expert_index`` are None.
    """

    def __init__(self, input_size: int, **kwargs):
        super().__init__(input_size, num_experts=1, balance_weight=0.0, gated=False, **kwargs)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> MoEOutput:
        """x (B, T, F), mask (B, T) bool (None: all valid) -> MoEOutput."""
        batch, frames = x.shape[:2]
        xv, valid_idx = self._valid_frames(x, mask)
        shared = self._to_full(self.experts[0](xv), valid_idx, batch, frames)
        everyone = xv.new_zeros(xv.size(0), dtype=torch.long)
        fraction = _top1_fraction(everyone, 1, shared.dtype)
        return MoEOutput(
            features={task: shared for task in self.tasks},
            balance_loss=shared.new_zeros(()),
            expert_fraction={task: fraction for task in self.tasks},
            gate_probs=None,
            expert_index=None,
        )
