"""Paper tables comparing systems over test SNR × condition, with significance marks.

    python -m merit.bin.make_tables exp/* [--baseline NAME ...] [--format markdown|latex]

Reads ``<exp>/decode_<set>/scores.json`` (and ``per_utt_ser.tsv`` / ``per_utt_se.tsv``
for the significance tests).  Prints one table per metric marked ``in_tables`` in its
task's declaration (``merit.tasks.task_specs``): SER macro-F1 and the SSNR, PESQ and STOI
of the enhanced output. The SE tables also get a "noisy" reference row and, where the
scores hold them (``merit.bin.score --oracle_config``), the oracle bounds right after
it: ``oracle_mask`` and ``oracle_magnitude``, one row per distinct oracle setting among
the runs, labelled with the settings that differ (e.g. ``oracle_mask (log1p)`` and
``oracle_mask (magnitude)`` for systems with different mask domains).
Rows are systems; exp dirs named ``<system>_seed<N>`` are runs of ``<system>`` and are
shown as mean ± std over seeds (ddof=1).  Columns are sets sorted by condition, then SNR.

With ``--baseline NAME`` every other system gets a row ``<system> vs. NAME`` holding the
relative change ``(system − baseline) / |baseline| × 100`` in %, marked ``*`` when the
paired test over utterances gives p < 0.05: approximate randomization on macro-F1 for SER,
Wilcoxon signed-rank on the per-utterance metric for SE.  For multi-seed systems the test
uses the first seed (lowest N); a footnote says so.
"""
import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from merit.metrics.significance import (approximate_randomization, macro_f1_metric,
                                        significance_mark, wilcoxon_signed_rank)
from merit.tasks.task_specs import REPORTED

#: (task, metric) of the printed tables: every metric marked ``in_tables``.
TABLES = [(task, metric) for task in REPORTED for metric in task.metrics if metric.in_tables]
DASH = "–"
SET_RE = re.compile(r"^(?P<test>.*)_snr(?P<snr>-?\d+(?:\.\d+)?)_(?P<cond>[^_]+)$")
SEED_RE = re.compile(r"^(?P<system>.+)_seed(?P<seed>\d+)$")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_dirs", nargs="*", help="experiment dirs, e.g. exp/*")
    parser.add_argument("--baseline", action="append", default=[],
                        help="system to compare the others with (repeatable)")
    parser.add_argument("--format", choices=["markdown", "latex"], default="markdown")
    parser.add_argument("--trials", type=int, default=10000,
                        help="approximate randomization trials (SER significance)")
    return parser


def set_key(scores: dict, name: str) -> tuple:
    """Sort key ``(condition, snr, test)`` of a set, from scores.json or its name."""
    match = SET_RE.match(name)
    snr = scores.get("snr_db", match["snr"] if match else None)
    cond = scores.get("condition", match["cond"] if match else "")
    snr = float(snr) if snr is not None else float("nan")
    return (cond or "", snr, match["test"] if match else name)


def load_runs(exp_dirs) -> dict:
    """``{system: [run, ...]}`` (seeds in ascending order); a run is ``{set: (scores, dir)}``.

    Dirs without any ``decode_*/scores.json`` are skipped with a warning on stderr.
    """
    found = {}
    for exp in map(Path, exp_dirs):
        files = sorted(exp.glob("decode_*/scores.json")) if exp.is_dir() else []
        if not files:
            print(f"make_tables: warning: skipping {exp} (no decode_*/scores.json)",
                  file=sys.stderr)
            continue
        match = SEED_RE.match(exp.name)
        system, seed = (match["system"], int(match["seed"])) if match else (exp.name, -1)
        run = {}
        for path in files:
            scores = json.loads(path.read_text())
            name = scores.get("set") or path.parent.name[len("decode_"):]
            run[name] = (scores, path.parent)
        found.setdefault(system, []).append((seed, str(exp), run))
    return {system: [run for _, _, run in sorted(runs, key=lambda r: r[:2])]
            for system, runs in found.items()}


def value(scores: dict, task, metric, which: str = "enhanced"):
    """The metric from one scores.json (of the system's output, or of the ``noisy``
    input for a task that scores it), or None when absent."""
    part = scores.get(task.name, {})
    return (part.get(which, {}) if task.scores_input else part).get(metric.name)


def cell_values(runs: list, name: str, task, metric) -> list:
    """The metric of set ``name`` in every run (seed) that has it."""
    values = [value(run[name][0], task, metric) for run in runs if name in run]
    return [v for v in values if v is not None]


def fmt_values(values: list, digits: int) -> str:
    """``mean ± std`` (ddof=1) over seeds, the value for one run, ``–`` for none."""
    if not values:
        return DASH
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def read_tsv(path: Path) -> dict:
    """``{utt: row dict}`` of a per-utterance TSV with a header; {} if it is missing."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["utt"]: row for row in csv.DictReader(f, delimiter="\t")}


def p_value(run_a: dict, run_b: dict, name: str, task, metric, trials: int) -> float:
    """Paired p-value of two runs on set ``name`` over their common utterances (NaN if none),
    by the task's ``paired_test``."""
    if name not in run_a or name not in run_b:
        return float("nan")
    (scores_a, dir_a), (_, dir_b) = run_a[name], run_b[name]
    tsv = f"per_utt_{task.name}.tsv"
    a, b = read_tsv(dir_a / tsv), read_tsv(dir_b / tsv)
    if task.paired_test == "randomization":
        utts = sorted(set(a) & set(b))
        if not utts:
            return float("nan")
        labels = {a[u][k] for u in utts for k in ("ref", "hyp")} | {b[u]["hyp"] for u in utts}
        classes = list(scores_a.get(task.name, {}).get("classes", []))
        classes += sorted(labels - set(classes))
        index = {c: i for i, c in enumerate(classes)}
        ref = np.array([index[a[u]["ref"]] for u in utts])
        hyp_a = np.array([index[a[u]["hyp"]] for u in utts])
        hyp_b = np.array([index[b[u]["hyp"]] for u in utts])
        return approximate_randomization(ref, hyp_a, hyp_b, macro_f1_metric(len(classes)),
                                         trials=trials, seed=0)
    column = f"enhanced_{metric.name}"
    utts = sorted(u for u in set(a) & set(b) if a[u].get(column) and b[u].get(column))
    if not utts:
        return float("nan")
    return wilcoxon_signed_rank([float(a[u][column]) for u in utts],
                                [float(b[u][column]) for u in utts])


def relative(systems: dict, system: str, base: str, name: str, task, metric,
             trials: int) -> str:
    """``+12.0 %*``: relative change of ``system`` over ``base`` on one set."""
    mine = cell_values(systems[system], name, task, metric)
    theirs = cell_values(systems[base], name, task, metric)
    if not mine or not theirs or np.mean(theirs) == 0:
        return DASH
    change = (np.mean(mine) - np.mean(theirs)) / abs(np.mean(theirs)) * 100
    p = p_value(systems[system][0], systems[base][0], name, task, metric, trials)
    return f"{change:+.1f} %{significance_mark(p)}"


def settings_label(settings: dict, others: list) -> str:
    """``log1p`` / ``mask_floor=0.1``: the oracle settings in which ``settings`` differs
    from any of ``others`` (a string value bare, any other as ``name=value``)."""
    names = [k for k in dict.fromkeys(k for s in [settings, *others] for k in s)
             if any(o.get(k) != settings.get(k) for o in others)]
    return ", ".join(settings[k] if isinstance(settings.get(k), str) else f"{k}={settings.get(k)}"
                     for k in names)


def oracle_rows(systems: dict, sets: list, task, metric) -> list:
    """Rows of the oracle bounds in the scores (``se.oracle_settings`` names them and
    what each depends on): per oracle, one row per distinct settings, in the order first
    met; a cell is the value of the first run with those settings on that set."""
    found = {}  # oracle -> {settings as sorted JSON: (settings, {set: value})}
    for runs in systems.values():
        for run in runs:
            for name in sets:
                part = run[name][0].get(task.name, {}) if name in run else {}
                for oracle, settings in part.get("oracle_settings", {}).items():
                    key = json.dumps(settings, sort_keys=True)
                    _, cells = found.setdefault(oracle, {}).setdefault(key, (settings, {}))
                    if name not in cells and metric.name in part.get(oracle, {}):
                        cells[name] = part[oracle][metric.name]
    rows = []
    for oracle, families in found.items():
        every = [settings for settings, _ in families.values()]
        for settings, cells in families.values():
            label = oracle if len(every) == 1 else f"{oracle} ({settings_label(settings, every)})"
            rows.append([label] + [metric.format(cells[n]) if n in cells else DASH for n in sets])
    return rows


def build_rows(systems: dict, sets: list, baselines: list, table: tuple, trials: int) -> list:
    """Rows ``[label, cell, ...]`` of one table (for a task that scores its input, a noisy
    reference row first, then the oracle bounds)."""
    task, metric = table
    rows = []
    if task.scores_input:
        noisy = []
        for name in sets:
            found = [value(run[name][0], task, metric, "noisy") for runs in systems.values()
                     for run in runs if name in run]
            found = [v for v in found if v is not None]
            noisy.append(metric.format(found[0]) if found else DASH)
        rows.append(["noisy"] + noisy)
        rows += oracle_rows(systems, sets, task, metric)
    for system, runs in systems.items():
        rows.append([system] + [fmt_values(cell_values(runs, n, task, metric), metric.digits)
                                for n in sets])
        for base in baselines:
            if base != system:
                rows.append([f"{system} vs. {base}"] + [
                    relative(systems, system, base, n, task, metric, trials) for n in sets])
    return rows


def render(title: str, header: list, rows: list, fmt: str) -> str:
    """One table as markdown (with a ``###`` title) or a booktabs LaTeX tabular."""
    if fmt == "markdown":
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])

    def tex(cell: str) -> str:
        for old, new in (("_", r"\_"), ("%", r"\%"), (" ± ", r" $\pm$ "), (DASH, "--")):
            cell = cell.replace(old, new)
        return cell

    lines = [f"% {title}", r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(map(tex, header)) + r" \\", r"\midrule"]
    lines += [" & ".join(map(tex, row)) + r" \\" for row in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])


def main(argv=None) -> int:
    """Print the tables; 1 when no exp dir has scores or a baseline is unknown."""
    args = get_parser().parse_args(argv)
    systems = load_runs(args.exp_dirs)
    if not systems:
        print("make_tables: error: no exp dir with decode_*/scores.json given "
              f"({len(args.exp_dirs)} path(s))", file=sys.stderr)
        return 1
    unknown = [b for b in args.baseline if b not in systems]
    if unknown:
        print(f"make_tables: error: unknown baseline(s) {', '.join(unknown)}; systems: "
              f"{', '.join(systems)}", file=sys.stderr)
        return 1
    keys = {name: set_key(scores, name) for runs in systems.values() for run in runs
            for name, (scores, _) in run.items()}
    sets = sorted(keys, key=lambda n: keys[n])
    several_tests = len({keys[n][2] for n in sets}) > 1
    header = ["system"] + [(f"{keys[n][2]} " if several_tests else "")
                           + f"{keys[n][1]:g} dB {keys[n][0]}".rstrip() for n in sets]
    blocks = [render(t[1].heading, header, build_rows(systems, sets, args.baseline, t, args.trials),
                     args.format) for t in TABLES]
    notes = []
    if args.baseline:
        notes.append(f"`*`: p < 0.05, paired over utterances: approximate randomization "
                     f"({args.trials} trials) on macro-F1 for SER, Wilcoxon signed-rank "
                     f"for SE; relative change in % over the baseline.")
        seeded = [s for s, runs in systems.items() if len(runs) > 1]
        if seeded:
            notes.append("Multi-seed systems (" + ", ".join(seeded) + ") show mean ± std "
                         "over seeds; their significance tests use the first seed.")
    if notes:
        latex = args.format == "latex"
        blocks.append(("\n" if latex else "\n\n").join(("% " if latex else "") + n
                                                        for n in notes))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
