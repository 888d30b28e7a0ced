"""MeritModel: SSL features → integration → expert pool → SE and/or SER heads.

One forward gives the training loss ``ser_loss_weight·CE + se_loss_weight·L1 +
balance`` and the statistics ESPnet's reporter logs: ``loss``, ``loss_ser``,
``loss_se``, ``loss_balance``, ``acc`` and, per task, the fraction of frames sent
to each expert (``ser_expert0`` …). In eval mode it also accumulates the SER
confusion matrix, from which the trainer computes macro-F1 over the whole
validation set.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from espnet2.train.abs_espnet_model import AbsESPnetModel

from merit.models.abs_frontend import AbsFrontend
from merit.models.abs_integration import AbsIntegration
from merit.models.abs_moe import AbsMoE
from merit.models.abs_se_head import AbsSEHead
from merit.models.abs_ser_head import AbsSERHead
from merit.models.pad_mask import valid_mask


class MeritModel(AbsESPnetModel):
    def __init__(self, frontend: AbsFrontend, integration: AbsIntegration, moe: AbsMoE,
                 se_head: Optional[AbsSEHead] = None, ser_head: Optional[AbsSERHead] = None,
                 num_classes: int = 4, class_weights: Optional[Sequence[float]] = None,
                 ser_loss_weight: float = 1.0, se_loss_weight: float = 1.0):
        super().__init__()
        if se_head is None and ser_head is None:
            raise ValueError("MeritModel needs at least one of se_head and ser_head")
        self.frontend, self.integration, self.moe = frontend, integration, moe
        self.se_head, self.ser_head = se_head, ser_head
        self.num_classes = num_classes
        self.ser_loss_weight, self.se_loss_weight = ser_loss_weight, se_loss_weight
        weights = torch.ones(num_classes) if class_weights is None else torch.tensor(
            [float(w) for w in class_weights])
        if weights.numel() != num_classes:
            raise ValueError(f"{weights.numel()} class weights for {num_classes} classes")
        self.register_buffer("class_weights", weights, persistent=False)
        self.reset_confusion()

    def encode(self, speech, speech_lengths, feats=None, feats_lengths=None):
        """Task features: ({task: (B, T, F)}, frame lengths (B,), MoE output)."""
        hidden, lengths = self.frontend(speech, speech_lengths, feats, feats_lengths)
        lengths = lengths.to(hidden.device)
        x = self.integration(hidden, lengths)
        moe_out = self.moe(x, valid_mask(lengths, x.shape[1]))
        return moe_out.features, lengths, moe_out

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                speech_ref1: Optional[torch.Tensor] = None,
                speech_ref1_lengths: Optional[torch.Tensor] = None,
                emotion: Optional[torch.Tensor] = None,
                emotion_lengths: Optional[torch.Tensor] = None,
                feats: Optional[torch.Tensor] = None,
                feats_lengths: Optional[torch.Tensor] = None,
                **kwargs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """speech (B, S) noisy, speech_ref1 (B, S) clean, emotion (B, 1) class index,
        feats (B, T, L, D) dumped hidden states (when the frontend reads dumps)."""
        features, lengths, moe_out = self.encode(speech, speech_lengths, feats, feats_lengths)
        batch = speech.shape[0]
        loss = moe_out.balance_loss
        stats = {"loss_balance": moe_out.balance_loss.detach()}
        if self.ser_head is not None:
            if emotion is None:
                raise ValueError("the SER head needs 'emotion' in the batch")
            target = emotion.reshape(batch, -1)[:, 0].long()
            logits = self.ser_head(features["ser"], lengths)
            loss_ser = F.cross_entropy(logits, target, weight=self.class_weights)
            loss = loss + self.ser_loss_weight * loss_ser
            pred = logits.argmax(dim=-1)
            stats["loss_ser"] = loss_ser.detach()
            stats["acc"] = (pred == target).float().mean().detach()
            if not self.training:
                index = (target * self.num_classes + pred).cpu()
                self.confusion += torch.bincount(index, minlength=self.num_classes ** 2).view(
                    self.num_classes, self.num_classes)
        if self.se_head is not None:
            if speech_ref1 is None:
                raise ValueError("the SE head needs 'speech_ref1' (clean reference) in the batch")
            se_out = self.se_head(features["se"], lengths, speech, speech_lengths)
            loss_se = self.se_head.loss(se_out, speech_ref1, speech_ref1_lengths)
            loss = loss + self.se_loss_weight * loss_se
            stats["loss_se"] = loss_se.detach()
        for task, fractions in moe_out.expert_fraction.items():
            for i, value in enumerate(fractions):
                stats[f"{task}_expert{i}"] = value.detach()
        stats["loss"] = loss.detach()
        weight = torch.tensor(batch, device=loss.device)
        return loss, stats, weight

    def collect_feats(self, speech, speech_lengths, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    def reset_confusion(self) -> None:
        """Start a new (C, C) SER confusion matrix (rows: reference), filled in eval mode."""
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
