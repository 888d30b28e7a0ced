"""MeritModel: SSL features → integration → expert pool → SE and/or SER heads.

One forward gives the training loss ``balance + Σ_task <task>_loss_weight · loss``
(``se_loss_weight·L1 + ser_loss_weight·CE``; each task's loss is declared in
``merit.tasks.task_specs``) and the statistics ESPnet's reporter logs: ``loss``, ``loss_ser``,
``loss_se``, ``loss_balance``, ``acc`` and, per task, the fraction of frames sent
to each expert (``ser_expert0`` …). In eval mode it also accumulates the SER
confusion matrix, from which the trainer computes macro-F1 over the whole
validation set.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from merit.models.abs_frontend import AbsFrontend
from merit.models.abs_integration import AbsIntegration
from merit.models.abs_moe import AbsMoE
from merit.models.pad_mask import valid_mask
from merit.tasks.task_specs import TASKS


class MeritModel(AbsESPnetModel):
    """Args:
        frontend, integration, moe: the shared part.
        heads: ``{task name: head}`` for the tasks of ``merit.tasks.task_specs.TASKS``
            the model learns (at least one); each head is also the attribute
            ``<name>_head`` (``se_head``, ``ser_head``: None when absent), which names
            its parameters in checkpoints.
        loss_weights: ``{task name: weight}`` of each task's loss (default 1).
        num_classes, class_weights: the emotion classes and their CE weights.
    """

    def __init__(self, frontend: AbsFrontend, integration: AbsIntegration, moe: AbsMoE,
                 heads: Dict[str, torch.nn.Module], loss_weights: Optional[Dict[str, float]] = None,
                 num_classes: int = 4, class_weights: Optional[Sequence[float]] = None):
        super().__init__()
        unknown = set(heads) - {task.name for task in TASKS}
        if not heads or unknown:
            raise ValueError(f"MeritModel needs heads of the tasks {[t.name for t in TASKS]}, "
                             f"got {sorted(heads)}")
        self.frontend, self.integration, self.moe = frontend, integration, moe
        self.tasks = [task for task in TASKS if task.name in heads]
        for task in TASKS:
            setattr(self, f"{task.name}_head", heads.get(task.name))
        self.loss_weights = {task.name: float((loss_weights or {}).get(task.name, 1.0))
                             for task in self.tasks}
        self.num_classes = num_classes
        weights = torch.ones(num_classes) if class_weights is None else torch.tensor(
            [float(w) for w in class_weights])
        if weights.numel() != num_classes:
            raise ValueError(f"{weights.numel()} class weights for {num_classes} classes")
        self.register_buffer("class_weights", weights, persistent=False)
        self.reset_confusion()

    def head(self, task) -> torch.nn.Module:
        """The head of a task of ``self.tasks``."""
        return getattr(self, f"{task.name}_head")

    def encode(self, speech, speech_lengths, feats=None, feats_lengths=None):
        """Task features: ({task: (B, T, F)}, frame lengths (B,), MoE output)."""
        hidden, lengths = self.frontend(speech, speech_lengths, feats, feats_lengths)
        return self.encode_hidden(hidden, lengths.to(hidden.device))

    def encode_hidden(self, hidden, lengths):
        """``encode`` after the frontend, from its padded hidden states (B, T, L, D) with
        ``lengths`` (B,) valid frames."""
        x = self.integration(hidden, lengths)
        moe_out = self.moe(x, valid_mask(lengths, x.shape[1]))
        return moe_out.features, lengths, moe_out

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                feats: Optional[torch.Tensor] = None,
                feats_lengths: Optional[torch.Tensor] = None,
                **targets) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """speech (B, S) noisy, feats (B, T, L, D) dumped hidden states (when the
        frontend reads dumps), and each task's target with its lengths (``speech_ref1``
        (B, S) clean, ``emotion`` (B, 1) class index)."""
        features, lengths, moe_out = self.encode(speech, speech_lengths, feats, feats_lengths)
        batch = dict(targets, speech=speech, speech_lengths=speech_lengths)
        loss = moe_out.balance_loss
        stats = {"loss_balance": moe_out.balance_loss.detach()}
        for task in self.tasks:
            part = task.loss(self.head(task), features[task.name], lengths, batch,
                             self.class_weights)
            loss = loss + self.loss_weights[task.name] * part.loss
            stats.update(part.stats)
            if part.confusion is not None:
                self.confusion += part.confusion
        for task, fractions in moe_out.expert_fraction.items():
            for i, value in enumerate(fractions):
                stats[f"{task}_expert{i}"] = value.detach()
        stats["loss"] = loss.detach()
        # ESPnet's trainer averages the statistics over processes (DDP) or GPUs
        # (DataParallel) with recursive_average, which wants the weight and every
        # statistic as (1,) tensors on the loss's device; force_gatherable makes them so.
        loss, stats, weight = force_gatherable((loss, stats, speech.shape[0]), loss.device)
        return loss, stats, weight

    def collect_feats(self, speech, speech_lengths, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    def reset_confusion(self) -> None:
        """Start a new (C, C) SER confusion matrix (rows: reference), filled in eval mode."""
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
