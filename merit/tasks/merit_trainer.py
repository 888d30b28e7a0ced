"""ESPnet's Trainer, plus SER macro-F1 over the whole validation set.

Macro-F1 does not average over batches, so the model accumulates a confusion
matrix while validating; after the epoch it is summed over processes and
reported once as ``macro_f1``, usable as ``--best_model_criterion valid macro_f1 max``.
"""
import torch
from espnet2.train.trainer import Trainer

from merit.metrics.classification import macro_f1


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
        reporter.register({"macro_f1": macro_f1(confusion.cpu().numpy())})
        reporter.next()
