"""merit.sh with ``dynamic_mixing: true`` in the train config: stage 4 trains on the
train noise pool with online features whatever --ssl_mode says, and retrains when the
pool changes; the cascade's clean-speech classifier is not re-mixed; stage 5 reads
dumped features only for a model whose config says it was trained on them; stage 3 dumps
the noisy sets only when a model trains on the fixed mixtures.

Runs the template's merit.sh with the recording python3 of test_merit_sh_stage_choices
(training launches and decodes are recorded, not run).
"""
import pytest
import yaml

from test_merit_sh_stage_choices import (EXP, NOISY_TEST_SETS, SETS_OPTIONS,  # noqa: F401
                                         option_values, recipe, recorded_calls, trained)

STAGE4 = ["--stage", "4", "--stop_stage", "4", "--ssl_mode", "dumped", "--train_set", "train",
          "--valid_set", "dev", "--train_snrs", "-5  0 5", "--train_config", "conf/train_dm.yaml"]


def with_dynamic_mixing(recipe_dir):
    """conf/train_dm.yaml: the recipe's train.yaml with dynamic_mixing on; a train pool."""
    config = yaml.safe_load((recipe_dir / "conf" / "train.yaml").read_text())
    (recipe_dir / "conf" / "train_dm.yaml").write_text(
        yaml.safe_dump(dict(config, dynamic_mixing=True)))
    pool = recipe_dir / "data" / "noise"
    pool.mkdir(parents=True)
    (pool / "n1.wav").write_bytes(b"RIFF")
    (pool / "train.scp").write_text(f"n1 {pool / 'n1.wav'}\n")
    return pool


def test_stage4_mixes_the_train_pool_online_and_retrains_when_it_changes(recipe, run_tool):
    recipe_dir, env, calls = recipe
    pool = with_dynamic_mixing(recipe_dir)
    res = run_tool(["./merit.sh", *STAGE4], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    args = trained(calls)[EXP]
    assert option_values(args, "--frontend") == ["s3prl"]
    assert option_values(args, "--frontend_conf") == ["upstream=fbank"]
    assert option_values(args, "--dynamic_mixing_conf") == [
        "noise_scp=data/noise/train.scp", "snrs=[-5,0,5]"]
    data = option_values(args, "--train_data_path_and_name_and_type") + \
        option_values(args, "--valid_data_path_and_name_and_type")
    assert not [d for d in data if d.endswith(",feats,npy")]  # no dumped features
    assert ("features computed online (--frontend s3prl), not dumped (--ssl_mode dumped)"
            in res.stderr)
    assert "data/noise/train.scp " in (recipe_dir / EXP / "train.key").read_text()

    res = run_tool(["./merit.sh", *STAGE4], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "already complete, skipped" in res.stderr and len(trained(calls)) == 1

    (pool / "n2.wav").write_bytes(b"RIFF")
    (pool / "train.scp").write_text(f"n1 {pool / 'n1.wav'}\nn2 {pool / 'n2.wav'}\n")
    calls.unlink()
    res = run_tool(["./merit.sh", *STAGE4], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "changed since the last run: data/noise/train.scp" in res.stderr
    assert list(trained(calls)) == [EXP]


def test_stage4_keeps_a_trained_model_whose_input_files_are_gone(recipe, run_tool):
    recipe_dir, env, calls = recipe
    pool = with_dynamic_mixing(recipe_dir)
    res = run_tool(["./merit.sh", *STAGE4], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    kept = sorted(p.name for p in (recipe_dir / EXP).iterdir())
    (pool / "n1.wav").unlink()  # e.g. the noise corpus moved, or a link now dangles
    res = run_tool(["./merit.sh", *STAGE4], cwd=recipe_dir, env=env)
    assert res.returncode == 1
    assert f"missing: data/noise/train.scp: {pool / 'n1.wav'}" in res.stderr
    assert "nothing removed" in res.stderr
    assert sorted(p.name for p in (recipe_dir / EXP).iterdir()) == kept
    assert len(trained(calls)) == 1


def test_stage4_does_not_remix_the_cascade_classifier_of_clean_speech(recipe, run_tool):
    recipe_dir, env, calls = recipe
    with_dynamic_mixing(recipe_dir)
    res = run_tool(["./merit.sh", *STAGE4, "--systems", "cascade"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    runs = trained(calls)
    classifier = runs["exp/ser_only_clean_fbank_seed1"]
    assert option_values(classifier, "--dynamic_mixing") == ["false"]
    assert option_values(classifier, "--dynamic_mixing_conf") == []
    assert option_values(classifier, "--frontend") == ["dumped"]  # as --ssl_mode says
    enhancer = runs["exp/se_only_fbank_seed1"]
    assert option_values(enhancer, "--dynamic_mixing_conf")[0] == "noise_scp=data/noise/train.scp"


def test_stage4_without_dynamic_mixing_is_unchanged(recipe, run_tool):
    recipe_dir, env, calls = recipe
    with_dynamic_mixing(recipe_dir)
    options = [o if o != "conf/train_dm.yaml" else "conf/train.yaml" for o in STAGE4]
    res = run_tool(["./merit.sh", *options], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    args = trained(calls)[EXP]
    assert option_values(args, "--frontend") == ["dumped"]
    assert option_values(args, "--dynamic_mixing") == []
    assert option_values(args, "--dynamic_mixing_conf") == []
    assert "data/noise/train.scp" not in (recipe_dir / EXP / "train.key").read_text()


def test_stage5_reads_dumped_features_only_for_a_model_trained_on_them(recipe, run_tool):
    recipe_dir, env, calls = recipe
    dumps = [f"dump/fbank/{s}" for s in NOISY_TEST_SETS]
    for frontend, feats in (("s3prl", []), ("dumped", dumps)):
        (recipe_dir / EXP / "config.yaml").write_text(yaml.safe_dump({"frontend": frontend}))
        for name in NOISY_TEST_SETS:  # decode again
            (recipe_dir / EXP / f"decode_{name}" / "decode.done").unlink(missing_ok=True)
        if calls.exists():
            calls.unlink()
        res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "5", "--ssl_mode", "dumped",
                        "--dump_test_sets", "true", *SETS_OPTIONS], cwd=recipe_dir, env=env)
        assert res.returncode == 0, res.stderr
        decodes = recorded_calls(calls, "merit.bin.merit_inference")
        assert decodes, frontend
        assert all(option_values(args, "--feats_dir") == feats for args in decodes), frontend


STAGE3 = ["--stage", "3", "--stop_stage", "3", "--ssl_mode", "dumped", "--dump_test_sets", "true",
          *SETS_OPTIONS]


def dumped(calls):
    """The output dirs of the recorded stage-3 dumps (job runs, not the merge)."""
    return sorted({out for args in recorded_calls(calls, "merit.bin.dump_ssl") if "--merge" not in args
                   for out in option_values(args, "--out_dir")})


@pytest.mark.parametrize("train_config, systems, expected", [
    ("conf/train.yaml", "sparse_merit", ["dev_noisy", "train_noisy", *NOISY_TEST_SETS]),
    ("conf/train_dm.yaml", "sparse_merit", []),
    ("conf/train_dm.yaml", "cascade", ["dev_clean", "train_clean"]),
    ("conf/train_dm.yaml conf/fixed.yaml", "cascade", ["dev_clean", "dev_noisy", "train_clean",
                                                       "train_noisy", *NOISY_TEST_SETS]),
])
def test_stage3_dumps_what_the_trained_models_read(recipe, run_tool, train_config, systems, expected):
    recipe_dir, env, calls = recipe
    with_dynamic_mixing(recipe_dir)
    (recipe_dir / "conf" / "fixed.yaml").write_text("dynamic_mixing: false\n")
    for name in ("train_noisy", "dev_noisy"):  # the clean sets are derived from them
        (recipe_dir / "data" / name).mkdir(parents=True)
        (recipe_dir / "data" / name / "spk1.scp").write_text("u1 clean.wav\n")
    res = run_tool(["./merit.sh", *STAGE3, "--systems", systems, "--train_config", train_config],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert dumped(calls) == sorted(f"dump/fbank/{name}" for name in expected)
    assert ("the noisy sets are not dumped" in res.stderr) == ("dev_noisy" not in expected)
