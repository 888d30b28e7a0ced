"""The tasks a MERIT model learns, each declared once.

A ``TaskSpec`` says everything the toolkit needs to know about one task: its name
(the MoE gate and output, the config options ``<name>_head``, ``<name>_head_conf`` and
``<name>_loss_weight``, the key in ``scores.json``), its head choices, the batch entry
its loss needs, how its loss and its inference output are computed from the task's
expert features, what decoding writes, and its metrics. ``MeritTask``, ``MeritModel``,
``Speech2Merit``, ``merit_inference``, ``score``, ``results_md`` and ``make_tables``
loop over ``TASKS``; a new task is a head, a ``TaskSpec`` subclass and one entry there.

This module imports torch and the heads only where a method needs them, so the
scoring and table tools can read the declarations quickly.
"""
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from merit.metrics.classification import SER_METRICS
from merit.metrics.metric import Metric
from merit.metrics.se import SE_METRICS


class TaskLoss(NamedTuple):
    """One task's share of a training step."""

    loss: "torch.Tensor"                    # () unweighted loss of the task
    stats: Dict[str, "torch.Tensor"]        # detached values for ESPnet's reporter
    confusion: Optional["torch.Tensor"] = None  # (C, C) counts of the batch (classification, eval)


def table_row(values) -> str:
    """Numbers as one line of a Kaldi-style table (``utt2posteriors`` …)."""
    return " ".join(f"{v:.6f}" for v in values)


class TaskSpec:
    """One task. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: the task's name (see the module docstring).
        title: what it is, for help texts.
        default_head: the head a config gets unless it names another (or ``none``).
        target: data name of the training target in the batch (ESPnet's
            ``*_data_path_and_name_and_type`` name).
        output: name of what inference gives per utterance (``MeritResult.outputs``).
        decoded: the table a decode dir holds when the task was decoded (written last).
        metrics: the task's metrics, in ``scores.json`` order.
        scores_input: its ``scores.json`` part holds each metric of the unprocessed
            input (``noisy``) beside that of the system's output (``enhanced``), rather
            than one value per metric.
        table_rank: its place in ``scores.json`` and in the result tables (see ``REPORTED``).
        paired_test: how ``make_tables`` tests two systems on a set, paired over the
            utterances of ``per_utt_<name>.tsv``: ``randomization`` (approximate
            randomization of the hypotheses, on the set-level metric) or ``wilcoxon``
            (signed-rank test of the per-utterance values).
    """

    name: str
    title: str
    default_head: str
    target: str
    output: str
    decoded: str
    metrics: Tuple[Metric, ...]
    scores_input: bool = False
    table_rank: int
    paired_test: str

    def head_classes(self) -> Dict[str, type]:
        """The head choices, by config name."""
        raise NotImplementedError

    def head_type(self) -> type:
        """The abstract class every head of this task derives from."""
        raise NotImplementedError

    def head_kwargs(self, frontend, num_classes: int, conf: dict) -> dict:
        """Constructor arguments of the head that come from the rest of the model."""
        return {}

    def loss(self, head, features, lengths, batch: dict, class_weights) -> TaskLoss:
        """The task's loss on a batch (``batch`` holds the model's forward arguments)."""
        raise NotImplementedError

    def infer(self, head, features, lengths, speech, speech_lengths) -> List[np.ndarray]:
        """The inference output of each utterance of a padded batch, in batch order
        (``features`` (B, T, F) with ``lengths`` (B,) frames, ``speech`` (B, S) with
        ``speech_lengths`` (B,) samples); nothing of an utterance's padding is in it."""
        raise NotImplementedError

    def decode_entries(self, utt: str, output: np.ndarray, out_dir: Path,
                       classes: Sequence[str]) -> Dict[str, str]:
        """``{table file: value}`` that decoding writes for one utterance (it may write
        files of its own under ``out_dir``)."""
        raise NotImplementedError


class SpeechEnhancement(TaskSpec):
    name = "se"
    title = "speech enhancement"
    default_head = "mask"
    target = "speech_ref1"
    output = "enhanced"
    decoded = "enhanced.scp"
    metrics = SE_METRICS
    scores_input = True
    table_rank = 1
    paired_test = "wilcoxon"

    def head_classes(self):
        from merit.models.se_head import MaskSEHead

        return dict(mask=MaskSEHead)

    def head_type(self):
        from merit.models.abs_se_head import AbsSEHead

        return AbsSEHead

    def head_kwargs(self, frontend, num_classes, conf):
        return {"ssl_hop": frontend.downsample_rate, "ssl_offset": frontend.frame_offset}

    def loss(self, head, features, lengths, batch, class_weights):
        if batch.get(self.target) is None:
            raise ValueError(f"the SE head needs '{self.target}' (clean reference) in the batch")
        se_out = head(features, lengths, batch["speech"], batch["speech_lengths"])
        loss = head.loss(se_out, batch[self.target], batch[f"{self.target}_lengths"])
        return TaskLoss(loss, {"loss_se": loss.detach()})

    def infer(self, head, features, lengths, speech, speech_lengths):
        enhanced = head.enhance(head(features, lengths, speech, speech_lengths)).cpu().numpy()
        return [wave[:length] for wave, length in zip(enhanced, speech_lengths.tolist())]

    def decode_entries(self, utt, output, out_dir, classes):
        from merit.data.audio_io import write_audio

        path = (out_dir / "enhanced" / f"{utt}.wav").resolve()
        write_audio(path, output)
        return {self.decoded: str(path)}


class EmotionRecognition(TaskSpec):
    name = "ser"
    title = "speech emotion recognition"
    default_head = "attentive_stats"
    target = "emotion"
    output = "posteriors"
    decoded = "utt2emo_hyp"
    metrics = SER_METRICS
    table_rank = 0
    paired_test = "randomization"

    def head_classes(self):
        from merit.models.ser_head import AttentiveStatsSERHead

        return dict(attentive_stats=AttentiveStatsSERHead)

    def head_type(self):
        from merit.models.abs_ser_head import AbsSERHead

        return AbsSERHead

    def head_kwargs(self, frontend, num_classes, conf):
        return {"num_classes": num_classes}

    def loss(self, head, features, lengths, batch, class_weights):
        import torch
        import torch.nn.functional as F

        emotion = batch.get(self.target)
        if emotion is None:
            raise ValueError(f"the SER head needs '{self.target}' in the batch")
        target = emotion.reshape(emotion.shape[0], -1)[:, 0].long()
        logits = head(features, lengths)
        loss = F.cross_entropy(logits, target, weight=class_weights)
        pred = logits.argmax(dim=-1)
        stats = {"loss_ser": loss.detach(), "acc": (pred == target).float().mean().detach()}
        confusion = None
        if not head.training:
            classes = logits.shape[-1]
            index = (target * classes + pred).cpu()
            confusion = torch.bincount(index, minlength=classes ** 2).view(classes, classes)
        return TaskLoss(loss, stats, confusion)

    def infer(self, head, features, lengths, speech, speech_lengths):
        import torch

        # each utterance alone over its own frames, so that the pooling's sums and the
        # classifier's one-row products are the same whatever else is in the batch
        return [torch.softmax(head(features[b:b + 1, :max(n, 1)], lengths[b:b + 1]),
                              dim=-1)[0].cpu().numpy()
                for b, n in enumerate(lengths.tolist())]

    def decode_entries(self, utt, output, out_dir, classes):
        return {self.decoded: classes[int(np.argmax(output))],
                "utt2posteriors": table_row(output)}


#: Every task, in the order of the MoE's gates and of the model's heads.
TASKS: Tuple[TaskSpec, ...] = (SpeechEnhancement(), EmotionRecognition())

#: The tasks in the order of ``scores.json`` and of the result tables: recognition
#: first, as in the paper's tables.
REPORTED: Tuple[TaskSpec, ...] = tuple(sorted(TASKS, key=lambda task: task.table_rank))
