"""Command-line tools: python -m merit.bin.<tool>."""
