"""merit.bin.make_tables on hand-written score trees.

The scores.json numbers are hand-chosen means; the per-utterance files are written
separately to drive the significance tests.  With 24 utterances a system that beats
the other on every one gets p = 2/2^24 from Wilcoxon (the differences have distinct
sizes) and the smallest p, 1/(trials + 1), from approximate randomization: far below
0.05 after the Holm correction over a table's few tests.
"""
import json

import numpy as np
import pytest

from merit.bin import make_tables
from merit.bin.make_tables import main
from merit.tasks.task_specs import REPORTED

SEEN, UNSEEN = "test1_snr0_seen", "test1_snr-5_unseen"
CLASSES = ["A", "S", "H", "N"]
UTTS = [f"utt{i:02d}" for i in range(1, 25)]
REFS = CLASSES * 6
WRONG = [CLASSES[(CLASSES.index(r) + 1) % 4] for r in REFS]  # wrong on every utterance
BASE_SE = [float(i) for i in range(1, 25)]


def right_on(k):
    """Right on the first k utterances (k/4 per class), wrong on the rest: each class
    is predicted 6 times, k/4 of them right, so every F1 and the macro-F1 are k/24."""
    return REFS[:k] + WRONG[k:]



def shifted(step):
    """BASE_SE + step, 2·step, …: better (or worse) on every utterance, distinct sizes."""
    return [v + step * (i + 1) for i, v in enumerate(BASE_SE)]


NOISY = {"ssnr": 1.0, "pesq": 1.10, "stoi": 0.700}
NOISY_UNSEEN = {"ssnr": -2.0, "pesq": 1.05, "stoi": 0.600}

# run dir -> set -> (macro-F1, SSNR, PESQ, STOI of the enhanced output, hyps, per-utt SE)
BASE = {SEEN: (0.400, 5.0, 1.50, 0.800, WRONG, BASE_SE),
        UNSEEN: (0.250, 2.0, 1.20, 0.700, WRONG, BASE_SE)}
RUNS = {
    "base": BASE,
    # seed 1 beats the baseline on every utterance, seed 2 equals it utterance by
    # utterance: over both seeds merit is still better on every utterance
    "merit_seed1": {SEEN: (0.500, 6.0, 1.80, 0.850, REFS, shifted(0.1)),
                    UNSEEN: (0.300, 3.0, 1.40, 0.750, REFS, shifted(0.1))},
    "merit_seed2": {SEEN: (0.600, 7.0, 2.00, 0.870, WRONG, BASE_SE),
                    UNSEEN: (0.350, 4.0, 1.60, 0.770, WRONG, BASE_SE)},
}


def write_run(exp, sets, extra=None):
    """One exp dir with decode_<set>/{scores.json, per_utt_ser.tsv, per_utt_se.tsv};
    hyps None: no SER output; per-utt SE None: no enhanced output.  ``extra`` is merged
    into each scores.json's ``se`` part."""
    for name, (f1, ssnr, pesq, stoi, hyps, per_utt) in sets.items():
        d = exp / f"decode_{name}"
        d.mkdir(parents=True)
        snr, cond = name.split("_snr")[1].split("_")
        noisy = NOISY_UNSEEN if name == UNSEEN else NOISY
        scores = {"set": name, "snr_db": snr, "condition": cond,
                  "se": {"count": len(UTTS), "noisy": {**noisy, "estoi": 0.5, "si_sdr": 0.0},
                         **(extra or {})}}
        if per_utt is not None:
            scores["se"]["enhanced"] = {"ssnr": ssnr, "pesq": pesq, "stoi": stoi,
                                        "estoi": 0.6, "si_sdr": 1.0}
        if hyps is not None:
            scores["ser"] = {"count": len(UTTS), "macro_f1": f1, "uar": f1 + 0.01,
                             "classes": CLASSES}
            (d / "per_utt_ser.tsv").write_text("utt\tref\thyp\n" + "".join(
                f"{u}\t{r}\t{h}\n" for u, r, h in zip(UTTS, REFS, hyps)))
        (d / "scores.json").write_text(json.dumps(scores))
        cols = ["noisy_ssnr", "noisy_pesq"] + (["enhanced_ssnr", "enhanced_pesq",
                                                 "enhanced_stoi"] if per_utt is not None else [])
        lines = ["utt\t" + "\t".join(cols)]
        if per_utt is None:
            lines += [f"{u}\t0.5\t1.0" for u in UTTS]
        else:  # as many utterances as values
            lines += [f"{u}\t0.5\t1.0" + f"\t{v:.4f}" * 3 for u, v in zip(UTTS, per_utt)]
        (d / "per_utt_se.tsv").write_text("\n".join(lines) + "\n")
    return exp


@pytest.fixture
def tree(tmp_path):
    for name, sets in RUNS.items():
        write_run(tmp_path / name, sets)
    return tmp_path


def run(capsys, dirs, *options):
    code = main([str(d) for d in dirs] + list(options))
    out, err = capsys.readouterr()
    return code, out, err


EXPECTED = """\
### SER macro-F1

| system | 0 dB seen | -5 dB unseen |
|---|---|---|
| base | 0.400 | 0.250 |
| merit | 0.550 ± 0.071 | 0.325 ± 0.035 |

### SSNR (dB)

| system | 0 dB seen | -5 dB unseen |
|---|---|---|
| noisy | 1.00 | -2.00 |
| base | 5.00 | 2.00 |
| merit | 6.50 ± 0.71 | 3.50 ± 0.71 |

### PESQ

| system | 0 dB seen | -5 dB unseen |
|---|---|---|
| noisy | 1.10 | 1.05 |
| base | 1.50 | 1.20 |
| merit | 1.90 ± 0.14 | 1.50 ± 0.14 |

### STOI

| system | 0 dB seen | -5 dB unseen |
|---|---|---|
| noisy | 0.700 | 0.600 |
| base | 0.800 | 0.700 |
| merit | 0.860 ± 0.014 | 0.760 ± 0.014 |

Multi-seed systems (merit) show mean ± std over seeds (ddof=1).
"""


def test_markdown_tables_exact(tree, capsys):
    code, out, err = run(capsys, sorted(tree.iterdir()))
    assert code == 0 and err == ""
    # columns: condition, then SNR; seeds as mean ± std (ddof=1), said even without baselines
    assert out == EXPECTED


def test_baseline_change_and_significance(tree, capsys):
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--baseline", "base")
    assert code == 0
    lines = out.splitlines()
    # (0.55 − 0.40)/0.40 = +37.5 %, (0.325 − 0.25)/0.25 = +30.0 %; merit is better on
    # every utterance averaged over its seeds (the unseeded base pairs with each seed)
    assert "| merit vs. base | +37.5 %* | +30.0 %* |" in lines
    # SSNR in dB: the absolute difference beside the relative change
    assert "| merit vs. base | +1.50 dB (+30.0 %)* | +1.50 dB (+75.0 %)* |" in lines
    assert "| merit vs. base | +26.7 %* | +25.0 %* |" in lines  # PESQ 1.9/1.5, 1.5/1.2
    assert "| merit vs. base | +7.5 %* | +8.6 %* |" in lines  # STOI .86/.80, .76/.70
    assert "base vs. base" not in out
    notes = out.split("\n\n")[-3:]
    assert notes[0].startswith("Multi-seed systems (merit) show mean ± std")
    assert notes[1] == (
        "`<system> vs. <baseline>` rows: SER macro-F1, PESQ, STOI: the relative change of "
        "the means over seeds, (system − baseline) / |baseline|, in %; SSNR: the "
        "difference of the means over seeds, system − baseline, in the metric's unit, and "
        "(in brackets) as % of |baseline|.")
    assert "Holm–Bonferroni" in notes[2] and "every seed" in notes[2]
    assert "SER: approximate randomization (10000 trials)" in notes[2]
    assert "SE: Wilcoxon signed-rank over the utterances" in notes[2]
    assert "first seed" not in out


def test_delta_choices(tree, capsys):
    dirs = sorted(tree.iterdir())
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--delta", "abs")
    assert code == 0
    assert "| merit vs. base | +0.150* | +0.075* |" in out  # macro-F1, 3 decimals
    assert "| merit vs. base | +1.50 dB* | +1.50 dB* |" in out
    assert "| merit vs. base | +0.40* | +0.30* |" in out  # PESQ has no unit
    assert "rows: the difference of the means over seeds, system − baseline, in the " \
           "metric's unit." in out
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--delta", "rel")
    assert "| merit vs. base | +30.0 %* | +75.0 %* |" in out and " dB*" not in out
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--delta", "both")
    assert "| merit vs. base | +0.150 (+37.5 %)* | +0.075 (+30.0 %)* |" in out


def test_delta_against_a_zero_baseline(tmp_path, capsys):
    zero = {SEEN: (0.0, 0.0, 1.50, 0.800, WRONG, BASE_SE)}
    write_run(tmp_path / "base", zero)
    write_run(tmp_path / "sys", {SEEN: (0.1, 1.0, 1.50, 0.800, WRONG, BASE_SE)})
    dirs = [tmp_path / "base", tmp_path / "sys"]
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--metrics", "ssnr")
    assert "| sys vs. base | +1.00 dB |" in out  # the relative change is undefined
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--metrics", "ssnr,macro_f1",
                       "--delta", "rel")
    assert out.count("| sys vs. base | – |") == 2


def seeded(tmp_path, name, seeds):
    """Runs ``<name>_seed<k>`` on SEEN from ``{k: (macro-F1, SSNR, hyps, per-utt SE)}``."""
    for k, (f1, ssnr, hyps, per_utt) in seeds.items():
        write_run(tmp_path / f"{name}_seed{k}", {SEEN: (f1, ssnr, 1.5, 0.8, hyps, per_utt)})
    return [tmp_path / f"{name}_seed{k}" for k in seeds]


def test_all_seeds_decide_not_the_first(tmp_path, capsys):
    # b: macro-F1 2/3 and SE = BASE_SE in every seed.  tie: seed 1 beats b on every
    # utterance b gets wrong and on every SE value; seeds 2 and 3 lose to b by half as
    # much: over the seeds they are equal (macro-F1 mean 2/3; each utterance's SE mean
    # that of b).  loses: seed 1 as tie's, seeds 2 and 3 lose twice as much: over the
    # seeds b is better.
    b = seeded(tmp_path, "b", {k: (2 / 3, 5.0, right_on(16), BASE_SE) for k in (1, 2, 3)})
    first = {1: (1.0, 7.0, REFS, shifted(2.0))}
    tie = seeded(tmp_path, "tie", {**first, 2: (0.5, 4.0, right_on(12), shifted(-1.0)),
                                   3: (0.5, 4.0, right_on(12), shifted(-1.0))})
    loses = seeded(tmp_path, "loses", {**first, 2: (0.0, 3.0, WRONG, shifted(-2.0)),
                                       3: (0.0, 3.0, WRONG, shifted(-2.0))})
    options = ("--baseline", "b", "--metrics", "macro_f1,ssnr", "--delta", "abs")
    code, out, _ = run(capsys, b + tie + loses, *options)
    assert code == 0
    lines = out.splitlines()
    assert "| tie vs. b | +0.000 |" in lines  # SER: means over seeds equal, p = 1
    assert "| tie vs. b | +0.00 dB |" in lines  # SE: averaged over seeds, no difference
    assert "| loses vs. b | -0.333* |" in lines  # 1/3 − 2/3 over the seeds: b better
    assert "| loses vs. b | -0.67 dB* |" in lines
    # seed 1 alone says the opposite: tie and loses better than b, significantly
    code, out, _ = run(capsys, [b[0], tie[0], loses[0]], *options)
    lines = out.splitlines()
    assert "| tie vs. b | +0.333* |" in lines and "| loses vs. b | +0.333* |" in lines
    assert "| tie vs. b | +2.00 dB* |" in lines and "| loses vs. b | +2.00 dB* |" in lines


def test_all_seed_p_values_direct(tmp_path):
    # the construction above through p_value: significant for seed 1 alone (A better)
    # and for all seeds (B better), in SER and SE
    b = seeded(tmp_path, "b", {k: (2 / 3, 5.0, right_on(16), BASE_SE) for k in (1, 2, 3)})
    loses = seeded(tmp_path, "loses", {1: (1.0, 7.0, REFS, shifted(2.0)),
                                       2: (0.0, 3.0, WRONG, shifted(-2.0)),
                                       3: (0.0, 3.0, WRONG, shifted(-2.0))})
    systems = make_tables.load_runs(b + loses)
    pairs = make_tables.paired_runs(systems["loses"], systems["b"])
    assert [seed for seed, _, _ in pairs] == [1, 2, 3]
    for task in REPORTED:
        metric = task.metrics[0]  # macro-F1, SSNR
        assert make_tables.p_value(pairs[:1], SEEN, task, metric, 2000) < 0.05
        assert make_tables.p_value(pairs, SEEN, task, metric, 2000) < 0.01
    se = next(t for t in REPORTED if t.name == "se")
    # each utterance's mean difference over the seeds is (2 − 2 − 2)/3 · i < 0
    assert make_tables.p_value(pairs, SEEN, se, se.metrics[0], 0) == pytest.approx(2 / 2 ** 24)


def test_seeds_paired_by_number(tmp_path, capsys):
    b = seeded(tmp_path, "b", {k: (1 / 3, 5.0, right_on(8), BASE_SE) for k in (1, 2, 3)})
    # c has seeds 2 and 3; seed 2 equals b's, seed 3 is better: tested on seeds 2 and 3
    c = seeded(tmp_path, "c", {2: (1 / 3, 5.0, right_on(8), BASE_SE),
                               3: (1.0, 6.0, REFS, shifted(1.0))})
    d = seeded(tmp_path, "d", {5: (1.0, 6.0, REFS, shifted(1.0))})
    code, out, _ = run(capsys, b + c + d, "--baseline", "b", "--metrics", "ssnr")
    assert code == 0
    assert "c vs. b: tested on their common seeds 2, 3 only." in out
    assert "d vs. b: no common seed, not tested." in out
    assert "| c vs. b | +0.50 dB (+10.0 %)* |" in out
    assert "| d vs. b | +1.00 dB (+20.0 %) |" in out  # no test, so no mark
    code, err = main([str(b[0]), str(b[0])]), capsys.readouterr().err
    assert code == 1 and "are the same run of b (seed 1)" in err


def test_holm_correction(tmp_path, capsys):
    # 6 utterances: better on every one gives the exact Wilcoxon p = 2/64 ≈ 0.031 in
    # each of the two sets; Holm over the table's 2 tests: 0.0625, no mark
    six = BASE_SE[:6]
    better = shifted(0.1)[:6]
    write_run(tmp_path / "base", {n: (0.4, 5.0, 1.5, 0.8, None, six) for n in (SEEN, UNSEEN)})
    write_run(tmp_path / "sys", {n: (0.4, 6.0, 1.5, 0.8, None, better) for n in (SEEN, UNSEEN)})
    dirs = [tmp_path / "base", tmp_path / "sys"]
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--metrics", "ssnr")
    assert "| sys vs. base | +1.00 dB (+20.0 %) | +1.00 dB (+20.0 %) |" in out
    assert "p < 0.05 after the Holm–Bonferroni adjustment over the tests of each table" in out
    code, out, _ = run(capsys, dirs, "--baseline", "base", "--metrics", "ssnr",
                       "--correction", "none")
    assert "| sys vs. base | +1.00 dB (+20.0 %)* | +1.00 dB (+20.0 %)* |" in out
    assert "p < 0.05 (not corrected for multiple comparisons), in" in out


def test_one_table_per_test_split(tmp_path, capsys):
    sets = {f"test{t}_snr{snr}_{cond}": (0.4, 5.0 + t, 1.5, 0.8, WRONG, BASE_SE)
            for t in (1, 2) for snr in (-5, 0) for cond in ("seen", "unseen")}
    write_run(tmp_path / "base", {n: v for n, v in sets.items()})
    better = {n: (0.5, 6.0 + int(n[4]), 1.5, 0.8, REFS, shifted(0.1)) for n in sets}
    write_run(tmp_path / "sys", better)
    code, out, _ = run(capsys, [tmp_path / "base", tmp_path / "sys"], "--baseline", "base",
                       "--metrics", "ssnr")
    assert code == 0
    titles = [line for line in out.splitlines() if line.startswith("### ")]
    assert titles == ["### SSNR (dB), test1", "### SSNR (dB), test2"]
    test1, test2 = out.split("### ")[1:]
    header = "| system | -5 dB seen | 0 dB seen | -5 dB unseen | 0 dB unseen |"
    assert header in test1.splitlines() and header in test2.splitlines()
    assert "| base | 6.00 | 6.00 | 6.00 | 6.00 |" in test1
    assert "| base | 7.00 | 7.00 | 7.00 | 7.00 |" in test2
    # 4 tests per table: Holm multiplies the smallest by 4, still far below 0.05
    assert test2.count("+1.00 dB (+14.3 %)*") == 4


def test_metrics_option(tree, capsys):
    dirs = sorted(tree.iterdir())
    code, out, _ = run(capsys, dirs, "--metrics", "uar,si_sdr", "--metrics", "ssnr,uar")
    assert code == 0
    titles = [line for line in out.splitlines() if line.startswith("### ")]
    assert titles == ["### UAR", "### SI-SDR (dB)", "### SSNR (dB)"]  # as asked, once each
    assert "| base | 0.410 | 0.260 |" in out  # UAR from scores.json
    assert "| noisy | 0.00 | 0.00 |\n| base | 1.00 | 1.00 |" in out  # SI-SDR
    # a metric no run has: dashes
    code, out, _ = run(capsys, dirs, "--metrics", "lsd")
    assert code == 0 and "| base | – | – |" in out and "| merit | – | – |" in out
    code, out, err = run(capsys, dirs, "--metrics", "pesq,nope")
    assert code == 1 and out == ""
    assert "unknown metric(s) nope; choices: macro_f1, micro_f1, uar, accuracy, ssnr" in err
    assert "--metrics" in make_tables.get_parser().format_help()
    assert "macro_f1,ssnr,pesq,stoi" in make_tables.get_parser().format_help()


def test_uar_significance_by_its_own_metric(tree, capsys):
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--metrics", "uar",
                       "--baseline", "base")
    assert code == 0
    # (0.56 − 0.41)/0.41, (0.335 − 0.26)/0.26; tested on UAR itself
    assert "| merit vs. base | +36.6 %* | +28.8 %* |" in out


def test_clean_reference_row(tmp_path, capsys):
    # the scores of the clean reference (a non-intrusive metric) give a row after noisy
    write_run(tmp_path / "base", BASE, extra={"clean": {"pesq": 4.64}})
    code, out, _ = run(capsys, [tmp_path / "base"], "--metrics", "pesq,ssnr")
    assert code == 0
    assert "| noisy | 1.10 | 1.05 |\n| clean | 4.64 | 4.64 |\n| base | 1.50 | 1.20 |" in out
    assert out.split("### ")[2].count("clean") == 0  # none for SSNR


def test_identical_systems_not_significant(tree, capsys):
    write_run(tree / "copy", BASE)
    code, out, _ = run(capsys, [tree / "base", tree / "copy"], "--baseline", "base",
                       "--trials", "2000")
    assert code == 0
    assert out.count("| copy vs. base | +0.0 % | +0.0 % |") == 3
    assert out.count("| copy vs. base | +0.00 dB (+0.0 %) | +0.00 dB (+0.0 %) |") == 1
    assert "Multi-seed" not in out  # no multi-seed system


def test_two_baselines(tree, capsys):
    write_run(tree / "copy", BASE)
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--baseline", "base",
                       "--baseline", "copy", "--trials", "2000")
    assert code == 0
    assert out.count("| merit vs. copy | +37.5 %* | +30.0 %* |") == 1
    assert out.count("| copy vs. base | +0.0 % | +0.0 % |") == 3
    assert out.count("| base vs. copy | +0.0 % | +0.0 % |") == 3


def test_missing_cells_and_skipped_dirs(tree, capsys):
    write_run(tree / "ser_only", {SEEN: BASE[SEEN][:5] + (None,)})
    (tree / "empty").mkdir()
    code, out, err = run(capsys, [tree / "base", tree / "ser_only", tree / "empty"],
                         "--baseline", "base", "--trials", "2000")
    assert code == 0
    assert "skipping" in err and str(tree / "empty") in err and "base" not in err
    lines = out.splitlines()
    assert "| ser_only | 0.400 | – |" in lines
    assert lines.count("| ser_only | – | – |") == 3  # no enhanced output
    assert lines.count("| ser_only vs. base | – | – |") == 3
    assert "| ser_only vs. base | +0.0 % | – |" in lines


def test_latex(tree, capsys):
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--format", "latex",
                       "--baseline", "base", "--trials", "2000")
    assert code == 0
    assert out.count(r"\begin{tabular}{lcc}") == 4 and out.count(r"\end{tabular}") == 4
    assert r"\toprule" in out and r"\bottomrule" in out
    assert r"merit & 0.550 $\pm$ 0.071 & 0.325 $\pm$ 0.035 \\" in out
    assert r"merit vs. base & +37.5 \%* & +30.0 \%* \\" in out
    assert r"merit vs. base & +1.50 dB (+30.0 \%)* & +1.50 dB (+75.0 \%)* \\" in out
    assert "|" not in out.replace("|baseline|", "")  # only the footnotes' |baseline|


def test_no_usable_dirs_exit_1(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, [tmp_path / "empty", tmp_path / "missing"])
    assert code == 1 and out == ""
    assert "no exp dir with decode_*/scores.json" in err
    assert str(tmp_path / "empty") in err and str(tmp_path / "missing") in err
    code, out, err = run(capsys, [])
    assert code == 1 and "error" in err


def test_unknown_baseline_exit_1(tree, capsys):
    code, _, err = run(capsys, [tree / "base"], "--baseline", "nope")
    assert code == 1 and "nope" in err
    code, _, err = run(capsys, [tree / "base"], "--trials", "0")
    assert code == 1 and "--trials must be at least 1, got 0" in err


STFT = {"n_fft": 400, "win_length": 400, "hop_length": 160, "window": "hamming"}


def add_oracles(exp, mask_domain, mask_pesq, magnitude_pesq):
    """Oracle rows (score --oracle_config) in every scores.json of ``exp``: PESQ as given
    for each set (SEEN, UNSEEN), the other metrics 0."""
    for name, mask, magnitude in zip((SEEN, UNSEEN), mask_pesq, magnitude_pesq):
        path = exp / f"decode_{name}" / "scores.json"
        scores = json.loads(path.read_text())
        zero = dict.fromkeys(("ssnr", "stoi", "estoi", "si_sdr"), 0.0)
        scores["se"]["oracle_mask"] = {**zero, "pesq": mask}
        scores["se"]["oracle_magnitude"] = {**zero, "pesq": magnitude}
        scores["se"]["oracle_settings"] = {
            "oracle_mask": {**STFT, "mask_domain": mask_domain, "mask_floor": 0.0},
            "oracle_magnitude": STFT}
        path.write_text(json.dumps(scores))


def test_oracle_rows_follow_noisy_one_per_mask_family(tree, capsys):
    # base and merit seed 1 share the log1p family (the first run met gives the cell),
    # merit seed 2 masks magnitudes; the magnitude oracle is the same for all
    add_oracles(tree / "base", "log1p", (3.01, 2.51), (3.51, 3.01))
    add_oracles(tree / "merit_seed1", "log1p", (3.02, 2.52), (3.52, 3.02))
    add_oracles(tree / "merit_seed2", "magnitude", (3.21, 2.71), (3.53, 3.03))
    code, out, _ = run(capsys, sorted(tree.iterdir()))
    assert code == 0
    assert out.split("### ")[3] == """\
PESQ

| system | 0 dB seen | -5 dB unseen |
|---|---|---|
| noisy | 1.10 | 1.05 |
| oracle_mask (log1p) | 3.01 | 2.51 |
| oracle_mask (magnitude) | 3.21 | 2.71 |
| oracle_magnitude | 3.51 | 3.01 |
| base | 1.50 | 1.20 |
| merit | 1.90 ± 0.14 | 1.50 ± 0.14 |

"""
    for table in out.split("### ")[2:]:  # every SE table, none in the SER one
        labels = [line.split(" | ")[0] for line in table.splitlines()[4:8]]
        assert labels == ["| noisy", "| oracle_mask (log1p)", "| oracle_mask (magnitude)",
                          "| oracle_magnitude"], table
    assert "oracle" not in out.split("### ")[1]
    # one family: plain labels (runs scored without oracles add none: EXPECTED above)
    code, out, _ = run(capsys, [tree / "base", tree / "merit_seed1"])
    assert "| oracle_mask | 3.01 | 2.51 |\n| oracle_magnitude | 3.51 | 3.01 |\n| base |" in out


def test_no_oracle_row_for_a_metric_the_oracles_lack(tree, capsys):
    """The oracles were scored without LSD here (like an opt-in metric scored later
    without --oracle_config): the LSD table has no oracle rows, the PESQ table has them."""
    add_oracles(tree / "base", "log1p", (3.01, 2.51), (3.51, 3.01))
    code, out, _ = run(capsys, [tree / "base"], "--metrics", "pesq,lsd")
    assert code == 0
    pesq, lsd = out.split("### ")[1:3]
    assert "| oracle_mask | 3.01 | 2.51 |" in pesq
    assert lsd.startswith("LSD") and "oracle" not in lsd


def test_a_set_without_the_metric_has_no_column(tmp_path, capsys):
    """DNSMOS scored on one set only (a subset, as RESULTS.md's): its table has that
    set's column and no column of dashes for the other."""
    write_run(tmp_path / "base", BASE)
    scores_file = tmp_path / "base" / f"decode_{UNSEEN}" / "scores.json"
    scores = json.loads(scores_file.read_text())
    scores["se"]["noisy"]["dnsmos_ovrl"] = 2.10
    scores["se"]["enhanced"]["dnsmos_ovrl"] = 2.60
    scores_file.write_text(json.dumps(scores))
    code, out, _ = run(capsys, [tmp_path / "base"], "--metrics", "dnsmos_ovrl,pesq")
    assert code == 0
    dnsmos, pesq = out.split("### ")[1:3]
    assert "| system | -5 dB unseen |\n" in dnsmos and "| base | 2.60 |" in dnsmos
    assert "| system | 0 dB seen | -5 dB unseen |" in pesq  # every set has PESQ
