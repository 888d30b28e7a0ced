"""Abstract interface of the shared expert layer (the "MoE" of Sparse MERIT).

Every variant (``SparseMoE``, ``DenseMoE``, ``SharedMLP`` in ``merit.models.moe``)
maps a batch of per-frame input features to one feature sequence per task:

    x (B, T, input_size), mask (B, T) bool  ->  MoEOutput
        features[task]         (B, T, output_size), exactly 0 on padded frames
        balance_loss           () scalar, already weighted, summed over tasks
        expert_fraction[task]  (E,) fraction of valid frames whose top-1 expert is i
        gate_probs[task]       (B, T, E) gate softmax (0 on padded frames; at least
                               float32, also under autocast), or None
        expert_index[task]     (B, T, k) experts each frame was routed to (-1 on
                               padded frames), or None for variants that do not route

All variants take the ``AbsMoE`` arguments (see ``AbsMoE.__init__``), so that a
config can switch between them by name, plus the ones each uses.
"""
import abc
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch


@dataclass
class MoEOutput:
    """What an expert layer returns for one batch (B utterances, T frames).

    Attributes:
        features: task -> Tensor (B, T, output_size); padded frames are exactly 0.
        balance_loss: scalar Tensor, the load-balancing loss summed over the task
            gates and already multiplied by ``balance_weight`` (0 when there is no gate).
        expert_fraction: task -> Tensor (E,), detached: the fraction of valid frames
            whose top-1 expert is each expert (all zeros when no frame is valid).
        gate_probs: task -> Tensor (B, T, E), the gate's softmax per frame (0 on padded
            frames), in at least float32 even under autocast, so that routing does not
            depend on the precision; None for variants without a gate.
        expert_index: task -> LongTensor (B, T, k), the experts each frame was routed to
            (-1 on padded frames); None for variants that do not route sparsely.
    """

    features: Dict[str, torch.Tensor]
    balance_loss: torch.Tensor
    expert_fraction: Dict[str, torch.Tensor]
    gate_probs: Optional[Dict[str, torch.Tensor]] = None
    expert_index: Optional[Dict[str, torch.Tensor]] = None


def check_positive_int(name: str, value) -> int:
    """``value`` as an int, or ValueError naming ``name`` when it is not a positive integer."""
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class AbsMoE(torch.nn.Module, abc.ABC):
    """Shared expert layer with one output per task.

    Args (every variant takes these, by keyword after ``input_size``; each variant adds
    only the arguments it uses, e.g. ``num_experts`` and ``balance_weight`` for the
    gated pools and ``top_k`` for the sparse one, so a setting a variant would ignore
    is refused rather than silently dropped):
        input_size: size F of the per-frame input feature (paper: L * D = 25 * 1024).
        tasks: task names, one output per task, e.g. ("se", "ser").
        hidden_size: hidden size of each expert MLP.
        output_size: size of each task's output feature.
    """

    def __init__(
        self,
        input_size: int,
        *,
        tasks: Sequence[str] = ("se", "ser"),
        hidden_size: int = 4096,
        output_size: int = 1024,
    ):
        super().__init__()
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("tasks must name at least one task")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task names must be unique, got {tasks}")
        for task in tasks:
            if not isinstance(task, str) or not task or "." in task:
                raise ValueError(f"task names must be non-empty strings without '.', got {task!r}")
        self.input_size = check_positive_int("input_size", input_size)
        self.tasks = tasks
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self._output_size = check_positive_int("output_size", output_size)

    @property
    def output_size(self) -> int:
        """Size of each task's output feature."""
        return self._output_size

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> MoEOutput:
        """Route every valid frame through the experts.

        Args:
            x: (B, T, input_size) per-frame input features.
            mask: (B, T) bool, True on valid frames; None means every frame is valid.

        Returns:
            MoEOutput (see its docstring).
        """
