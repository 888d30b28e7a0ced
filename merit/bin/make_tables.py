"""Paper tables comparing systems over test SNR × condition, with significance marks.

    python -m merit.bin.make_tables exp/* [--baseline NAME ...] [--metrics NAME,...]
        [--delta abs|rel|both] [--correction holm|none] [--format markdown|latex]

Reads ``<exp>/decode_<set>/scores.json`` (and ``per_utt_ser.tsv`` / ``per_utt_se.tsv``
for the significance tests).  Prints one table per metric chosen with ``--metrics``
(any metric a task declares in ``merit.tasks.task_specs``; by default those marked
``in_tables``: SER macro-F1 and the SSNR, PESQ and STOI of the enhanced output) and
test split: sets are named ``<test>_snr<N>_<condition>``, and when several tests are
scored (``test1_…``, ``test2_…``) each gets its own table (``SSNR (dB), test1``) with
that split's sets as columns, sorted by condition, then SNR.  A metric that no run has
gives a table of dashes.

The SE tables also get reference rows: ``noisy`` (the input), ``clean`` where the scores
hold the clean reference's value (a non-intrusive metric such as DNSMOS) and, where the
scores hold them (``merit.bin.score --oracle_config``), the oracle bounds:
``oracle_mask`` and ``oracle_magnitude``, one row per distinct oracle setting among the
runs, labelled with the settings that differ (e.g. ``oracle_mask (log1p)`` and
``oracle_mask (magnitude)`` for systems with different mask domains).
Rows are systems; exp dirs named ``<system>_seed<N>`` are runs of ``<system>`` and are
shown as mean ± std over seeds (ddof=1).

With ``--baseline NAME`` every other system gets a row ``<system> vs. NAME``: the
difference of the means over seeds, absolute in the metric's unit (``+0.42 dB``),
relative to ``|baseline|`` in % (``+12.0 %``) or both (``+0.42 dB (+12.0 %)``);
``--delta`` picks one for every table, by default both for metrics in dB (a relative
change of a value near 0 dB explodes and flips sign) and relative for the others.  A
``*`` marks p < 0.05 in a paired test that uses every seed: seed k of one system is
paired with seed k of the other (common seeds only; a single run without a seed number
pairs with every seed).  SER (``paired_test`` ``randomization``): approximate
randomization of the metric's mean over the paired seeds, each trial swapping the two
systems' outputs per (utterance, seed).  SE (``wilcoxon``): Wilcoxon signed-rank over
utterances of each utterance's metric averaged over the paired seeds.  The p-values of
one table (its sets × compared pairs) are Holm–Bonferroni adjusted (``--correction
none`` to leave them).  Footnotes say all of this under the tables.
"""
import argparse
import csv
import functools
import json
import re
import sys
from pathlib import Path

import numpy as np

from merit.metrics.significance import (approximate_randomization, confusion_metric, holm,
                                        significance_mark, wilcoxon_over_seeds)
from merit.tasks.task_specs import REPORTED

#: ``{name: (task, metric)}`` of every metric the tasks declare, in table order.
METRICS = {metric.name: (task, metric) for task in REPORTED for metric in task.metrics}
#: The metrics tabled without ``--metrics``: those marked ``in_tables``.
DEFAULT_METRICS = [name for name, (_, metric) in METRICS.items() if metric.in_tables]
DASH = "–"
SET_RE = re.compile(r"^(?P<test>.*)_snr(?P<snr>-?\d+(?:\.\d+)?)_(?P<cond>[^_]+)$")
SEED_RE = re.compile(r"^(?P<system>.+)_seed(?P<seed>\d+)$")
#: What each ``paired_test`` is, for the footnotes (``{trials}`` filled in).
TEST_NOTES = {
    "randomization": "approximate randomization ({trials} trials) of the difference of the "
                     "metric's means over the paired seeds; each trial swaps the two "
                     "systems' outputs of an utterance in a seed with probability 1/2, "
                     "independently per (utterance, seed)",
    "wilcoxon": "Wilcoxon signed-rank over the utterances, of each utterance's metric "
                "averaged over the paired seeds (one sample per utterance)",
}
#: What each ``--delta`` shows, for the footnotes.
DELTA_NOTES = {
    "abs": "the difference of the means over seeds, system − baseline, in the metric's unit",
    "rel": "the relative change of the means over seeds, (system − baseline) / |baseline|, "
           "in %",
    "both": "the difference of the means over seeds, system − baseline, in the metric's "
            "unit, and (in brackets) as % of |baseline|",
}


class MetricsChoice(argparse.Action):
    """``--metrics a,b --metrics c``: the names in order, once each."""

    def __call__(self, parser, namespace, values, option_string=None):
        names = list(getattr(namespace, self.dest) or [])
        names += [n.strip() for n in values.split(",") if n.strip() and n.strip() not in names]
        setattr(namespace, self.dest, names)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_dirs", nargs="*", help="experiment dirs, e.g. exp/*")
    parser.add_argument("--baseline", action="append", default=[],
                        help="system to compare the others with (repeatable)")
    parser.add_argument("--metrics", action=MetricsChoice, default=None,
                        help="tables to print, by metric name, comma-separated or repeated "
                             f"(choices: {', '.join(METRICS)}; default: "
                             f"{','.join(DEFAULT_METRICS)})")
    parser.add_argument("--delta", choices=["abs", "rel", "both"], default=None,
                        help="the 'vs.' rows: absolute difference, relative change in %% "
                             "or both (default: both for metrics in dB, rel for the others)")
    parser.add_argument("--correction", choices=["holm", "none"], default="holm",
                        help="multiple-comparison correction over the tests of one table "
                             "(default: %(default)s)")
    parser.add_argument("--format", choices=["markdown", "latex"], default="markdown")
    parser.add_argument("--trials", type=int, default=10000,
                        help="approximate randomization trials (SER significance)")
    return parser


def set_key(scores: dict, name: str) -> tuple:
    """Sort key ``(condition, snr, test)`` of a set, from scores.json or its name (a set
    without an SNR sorts after those with one)."""
    match = SET_RE.match(name)
    snr = scores.get("snr_db", match["snr"] if match else None)
    cond = scores.get("condition", match["cond"] if match else "")
    snr = float(snr) if snr is not None else float("inf")
    return (cond or "", snr, match["test"] if match else name)


def load_runs(exp_dirs, prog: str = "make_tables") -> dict:
    """``{system: {seed: run}}`` (systems in the order they first occur, seeds ascending,
    None for a dir without ``_seed<N>``); a run is ``{set: (scores, decode dir)}``.

    Dirs without any ``decode_*/scores.json`` are skipped with a warning on stderr
    that starts with ``prog``.

    Raises:
        ValueError: two dirs are the same run (same system and seed).
    """
    found = {}
    for exp in map(Path, exp_dirs):
        files = sorted(exp.glob("decode_*/scores.json")) if exp.is_dir() else []
        if not files:
            print(f"{prog}: warning: skipping {exp} (no decode_*/scores.json)",
                  file=sys.stderr)
            continue
        match = SEED_RE.match(exp.name)
        system, seed = (match["system"], int(match["seed"])) if match else (exp.name, None)
        runs = found.setdefault(system, {})
        if seed in runs:
            raise ValueError(f"{runs[seed][0]} and {exp} are the same run of {system} "
                             f"({'no seed' if seed is None else f'seed {seed}'}): give each "
                             f"run once, and the runs of a system as <system>_seed<N>")
        run = {}
        for path in files:
            scores = json.loads(path.read_text())
            name = scores.get("set") or path.parent.name[len("decode_"):]
            run[name] = (scores, path.parent)
        runs[seed] = (exp, run)
    ascending = functools.partial(sorted, key=lambda seed: -1 if seed is None else seed)
    return {system: {seed: runs[seed][1] for seed in ascending(runs)}
            for system, runs in found.items()}


def paired_runs(runs_a: dict, runs_b: dict) -> list:
    """``[(seed, run of A, run of B), ...]``: seed k of A with seed k of B (the common
    seeds), or a single run without a seed number with every run of the other."""
    if list(runs_a) == [None]:
        return [(seed, runs_a[None], run) for seed, run in runs_b.items()]
    if list(runs_b) == [None]:
        return [(seed, run, runs_b[None]) for seed, run in runs_a.items()]
    return [(seed, run, runs_b[seed]) for seed, run in runs_a.items() if seed in runs_b]


def value(scores: dict, task, metric, which: str = "enhanced"):
    """The metric from one scores.json (of the system's output, or for a task that
    scores its input, of ``which``: ``noisy``, ``clean`` …), or None when absent."""
    part = scores.get(task.name, {})
    return (part.get(which, {}) if task.scores_input else part).get(metric.name)


def cell_values(runs: dict, name: str, task, metric) -> list:
    """The metric of set ``name`` in every run (seed) that has it."""
    values = [value(run[name][0], task, metric) for run in runs.values() if name in run]
    return [v for v in values if v is not None]


def fmt_values(values: list, digits: int) -> str:
    """``mean ± std`` (ddof=1) over seeds, the value for one run, ``–`` for none."""
    if not values:
        return DASH
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


@functools.lru_cache(maxsize=None)
def read_tsv(path: Path) -> dict:
    """``{utt: row dict}`` of a per-utterance TSV with a header; {} if it is missing
    (read once per path: every comparison of a run reads it)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["utt"]: row for row in csv.DictReader(f, delimiter="\t")}


def randomization_p(pairs: list, name: str, task, metric, trials: int) -> float:
    """Approximate randomization p of the metric's mean over the paired runs on set
    ``name``, each run pair on its common utterances of ``per_utt_<task>.tsv``."""
    tsv = f"per_utt_{task.name}.tsv"
    ref, hyp_a, hyp_b, groups, classes = [], [], [], [], []
    for k, (_, run_a, run_b) in enumerate(pairs):
        a, b = read_tsv(run_a[name][1] / tsv), read_tsv(run_b[name][1] / tsv)
        utts = sorted(set(a) & set(b))
        ref += [a[u]["ref"] for u in utts]
        hyp_a += [a[u]["hyp"] for u in utts]
        hyp_b += [b[u]["hyp"] for u in utts]
        groups += [k] * len(utts)
        classes += [c for c in run_a[name][0].get(task.name, {}).get("classes", [])
                    if c not in classes]
    if not ref:
        return float("nan")
    classes += sorted(set(ref + hyp_a + hyp_b) - set(classes))
    index = {c: i for i, c in enumerate(classes)}
    return approximate_randomization(
        [index[c] for c in ref], np.array([index[c] for c in hyp_a]),
        np.array([index[c] for c in hyp_b]), confusion_metric(metric.compute, len(classes)),
        trials=trials, seed=0, groups=groups)


def wilcoxon_p(pairs: list, name: str, task, metric) -> float:
    """Wilcoxon p over the utterances of set ``name``, each utterance's
    ``enhanced_<metric>`` averaged over the paired runs (NaN when none has it)."""
    tsv, column = f"per_utt_{task.name}.tsv", f"enhanced_{metric.name}"
    tables = [(read_tsv(run_a[name][1] / tsv), read_tsv(run_b[name][1] / tsv))
              for _, run_a, run_b in pairs]
    utts = sorted({u for a, b in tables for u in set(a) & set(b)})

    def scores(table: dict) -> list:
        return [float(table[u][column]) if table.get(u, {}).get(column) else np.nan
                for u in utts]

    if not utts:
        return float("nan")
    return wilcoxon_over_seeds([scores(a) for a, _ in tables], [scores(b) for _, b in tables])


def p_value(pairs: list, name: str, task, metric, trials: int) -> float:
    """Paired p-value of the runs in ``pairs`` that have set ``name``, by the task's
    ``paired_test`` (NaN when no pair has it)."""
    pairs = [p for p in pairs if name in p[1] and name in p[2]]
    if not pairs:
        return float("nan")
    if task.paired_test == "randomization":
        return randomization_p(pairs, name, task, metric, trials)
    return wilcoxon_p(pairs, name, task, metric)


def delta_kind(metric, choice) -> str:
    """``--delta`` for one metric: ``choice``, or by default ``both`` for a metric in dB
    (its relative change explodes near 0 dB) and ``rel`` for the others."""
    return choice or ("both" if metric.unit == "dB" else "rel")


def delta_text(mine: list, theirs: list, metric, delta: str) -> str:
    """``+0.42 dB (+12.0 %)``: the difference of the means over seeds, absolute (in the
    metric's unit and decimals), relative to ``|baseline|`` or both; ``–`` when a side
    has no value, and when the change is relative only and the baseline is 0."""
    if not mine or not theirs:
        return DASH
    difference = np.mean(mine) - np.mean(theirs)
    absolute = f"{difference:+.{metric.digits}f}" + (f" {metric.unit}" if metric.unit else "")
    if np.mean(theirs) == 0:
        return DASH if delta == "rel" else absolute
    relative = f"{difference / abs(np.mean(theirs)) * 100:+.1f} %"
    return {"abs": absolute, "rel": relative, "both": f"{absolute} ({relative})"}[delta]


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
    met; a cell is the value of the first run with those settings on that set. A row
    with no value of the metric (an opt-in metric the oracles were not scored with) is
    left out."""
    found = {}  # oracle -> {settings as sorted JSON: (settings, {set: value})}
    for runs in systems.values():
        for run in runs.values():
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
            if not cells:
                continue
            label = oracle if len(every) == 1 else f"{oracle} ({settings_label(settings, every)})"
            rows.append([label] + [metric.format(cells[n]) if n in cells else DASH for n in sets])
    return rows


def reference_row(systems: dict, sets: list, task, metric, which: str) -> list:
    """``[which, cell, ...]``: the ``which`` part's value (``noisy``, ``clean``) of the
    first run that has it, per set."""
    cells = []
    for name in sets:
        found = [value(run[name][0], task, metric, which) for runs in systems.values()
                 for run in runs.values() if name in run]
        found = [v for v in found if v is not None]
        cells.append(metric.format(found[0]) if found else DASH)
    return [which] + cells


def comparisons(systems: dict, baselines: list) -> list:
    """``[(system, base, paired runs), ...]``: every system after each baseline, in
    row order."""
    return [(system, base, paired_runs(runs, systems[base]))
            for system, runs in systems.items() for base in baselines if base != system]


def build_rows(systems: dict, sets: list, compared: list, table: tuple, args) -> list:
    """Rows ``[label, cell, ...]`` of one table (for a task that scores its input, the
    reference rows first: noisy, clean where scored, the oracle bounds).  The ``vs.``
    cells are marked by their p-values, Holm-adjusted over the table unless
    ``args.correction`` is ``none``."""
    task, metric = table
    rows = []
    if task.scores_input:
        rows.append(reference_row(systems, sets, task, metric, "noisy"))
        clean = reference_row(systems, sets, task, metric, "clean")
        rows += [clean] if any(cell != DASH for cell in clean[1:]) else []
        rows += oracle_rows(systems, sets, task, metric)
    texts, p_values = {}, []
    for system, base, pairs in compared:
        texts[system, base] = [delta_text(cell_values(systems[system], n, task, metric),
                                          cell_values(systems[base], n, task, metric),
                                          metric, delta_kind(metric, args.delta)) for n in sets]
        p_values += [p_value(pairs, n, task, metric, args.trials) for n in sets]
    if args.correction == "holm":
        p_values = holm(p_values)
    marks = iter(significance_mark(p) for p in p_values)
    texts = {key: [text + next(marks) for text in cells] for key, cells in texts.items()}
    for system, runs in systems.items():
        rows.append([system] + [fmt_values(cell_values(runs, n, task, metric), metric.digits)
                                for n in sets])
        rows += [[f"{system} vs. {base}"] + texts[system, base]
                 for base in args.baseline if base != system]
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


def footnotes(systems: dict, compared: list, tables: list, args) -> list:
    """What ``±`` means (any multi-seed system), what the ``vs.`` rows and ``*`` mean, and
    which seeds each test used (when there are comparisons)."""
    notes = []
    seeded = [s for s, runs in systems.items() if len(runs) > 1]
    if seeded:
        notes.append(f"Multi-seed systems ({', '.join(seeded)}) show mean ± std over seeds "
                     f"(ddof=1).")
    if not compared:
        return notes
    by_delta = {}
    for _, metric in tables:
        by_delta.setdefault(delta_kind(metric, args.delta), []).append(metric.title)
    if len(by_delta) == 1:
        notes.append(f"`<system> vs. <baseline>` rows: {DELTA_NOTES[next(iter(by_delta))]}.")
    else:
        notes.append("`<system> vs. <baseline>` rows: " + "; ".join(
            f"{', '.join(titles)}: {DELTA_NOTES[kind]}" for kind, titles in by_delta.items())
            + ".")
    correction = ("after the Holm–Bonferroni adjustment over the tests of each table (its "
                  "sets × compared pairs)" if args.correction == "holm"
                  else "(not corrected for multiple comparisons)")
    tests = "; ".join(
        f"{task.name.upper()}: {TEST_NOTES[task.paired_test].format(trials=args.trials)}"
        for task in dict.fromkeys(task for task, _ in tables))
    notes.append(f"`*`: p < 0.05 {correction}, in a two-sided paired test using every "
                 f"seed: {tests}. Seed k of a system is paired with seed k of the other; "
                 f"a single run without a seed number with every seed of the other. The "
                 f"tests sample utterances, not training runs: the spread over seeds is the "
                 f"± std.")
    for system, base, pairs in compared:
        seeds = [seed for seed, _, _ in pairs]
        if set(systems[system]) == set(systems[base]) or [None] in (list(systems[system]),
                                                                    list(systems[base])):
            continue
        notes.append(f"{system} vs. {base}: " + (
            f"tested on their common seeds {', '.join(map(str, seeds))} only."
            if seeds else "no common seed, not tested."))
    return notes


def main(argv=None) -> int:
    """Print the tables; 1 when no exp dir has scores, a baseline or metric is unknown, two
    dirs are the same run or ``--trials`` is below 1."""
    args = get_parser().parse_args(argv)
    if args.trials < 1:
        print(f"make_tables: error: --trials must be at least 1, got {args.trials}",
              file=sys.stderr)
        return 1
    names = args.metrics or DEFAULT_METRICS
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        print(f"make_tables: error: unknown metric(s) {', '.join(unknown)}; choices: "
              f"{', '.join(METRICS)}", file=sys.stderr)
        return 1
    try:
        systems = load_runs(args.exp_dirs)
    except ValueError as e:
        print(f"make_tables: error: {e}", file=sys.stderr)
        return 1
    if not systems:
        print("make_tables: error: no exp dir with decode_*/scores.json given "
              f"({len(args.exp_dirs)} path(s))", file=sys.stderr)
        return 1
    unknown = [b for b in args.baseline if b not in systems]
    if unknown:
        print(f"make_tables: error: unknown baseline(s) {', '.join(unknown)}; systems: "
              f"{', '.join(systems)}", file=sys.stderr)
        return 1
    keys = {name: set_key(scores, name) for runs in systems.values() for run in runs.values()
            for name, (scores, _) in run.items()}
    splits = {}
    for name in sorted(keys, key=lambda n: keys[n]):
        splits.setdefault(keys[name][2], []).append(name)
    tables = [METRICS[n] for n in names]
    compared = comparisons(systems, args.baseline)
    blocks = []
    for task, metric in tables:
        for test in sorted(splits):
            # sets no run scored with this metric (DNSMOS on a subset) are left out,
            # unless none has it: then the dashes say so
            sets = [n for n in splits[test]
                    if any(cell_values(runs, n, task, metric) for runs in systems.values())]
            sets = sets or splits[test]
            title = metric.heading + (f", {test}" if len(splits) > 1 else "")
            header = ["system"] + [f"{keys[n][1]:g} dB {keys[n][0]}".rstrip() for n in sets]
            rows = build_rows(systems, sets, compared, (task, metric), args)
            blocks.append(render(title, header, rows, args.format))
    notes = footnotes(systems, compared, tables, args)
    if notes:
        latex = args.format == "latex"
        blocks.append(("\n" if latex else "\n\n").join(("% " if latex else "") + n
                                                        for n in notes))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
