"""``merit.bin.merit_train`` with a record of what each process did, for test_distributed.

Run exactly as merit_train (``python test/ddp_probe.py <merit_train options>``) with
``MERIT_DDP_PROBE`` naming a directory. Every process of a distributed run writes
there, under its own rank (``torch.distributed``'s, 0 when not distributed):

* ``train_keys.rank<r>``, ``valid_keys.rank<r>``: the utterance ids its model's
  forward received, one per line, in order (ESPnet's trainer passes them as ``utt_id``);
* ``confusion.rank<r>.npy``: the SER confusion matrix from which MeritTrainer computed
  ``valid.macro_f1`` (the last epoch's);
* ``params.rank<r>.pth``: its model's ``state_dict()`` when training has finished.

ESPnet lets only rank 0 log and save checkpoints, so without this nothing shows which
data the other ranks saw or whether their parameters stayed equal to rank 0's.
"""
import os
import sys
from pathlib import Path

import numpy as np
import torch

from merit.bin import merit_train
from merit.models.espnet_model import MeritModel
from merit.tasks import merit_trainer
from merit.tasks.merit_trainer import MeritTrainer

PROBE = Path(os.environ["MERIT_DDP_PROBE"])


def _rank() -> int:
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return torch.distributed.get_rank() if distributed else 0


_forward = MeritModel.forward
_run = MeritTrainer.run.__func__
_macro_f1 = merit_trainer.macro_f1


def _recording_forward(self, *args, **kwargs):
    keys = kwargs.get("utt_id") or []
    mode = "train" if self.training else "valid"
    with open(PROBE / f"{mode}_keys.rank{_rank()}", "a") as out:
        out.writelines(f"{key}\n" for key in keys)
    return _forward(self, *args, **kwargs)


def _recording_macro_f1(confusion):
    np.save(PROBE / f"confusion.rank{_rank()}.npy", np.asarray(confusion))
    return _macro_f1(confusion)


def _recording_run(cls, model, **kwargs):
    rank = _rank()  # before training ends: the process group may be gone afterwards
    _run(cls, model=model, **kwargs)
    torch.save(model.state_dict(), PROBE / f"params.rank{rank}.pth")


MeritModel.forward = _recording_forward
MeritTrainer.run = classmethod(_recording_run)
merit_trainer.macro_f1 = _recording_macro_f1

if __name__ == "__main__":
    PROBE.mkdir(parents=True, exist_ok=True)
    merit_train.main(sys.argv[1:])
