"""Build a trained MERIT model from its ``config.yaml`` and a checkpoint, loading tensors
only: safe for a model someone else trained.

ESPnet's ``AbsTask.build_model_from_file`` unpickles the checkpoint with
``torch.load(weights_only=False)`` (a checkpoint can then run any code while it loads)
and loads it with ``strict=False`` (missing or misnamed weights stay random, silently).
``load_model`` builds the model through the same registries (``model_builder.build_model``
on the config, read with ``yaml.safe_load``), then reads the checkpoint with
``weights_only=True`` and refuses, naming them, any missing or unexpected weight.
ESPnet's checkpoints (``valid.*.best.pth``, ``<N>epoch.pth``: a state dict of tensors)
load unchanged.
"""
import argparse
import pickle
from pathlib import Path
from typing import Tuple

import torch
import yaml

from merit.tasks.model_builder import build_model

#: Keys named in an error before "and N more".
_NAMED = 5


def _named(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - _NAMED} more" if len(keys) > _NAMED else ""
    return ", ".join(keys[:_NAMED]) + more


def load_model(config: Path, weights: Path, device: str = "cpu") -> Tuple[torch.nn.Module,
                                                                          argparse.Namespace]:
    """(model, its config as a Namespace): the model of ``config`` with the weights of
    ``weights`` on ``device``.

    Raises:
        ValueError: the config is not a YAML mapping; the checkpoint holds anything but
            tensors (it is not unpickled further), is not a state dict, or lacks or adds
            weights (the keys are named).
    """
    conf = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    if not isinstance(conf, dict):
        raise ValueError(f"{config}: not a model config (a YAML mapping)")
    args = argparse.Namespace(**conf)
    model = build_model(args).to(device)
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{weights}: refused: the checkpoint holds more than tensors, and "
                         f"loading it could run code ({reason})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{weights}: not a state dict of tensors ({type(state).__name__})")
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        parts = ([f"{len(missing)} weight(s) missing: {_named(missing)}"] if missing else []) + \
            ([f"{len(unexpected)} unexpected: {_named(unexpected)}"] if unexpected else [])
        raise ValueError(f"{weights}: does not fit the model of {config}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model, args
