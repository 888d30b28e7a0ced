"""A benchmark's results: a two-column markdown table printed row by row as each
measure is taken (long runs show progress), and the same values as JSON."""
import json
from pathlib import Path


class MeasureTable:
    def __init__(self):
        self.values = {}
        print("| measure | value |\n|---|---|", flush=True)

    def record(self, key: str, value) -> None:
        self.values[key] = value
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"| {key} | {shown} |", flush=True)

    def write_json(self, path) -> None:
        Path(path).write_text(json.dumps(self.values, indent=2) + "\n")
