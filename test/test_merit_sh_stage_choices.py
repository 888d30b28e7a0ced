"""merit.sh stages 4-6 train on the right data from the right starting point, decode the
right checkpoint on the right sets, and score them.

The template's merit.sh runs in a recipe tree. The ``python3`` it finds on PATH records
the feature dumps of stage 3, the training launches of stage 4 and the merit.bin steps of stages 5 and 6 (decoding,
scoring, plots, RESULTS.md, tables) instead of running them, and runs everything else
(config composition and look-ups) with the real interpreter; the recorded command lines
show what each model trains on and from, which checkpoint stage 5 decodes, from which
data into which dirs, and what stage 6 scores.
"""
import pytest

from recipe_tree import (make_recipe_tree, option_values, recorded_calls, recording_python,
                         trained_exp)

RECORDED = ("espnet2.bin.launch", "merit.bin.dump_ssl", "merit.bin.merit_inference", "merit.bin.score",
            "merit.bin.plot_decodes", "merit.bin.results_md", "merit.bin.make_tables",
            "merit.bin.make_report")
EXP = "exp/sparse_merit_fbank_seed1"
NOISY_TEST_SETS = [f"test_snr{snr}_{cond}" for cond in ("seen", "unseen") for snr in (0, 10)]
SETS_OPTIONS = ["--train_set", "train", "--valid_set", "dev", "--test_sets", "test",
                "--test_snrs", "0 10", "--test_conditions", "seen unseen", "--nj", "2"]


@pytest.fixture
def recipe(tmp_path):
    """(recipe dir, env, calls file): the template recipe with one trained experiment whose
    config names two best-model criteria, and a recording python3 first on PATH."""
    root = tmp_path / "merit"
    make_recipe_tree(root)
    recipe_dir = root / "egs" / "TEMPLATE" / "merit"
    exp = recipe_dir / EXP
    trained_exp(exp, [["valid", "loss", "min"], ["valid", "macro_f1", "max"]])
    (exp / "checkpoint.pth").touch()
    calls = tmp_path / "calls.txt"
    env = recording_python(tmp_path / "recording_env", RECORDED, calls)
    return recipe_dir, env, calls


def test_stage5_decodes_the_first_criterion_checkpoint_on_the_noisy_test_sets(recipe, run_tool):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "5", *SETS_OPTIONS],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    decodes = recorded_calls(calls, "merit.bin.merit_inference")
    assert len(decodes) == 3  # jobs 1 and 2, then the merge
    for args in decodes:
        assert option_values(args, "--model_dir") == [EXP]
        assert option_values(args, "--checkpoint") == ["valid.loss.best.pth"]
        assert option_values(args, "--data_dir") == [f"data/{s}" for s in NOISY_TEST_SETS]
        assert option_values(args, "--feats_dir") == []  # computed while decoding
        assert option_values(args, "--out_dir") == [f"{EXP}/decode_{s}" for s in NOISY_TEST_SETS]
    assert sorted(option_values(decodes[0] + decodes[1], "--job")) == ["1", "2"]
    assert option_values(decodes[2], "--merge") == ["true"]


def test_stage5_decodes_the_inference_model_when_given(recipe, run_tool):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "5", *SETS_OPTIONS,
                    "--inference_model", "checkpoint.pth"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    decodes = recorded_calls(calls, "merit.bin.merit_inference")
    assert decodes and all(option_values(args, "--checkpoint") == ["checkpoint.pth"]
                           for args in decodes)


def test_stage6_scores_each_decode_against_its_noisy_test_set(recipe, run_tool):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "6", *SETS_OPTIONS],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    (args,) = recorded_calls(calls, "merit.bin.score")  # one process for every set
    assert list(zip(option_values(args, "--data_dir"), option_values(args, "--decode_dir"),
                    option_values(args, "--noisy_cache"))) == [
        (f"data/{s}", f"{EXP}/decode_{s}", f"data/{s}/noisy_se_scores.tsv") for s in NOISY_TEST_SETS]
    assert [args[-1] for args in recorded_calls(calls, "merit.bin.results_md")] == [EXP]
    for args in recorded_calls(calls, "merit.bin.score"):  # the oracles of its own SE head
        assert option_values(args, "--oracle_config") == [f"{EXP}/config.yaml"]
    (report,) = recorded_calls(calls, "merit.bin.make_report")  # the tables' runs and text
    assert report == [EXP, "--tables", "exp/tables_fbank.md", "--out_dir", "exp/report"]


def decoded(recipe_dir, exp, score_done=None):
    """Decode dirs of ``exp`` for every noisy test set, marked decoded (and scored with
    the marker text ``score_done``, if given)."""
    for name in NOISY_TEST_SETS:
        dec = recipe_dir / exp / f"decode_{name}"
        dec.mkdir(parents=True)
        (dec / "decode.done").write_text("settings model\n")
        if score_done is not None:
            (dec / "score.done").write_text(score_done)


def test_stage6_scores_a_cascade_with_the_oracles_of_its_enhancer(recipe, run_tool):
    recipe_dir, env, calls = recipe
    cascade, enhancer = "exp/cascade_fbank_seed1", "exp/se_only_fbank_seed1"
    decoded(recipe_dir, cascade)
    (recipe_dir / cascade / "components").write_text(
        f"enhancer: {enhancer}\nclassifier: exp/ser_only_clean_fbank_seed1 (trained on clean speech)\n")
    res = run_tool(["./merit.sh", "--stage", "6", "--stop_stage", "6", *SETS_OPTIONS,
                    "--systems", "cascade"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    scored = recorded_calls(calls, "merit.bin.score")
    assert sorted(d for args in scored for d in option_values(args, "--decode_dir")) == \
        sorted(f"{cascade}/decode_{s}" for s in NOISY_TEST_SETS)
    assert all(option_values(args, "--oracle_config") == [f"{enhancer}/config.yaml"]
               for args in scored)


def test_stage6_scores_again_sets_scored_before_the_oracles(recipe, run_tool):
    """A score.done of a run without --oracle_config (the decode key alone) is redone,
    once."""
    recipe_dir, env, calls = recipe
    decoded(recipe_dir, EXP, score_done="settings model\n")
    command = ["./merit.sh", "--stage", "6", "--stop_stage", "6", *SETS_OPTIONS]
    logs = []
    for _ in range(2):
        res = run_tool(command, cwd=recipe_dir, env=env)
        assert res.returncode == 0, res.stderr
        logs.append(res.stderr)
    (args,) = recorded_calls(calls, "merit.bin.score")  # first run only
    assert len(option_values(args, "--decode_dir")) == len(NOISY_TEST_SETS)
    assert f"Scoring {EXP}/decode_test_snr0_seen again: changed since the last run: oracle_config" \
        in logs[0]
    assert "every set already scored, skipped" in logs[1]


def test_stage6_scores_again_when_the_metric_set_changes(recipe, run_tool):
    """The score key holds the SE metrics scored: asking for DNSMOS rescores every set
    (passing --extra_metrics to the scorer), saying why; the same call again does not."""
    recipe_dir, env, calls = recipe
    command = ["./merit.sh", "--stage", "5", "--stop_stage", "6", *SETS_OPTIONS]
    res = run_tool(command, cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    (first,) = recorded_calls(calls, "merit.bin.score")
    assert "--extra_metrics" not in first
    with_dnsmos = command + ["--extra_metrics", "dnsmos_sig dnsmos_ovrl"]
    logs = []
    for _ in range(2):
        res = run_tool(with_dnsmos, cwd=recipe_dir, env=env)
        assert res.returncode == 0, res.stderr
        logs.append(res.stderr)
    _, again = recorded_calls(calls, "merit.bin.score")  # the second call rescored nothing
    assert again[again.index("--extra_metrics"):][:3] == ["--extra_metrics", "dnsmos_sig", "dnsmos_ovrl"]
    assert len(option_values(again, "--decode_dir")) == len(NOISY_TEST_SETS)
    assert f"Scoring {EXP}/decode_test_snr0_seen again: changed since the last run: metrics" in logs[0]
    assert "every set already scored, skipped" in logs[1]


def test_unknown_extra_metric_stops_before_any_stage(recipe, run_tool):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "6", *SETS_OPTIONS,
                    "--extra_metrics", "dnsmos_ovr"], cwd=recipe_dir, env=env)
    assert res.returncode == 2
    assert "--extra_metrics: unknown opt-in SE metric(s) dnsmos_ovr (choices: dnsmos_sig" in res.stderr
    assert recorded_calls(calls, "merit.bin.merit_inference") == []


TRAIN_OPTIONS = ["--stage", "4", "--stop_stage", "4", "--ssl_mode", "online",
                 "--train_set", "train", "--valid_set", "dev"]


def trained(calls):
    """{exp dir: argument list} of the recorded training launches."""
    return {option_values(args, "--output_dir")[0]: args
            for args in recorded_calls(calls, "espnet2.bin.launch")}


@pytest.mark.parametrize("learns_from, classifier, data", [
    ("clean", "ser_only_clean", "data/train_clean"),
    ("noisy", "ser_only", "data/train_noisy")])
def test_stage4_cascade_classifier_trains_on_the_chosen_speech(recipe, run_tool, learns_from,
                                                                 classifier, data):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", *TRAIN_OPTIONS, "--systems", "cascade",
                    "--cascade_ser_train", learns_from], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    runs = trained(calls)
    assert sorted(runs) == sorted(["exp/se_only_fbank_seed1", f"exp/{classifier}_fbank_seed1"])
    args = runs[f"exp/{classifier}_fbank_seed1"]
    assert option_values(args, "--train_data_path_and_name_and_type")[0] == f"{data}/wav.scp,speech,sound"
    assert option_values(args, "--class_weights") == [f"{data}/utt2emo"]
    enhancer = runs["exp/se_only_fbank_seed1"]
    assert option_values(enhancer, "--train_data_path_and_name_and_type")[0] == \
        "data/train_noisy/wav.scp,speech,sound"


def test_stage4_init_from_starts_each_run_from_its_own_checkpoint(recipe, run_tool):
    recipe_dir, env, calls = recipe
    for seed in (1, 2):
        (recipe_dir / "phase1").mkdir(exist_ok=True)
        (recipe_dir / "phase1" / f"sparse_merit_seed{seed}.pth").touch()
    res = run_tool(["./merit.sh", *TRAIN_OPTIONS, "--seeds", "1 2",
                    "--init_from", "phase1/{model}_seed{seed}.pth"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    runs = trained(calls)
    assert {exp: option_values(args, "--init_param") for exp, args in runs.items()} == {
        f"exp/sparse_merit_fbank_seed{seed}": [f"phase1/sparse_merit_seed{seed}.pth"]
        for seed in (1, 2)}


def test_stage4_init_from_a_missing_checkpoint_stops_before_training(recipe, run_tool):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", *TRAIN_OPTIONS, "--systems", "naive_mtl",
                    "--init_from", "phase1/{model}_seed{seed}.pth"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "--init_from: phase1/naive_mtl_seed1.pth does not exist" in res.stderr
    assert trained(calls) == {}


def test_stage5_decodes_again_only_the_sets_whose_data_changed(recipe, run_tool):
    """decode.done holds the model and a fingerprint of each set's data and features: a
    rerun decodes nothing; a test set that stage 2 rewrote is decoded again, saying why."""
    recipe_dir, env, calls = recipe
    for name in NOISY_TEST_SETS:
        (recipe_dir / "data" / name).mkdir(parents=True)
        (recipe_dir / "data" / name / "wav.scp").write_text(f"u1 {recipe_dir}/{name}.wav\n")
        (recipe_dir / f"{name}.wav").write_bytes(b"RIFF")
    command = ["./merit.sh", "--stage", "5", "--stop_stage", "5", *SETS_OPTIONS]
    for _ in range(2):
        res = run_tool(command, cwd=recipe_dir, env=env)
        assert res.returncode == 0, res.stderr
    assert len(recorded_calls(calls, "merit.bin.merit_inference")) == 3  # the first run only
    assert "every set already decoded, skipped" in res.stderr
    (recipe_dir / "test_snr10_seen.wav").write_bytes(b"RIFF-rewritten")
    calls.unlink()
    res = run_tool(command, cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert f"Decoding {EXP}/decode_test_snr10_seen: changed since the last run: " \
           "data/test_snr10_seen" in res.stderr
    for args in recorded_calls(calls, "merit.bin.merit_inference"):
        assert option_values(args, "--data_dir") == ["data/test_snr10_seen"]


@pytest.mark.parametrize("options, fills", [
    (["--stop_stage", "6"], True),  # one model trains: one of the 2 jobs is idle
    (["--stop_stage", "6", "--systems", "sparse_merit se_only", "--parallel_runs", "2"], False),
    (["--stop_stage", "5"], False),  # no stage 6 to prepare
])
def test_stage4_fills_stage6s_caches_on_the_jobs_training_leaves_idle(recipe, run_tool, options,
                                                                      fills):
    recipe_dir, env, calls = recipe
    res = run_tool(["./merit.sh", "--stage", "4", "--ssl_mode", "online", *SETS_OPTIONS, *options],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    scores = recorded_calls(calls, "merit.bin.score")
    filled = [args for args in scores if not option_values(args, "--decode_dir")]
    if not fills:
        assert filled == [] and "computed meanwhile" not in res.stderr
        return
    (args,) = filled  # one process for every set
    assert option_values(args, "--data_dir") == [f"data/{s}" for s in NOISY_TEST_SETS]
    assert option_values(args, "--noisy_cache") == [f"data/{s}/noisy_se_scores.tsv"
                                                    for s in NOISY_TEST_SETS]
    assert option_values(args, "--nj") == ["2"]  # all, at low priority
    assert option_values(args, "--oracle_config")[0].endswith("/sparse_merit.yaml")
    # stage 6 waited for them: every set is scored after every cache is filled
    assert scores.index(filled[-1]) < min(scores.index(args) for args in scores
                                          if option_values(args, "--decode_dir"))
    assert "Waiting for the reference scores started in stage 4" in res.stderr
