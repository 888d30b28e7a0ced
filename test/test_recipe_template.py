"""egs/TEMPLATE/merit: setup.sh makes a recipe; merit.sh runs and selects stages."""
from pathlib import Path

import pytest

from recipe_tree import make_recipe_tree

DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
for set in train dev test; do
    mkdir -p data/$set
    : > data/$set/wav.scp; : > data/$set/utt2spk; : > data/$set/utt2emo
    for i in 1 2; do
        utt=spk$i-$set-utt$i
        touch data/$set/$utt.wav
        echo "$utt data/$set/$utt.wav" >> data/$set/wav.scp
        echo "$utt spk$i" >> data/$set/utt2spk
        echo "$utt {emo}" >> data/$set/utt2emo
    done
    utils/utt2spk_to_spk2utt.pl data/$set/utt2spk > data/$set/spk2utt
done
{extra}
"""


@pytest.fixture
def tree(tmp_path):
    """A copy of the parts of the repo a recipe needs, so setup.sh can edit db.sh."""
    root = tmp_path / "merit"
    return root, make_recipe_tree(root)


@pytest.fixture
def recipe(tree, run_tool):
    root, env = tree
    res = run_tool([root / "egs/TEMPLATE/merit/setup.sh", "egs/foo/merit"], cwd=root)
    assert res.returncode == 0, res.stderr
    return root / "egs/foo/merit", env


def write_data_sh(recipe_dir: Path, emo="N", extra=""):
    data_sh = recipe_dir / "local" / "data.sh"
    data_sh.write_text(DATA_SH.format(emo=emo, extra=extra))
    data_sh.chmod(0o755)


def test_setup_links_template_and_adds_db_entry(recipe):
    recipe_dir, _ = recipe
    template = recipe_dir.parent.parent / "TEMPLATE" / "merit"
    for name in ("merit.sh", "path.sh", "db.sh", "utils", "scripts", "conf/systems"):
        link = recipe_dir / name
        assert link.is_symlink(), name
        assert link.resolve() == (template / name).resolve()
    assert not (recipe_dir / "cmd.sh").is_symlink()
    assert (recipe_dir / "conf" / "slurm.conf").is_file()
    db_lines = (template / "db.sh").read_text().splitlines()
    assert sum(line.startswith("FOO=") for line in db_lines) == 1


def test_setup_refuses_existing_dir(recipe, run_tool):
    recipe_dir, _ = recipe
    root = recipe_dir.parents[2]
    res = run_tool([root / "egs/TEMPLATE/merit/setup.sh", "egs/foo/merit"], cwd=root)
    assert res.returncode == 1
    assert "already exists" in res.stderr


def test_new_recipe_help_lists_options(recipe, run_tool):
    recipe_dir, env = recipe
    res = run_tool(["./run.sh", "--help"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    for option in ("--stage", "--stop_stage", "--nj", "--ngpu", "--skip_train", "--test_sets"):
        assert option in res.stderr


def test_unwritten_data_sh_names_db_variable(recipe, run_tool):
    recipe_dir, env = recipe
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "set FOO in db.sh" in res.stderr


def test_stage_one_runs_and_validates(recipe, run_tool):
    recipe_dir, env = recipe
    write_data_sh(recipe_dir)
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "Stage 1: Data preparation: done in" in res.stderr
    assert res.stdout.count("Successfully validated") == 3
    assert "Stage 2" not in res.stderr


def test_stage_one_fails_on_a_broken_data_dir(recipe, run_tool):
    recipe_dir, env = recipe
    write_data_sh(recipe_dir, extra="sort -r data/dev/utt2emo -o data/dev/utt2emo")
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "utt2emo" in res.stderr
    assert "done in" not in res.stderr


def test_scoring_without_decoding_names_the_missing_files(recipe, run_tool):
    recipe_dir, env = recipe
    write_data_sh(recipe_dir)
    res = run_tool(["./run.sh", "--stage", "6", "--stop_stage", "6", "--test_sets", "test",
                    "--test_snrs", "0", "--test_conditions", "seen"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "decode_test_snr0_seen" in res.stderr


def test_skip_flags_skip_stages(recipe, run_tool):
    recipe_dir, env = recipe
    res = run_tool(["./run.sh", "--skip_data_prep", "true", "--stop_stage", "3"],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    for n in (1, 2, 3):
        assert f"Stage {n}:" in res.stderr and "skipped" in res.stderr
    assert "Successfully finished" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--nj", "four"], "--nj must be a non-negative integer"),
    (["--no_such_option", "1"], "unknown option '--no_such_option'"),
    (["--skip_train", "maybe"], "true or false"),
    (["stray"], "unexpected arguments: stray"),
])
def test_bad_options_are_named(recipe, run_tool, args, message):
    recipe_dir, env = recipe
    res = run_tool(["./run.sh", *args], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert message in res.stderr


def test_slurm_backend_selects_slurm_pl(recipe, run_tool):
    recipe_dir, env = recipe
    res = run_tool(["bash", "-c", ". ./cmd.sh && echo $train_cmd / $cuda_cmd / $decode_cmd"],
                   cwd=recipe_dir, env={**env, "MERIT_CMD_BACKEND": "slurm"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == " / ".join(["slurm.pl --config conf/slurm.conf"] * 3)
    res = run_tool(["bash", "-c", ". ./cmd.sh && echo $train_cmd"], cwd=recipe_dir, env=env)
    assert res.stdout.strip() == "run.pl"
    res = run_tool(["bash", "-c", ". ./cmd.sh"], cwd=recipe_dir,
                   env={**env, "MERIT_CMD_BACKEND": "pbs"})
    assert res.returncode != 0 and "unknown cmd_backend 'pbs'" in res.stderr
