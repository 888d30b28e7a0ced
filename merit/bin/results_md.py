"""Write a system's RESULTS.md from its ``decode_*/scores.json`` (ESPnet style).

    python -m merit.bin.results_md exp/sparse_merit_fbank > RESULTS.md

An environment block (date, python, torch, espnet, s3prl, git hash), then one row per
decoded set: SER macro-F1 / UAR / accuracy, and SSNR, PESQ, STOI, SI-SDR of the
noisy input → the enhanced output.
"""
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


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


def arrow(se: dict, metric: str, digits: int) -> str:
    noisy, enhanced = se.get("noisy", {}).get(metric), se.get("enhanced", {}).get(metric)
    if noisy is None:
        return "–"
    if enhanced is None:
        return f"{noisy:.{digits}f}"
    return f"{noisy:.{digits}f} → {enhanced:.{digits}f}"


def results_table(exp_dir: Path) -> str:
    files = sorted(exp_dir.glob("decode_*/scores.json"))
    if not files:
        raise ValueError(f"{exp_dir}: no decode_*/scores.json (run stages 5 and 6 first)")
    lines = ["| set | SER macro-F1 | UAR | accuracy | SSNR (dB) | PESQ | STOI | SI-SDR (dB) | utts |",
             "|---|---|---|---|---|---|---|---|---|"]
    for path in files:
        scores = json.loads(path.read_text())
        ser, se = scores.get("ser"), scores.get("se", {})
        ser_cols = ([f"{ser['macro_f1']:.3f}", f"{ser['uar']:.3f}", f"{ser['accuracy']:.3f}"]
                    if ser else ["–"] * 3)
        lines.append("| " + " | ".join([scores["set"], *ser_cols, arrow(se, "ssnr", 2),
                                         arrow(se, "pesq", 2), arrow(se, "stoi", 3),
                                         arrow(se, "si_sdr", 2), str(se.get("count", "–"))]) + " |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("Usage: python -m merit.bin.results_md <exp-dir>", file=sys.stderr)
        return 1
    exp_dir = Path(argv[0])
    try:
        table = results_table(exp_dir)
    except ValueError as err:
        print(f"results_md: error: {err}", file=sys.stderr)
        return 1
    print(f"# RESULTS: {exp_dir.name}\n\n## Environment\n{environment()}\n\n"
          f"## Scores (noisy input → enhanced output)\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
