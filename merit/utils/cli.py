"""Argument types for merit's command-line tools (ESPnet-style booleans)."""
import argparse


def str2bool(text: str) -> bool:
    """``true``/``false`` only, as parse_options.sh accepts them."""
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
