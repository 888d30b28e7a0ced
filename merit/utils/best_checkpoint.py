"""The checkpoint a trained model is decoded with by default.

    python -m merit.utils.best_checkpoint exp/sparse_merit_fbank_seed1/config.yaml
    valid.macro_f1.best.pth

ESPnet's trainer keeps ``<phase>.<metric>.best.pth`` for every ``best_model_criterion``;
the default checkpoint is the one of the first criterion (``train.loss.best.pth``,
ESPnet's own first default, for a config that names none). ``Speech2Merit``,
``merit_inference``, ``merit-infer`` and stage 5 of ``merit.sh`` all ask this module.
"""
import sys
from pathlib import Path

import yaml

#: The first of ESPnet's default best_model_criterion.
ESPNET_FIRST_CRITERION = ("train", "loss", "min")


def best_checkpoint(config_path) -> str:
    """``<phase>.<metric>.best.pth`` of the first ``best_model_criterion`` in a training
    config (``config.yaml`` of a trained model or a recipe's ``train_config.yaml``)."""
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    criteria = config.get("best_model_criterion") or [ESPNET_FIRST_CRITERION]
    phase, metric = criteria[0][:2]
    return f"{phase}.{metric}.best.pth"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("Usage: python -m merit.utils.best_checkpoint <config.yaml>", file=sys.stderr)
        return 1
    try:
        print(best_checkpoint(argv[0]))
    except (OSError, yaml.YAMLError, ValueError, TypeError) as err:
        print(f"best_checkpoint: error: {argv[0]}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
