"""Merge YAML training configs into one (recipe stage 4).

    python -m merit.bin.compose_config conf/train.yaml conf/systems/sparse_merit.yaml \\
        --set seed=2 --out exp/sparse_merit_fbank_seed2/train_config.yaml

Later files win; nested mappings merge key by key (``moe_conf`` of a system file
changes ``num_experts`` and keeps the corpus's ``hidden_size``); lists and scalars are
replaced whole. ``--set key=value`` (YAML value, dotted keys for nesting) is applied
last. The output names its sources in a header comment and is written atomically.
"""
import argparse
import os
import sys
from pathlib import Path

import yaml


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="YAML files, later ones win")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one (dotted) key; repeatable")
    parser.add_argument("--out", required=True, help="where the merged config goes")
    return parser


def merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, recursing into mappings present in both."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge(merged[key], value)
        merged[key] = value
    return merged


def override(setting: str) -> dict:
    """``a.b=3`` -> ``{"a": {"b": 3}}``."""
    key, sep, value = setting.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {setting!r}: expected KEY=VALUE")
    result = yaml.safe_load(value) if value.strip() else None
    for part in reversed(key.split(".")):
        result = {part: result}
    return result


def load(path: str) -> dict:
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(config).__name__}")
    return config


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        config = {}
        for path in args.configs:
            config = merge(config, load(path))
        for setting in args.set:
            config = merge(config, override(setting))
    except (OSError, ValueError) as err:
        print(f"compose_config: error: {err}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in
                     ["Composed by merit.bin.compose_config from (later wins):", *args.configs,
                      *(f"--set {s}" for s in args.set)])
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(header + yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
