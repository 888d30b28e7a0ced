"""Write a system's RESULTS.md from its ``decode_*/scores.json`` (ESPnet style).

    python -m merit.bin.results_md exp/sparse_merit_fbank > RESULTS.md

An environment block (date, python, torch, espnet, s3prl, git hash), then one row per
decoded set: each task's metrics marked ``in_results`` (SER macro-F1 / UAR / accuracy,
and SSNR, PESQ, STOI, SI-SDR, CSIG, CBAK, COVL of the noisy input → the enhanced
output). When the scores hold oracle bounds (``merit.bin.score --oracle_config``), a
second table gives them per set (``oracle_mask``, ``oracle_magnitude``) with the
settings each depends on.
"""
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from merit.tasks.task_specs import REPORTED

DASH = "–"


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def git_hash() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> str:
    return "\n".join([
        f"- date: `{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}`",
        f"- python: `{platform.python_version()}`",
        f"- torch: `{package_version('torch')}`, espnet: `{package_version('espnet')}`, "
        f"s3prl: `{package_version('s3prl')}`",
        f"- merit git hash: `{git_hash()}`",
    ])


def cell(part: dict, task, metric) -> str:
    """One task's metric on a set: ``noisy → enhanced`` for a task that scores its
    input, else the value; ``–`` when the set has no such score."""
    if not task.scores_input:
        return metric.format(part[metric.name]) if metric.name in part else DASH
    noisy, output = part.get("noisy", {}).get(metric.name), part.get("enhanced", {}).get(metric.name)
    if noisy is None:
        return DASH
    if output is None:
        return metric.format(noisy)
    return f"{metric.format(noisy)} → {metric.format(output)}"


def all_scores(exp_dir: Path) -> list:
    """The ``decode_*/scores.json`` of ``exp_dir``, in decode-dir order; ValueError if none."""
    files = sorted(exp_dir.glob("decode_*/scores.json"))
    if not files:
        raise ValueError(f"{exp_dir}: no decode_*/scores.json (run stages 5 and 6 first)")
    return [json.loads(path.read_text()) for path in files]


def results_table(exp_dir: Path) -> str:
    columns = [(task, metric) for task in REPORTED for metric in task.metrics if metric.in_results]
    header = ["set"] + [metric.heading for _, metric in columns] + ["utts"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    count_task = next(task for task in REPORTED if task.scores_input)
    for scores in all_scores(exp_dir):
        cells = [cell(scores.get(task.name, {}), task, metric) for task, metric in columns]
        count = scores.get(count_task.name, {}).get("count", DASH)
        lines.append("| " + " | ".join([scores["set"], *cells, str(count)]) + " |")
    return "\n".join(lines)


def oracle_table(exp_dir: Path) -> str:
    """The oracle bounds of each set (one row per set and oracle: the ``in_results``
    metrics of the task that scores its input) and, below, the settings of each oracle;
    '' when no scores.json holds any."""
    task = next(task for task in REPORTED if task.scores_input)
    metrics = [metric for metric in task.metrics if metric.in_results]
    rows, settings = [], {}  # settings: {oracle: {its settings as text: [set, ...]}}
    for scores in all_scores(exp_dir):
        part = scores.get(task.name, {})
        for oracle, values in part.get("oracle_settings", {}).items():
            text = ", ".join(f"{k}={v}" for k, v in values.items())
            settings.setdefault(oracle, {}).setdefault(text, []).append(scores["set"])
            found = part.get(oracle, {})
            rows.append([scores["set"], oracle] + [
                metric.format(found[metric.name]) if metric.name in found else DASH
                for metric in metrics])
    if not rows:
        return ""
    header = ["set", "oracle"] + [metric.heading for metric in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("")
    for oracle, described in settings.items():
        for text, sets in described.items():
            where = "" if len(described) == 1 else f" ({', '.join(sets)})"
            lines.append(f"- `{oracle}`{where}: {text}")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("Usage: python -m merit.bin.results_md <exp-dir>", file=sys.stderr)
        return 1
    exp_dir = Path(argv[0])
    try:
        table, oracles = results_table(exp_dir), oracle_table(exp_dir)
    except ValueError as err:
        print(f"results_md: error: {err}", file=sys.stderr)
        return 1
    print(f"# RESULTS: {exp_dir.name}\n\n## Environment\n{environment()}\n\n"
          f"## Scores (noisy input → enhanced output)\n{table}")
    if oracles:
        print("\n## Oracle bounds of the SE head (ideal mask of its family; clean magnitude "
              f"with the noisy phase)\n{oracles}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
