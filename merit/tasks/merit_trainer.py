"""ESPnet's Trainer, plus two scores over the whole validation set.

Macro-F1 does not average over batches, so the model accumulates a confusion
matrix while validating; after the epoch it is summed over processes and
reported once as ``macro_f1``, usable as ``--best_model_criterion valid macro_f1 max``.

A model with both heads also reports ``joint_score = macro_f1 - ln(loss_se)``, with
``loss_se`` the epoch's mean dev SE loss (``valid joint_score max``). The logarithm
makes the SE term scale-free: a relative change of the SE loss counts the same at
any loss level, and 1 % less SE loss weighs as 0.01 macro-F1. The dev loss (``valid
loss min``) weighs the two as training does, and its SER cross-entropy (about 1.4
against an SE loss about 0.05 on mini_emo) then picks the epoch SER likes.
"""
import math

import torch
from espnet2.train.reporter import aggregate
from espnet2.train.trainer import Trainer

from merit.metrics.classification import macro_f1


def joint_score(f1: float, loss_se: float) -> float:
    """Dev macro-F1 minus the natural log of the dev SE loss (module docstring)."""
    return f1 - math.log(loss_se)


class MeritTrainer(Trainer):
    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option):
        core = model.module if hasattr(model, "module") else model
        has_ser = getattr(core, "ser_head", None) is not None
        if has_ser:
            core.reset_confusion()
        super().validate_one_epoch(model, iterator, reporter, options, distributed_option)
        if not has_ser:
            return
        confusion = core.confusion
        if distributed_option.distributed:
            device = "cuda" if options.ngpu > 0 else "cpu"
            confusion = confusion.to(device)
            torch.distributed.all_reduce(confusion)
        scores = {"macro_f1": macro_f1(confusion.cpu().numpy())}
        if reporter.stats.get("loss_se"):  # the batches' mean SE losses, already over processes
            scores["joint_score"] = joint_score(scores["macro_f1"],
                                                float(aggregate(reporter.stats["loss_se"])))
        reporter.register(scores)
        reporter.next()
