"""merit.bin.make_tables on hand-written score trees.

The scores.json numbers are hand-chosen means; the per-utterance files are written
separately to drive the significance tests: with 6 utterances the smallest possible
two-sided p is 2/64 ≈ 0.031 for both tests, reached when one system beats the other on
every utterance (and, for Wilcoxon, the differences have distinct sizes).
"""
import json

import pytest

from merit.bin.make_tables import main

SEEN, UNSEEN = "test1_snr0_seen", "test1_snr-5_unseen"
UTTS = [f"utt{i}" for i in range(1, 7)]
REFS = ["A", "S", "H", "N", "A", "S"]
WRONG = ["S", "H", "N", "A", "S", "H"]  # wrong on every utterance
BASE_SE = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
BETTER_SE = [v + 0.1 * (i + 1) for i, v in enumerate(BASE_SE)]  # better on every utt
NOISY = {SEEN: {"ssnr": 1.0, "pesq": 1.10, "stoi": 0.700},
         UNSEEN: {"ssnr": -2.0, "pesq": 1.05, "stoi": 0.600}}

# run dir -> set -> (macro-F1, SSNR, PESQ, STOI of the enhanced output, hyps, per-utt SE)
BASE = {SEEN: (0.400, 5.0, 1.50, 0.800, WRONG, BASE_SE),
        UNSEEN: (0.250, 2.0, 1.20, 0.700, WRONG, BASE_SE)}
RUNS = {
    "base": BASE,
    # seed 1 beats the baseline on every utterance; seed 2 equals it utterance by
    # utterance, so a star proves the test uses the first seed
    "merit_seed1": {SEEN: (0.500, 6.0, 1.80, 0.850, REFS, BETTER_SE),
                    UNSEEN: (0.300, 3.0, 1.40, 0.750, REFS, BETTER_SE)},
    "merit_seed2": {SEEN: (0.600, 7.0, 2.00, 0.870, WRONG, BASE_SE),
                    UNSEEN: (0.350, 4.0, 1.60, 0.770, WRONG, BASE_SE)},
}


def write_run(exp, sets, ser=True, se=True):
    """One exp dir with decode_<set>/{scores.json, per_utt_ser.tsv, per_utt_se.tsv}."""
    for name, (f1, ssnr, pesq, stoi, hyps, per_utt) in sets.items():
        d = exp / f"decode_{name}"
        d.mkdir(parents=True)
        snr, cond = name.split("_snr")[1].split("_")
        scores = {"set": name, "snr_db": snr, "condition": cond,
                  "se": {"count": 6, "noisy": {**NOISY[name], "estoi": 0.5, "si_sdr": 0.0}}}
        if se:
            scores["se"]["enhanced"] = {"ssnr": ssnr, "pesq": pesq, "stoi": stoi,
                                        "estoi": 0.6, "si_sdr": 1.0}
        if ser:
            scores["ser"] = {"count": 6, "macro_f1": f1, "classes": ["A", "S", "H", "N"]}
            (d / "per_utt_ser.tsv").write_text("utt\tref\thyp\n" + "".join(
                f"{u}\t{r}\t{h}\n" for u, r, h in zip(UTTS, REFS, hyps)))
        (d / "scores.json").write_text(json.dumps(scores))
        cols = ["noisy_ssnr", "noisy_pesq"] + (["enhanced_ssnr", "enhanced_pesq",
                                                 "enhanced_stoi"] if se else [])
        lines = ["utt\t" + "\t".join(cols)]
        lines += [f"{u}\t0.5\t1.0" + (f"\t{v:.4f}" * 3 if se else "")
                  for u, v in zip(UTTS, per_utt)]
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
"""


def test_markdown_tables_exact(tree, capsys):
    code, out, err = run(capsys, sorted(tree.iterdir()))
    assert code == 0 and err == ""
    assert out == EXPECTED  # columns: condition, then SNR; seeds as mean ± std (ddof=1)


def test_baseline_relative_change_and_significance(tree, capsys):
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--baseline", "base")
    assert code == 0
    lines = out.splitlines()
    # (0.55 − 0.40)/0.40 = +37.5 %, (0.325 − 0.25)/0.25 = +30.0 %; first seed beats the
    # baseline on all 6 utterances → p ≈ 2/64 < 0.05
    assert "| merit vs. base | +37.5 %* | +30.0 %* |" in lines
    assert "| merit vs. base | +30.0 %* | +75.0 %* |" in lines  # SSNR 6.5/5, 3.5/2
    assert "| merit vs. base | +26.7 %* | +25.0 %* |" in lines  # PESQ 1.9/1.5, 1.5/1.2
    assert "| merit vs. base | +7.5 %* | +8.6 %* |" in lines  # STOI .86/.80, .76/.70
    assert "base vs. base" not in out
    assert "use the first seed" in out and "merit" in out.splitlines()[-1]


def test_identical_systems_not_significant(tree, capsys):
    write_run(tree / "copy", BASE)
    code, out, _ = run(capsys, [tree / "base", tree / "copy"], "--baseline", "base",
                       "--trials", "2000")
    assert code == 0
    assert out.count("| copy vs. base | +0.0 % | +0.0 % |") == 4
    assert "first seed" not in out  # no multi-seed system


def test_two_baselines(tree, capsys):
    write_run(tree / "copy", BASE)
    code, out, _ = run(capsys, sorted(tree.iterdir()), "--baseline", "base",
                       "--baseline", "copy", "--trials", "2000")
    assert code == 0
    assert out.count("| merit vs. copy | +37.5 %* | +30.0 %* |") == 1
    assert out.count("| copy vs. base | +0.0 % | +0.0 % |") == 4
    assert out.count("| base vs. copy | +0.0 % | +0.0 % |") == 4


def test_missing_cells_and_skipped_dirs(tree, capsys):
    write_run(tree / "ser_only", {SEEN: BASE[SEEN]}, se=False)
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
    assert "|" not in out


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
