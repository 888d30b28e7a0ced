"""egs/msp_podcast/merit/run.sh's own options, in any position among merit.sh's, on
to local/data.sh and scripts/prep_noise.sh: checked with stand-ins for merit.sh and
prep_noise.sh that print what they were given, so no stage runs."""
import stat

import pytest
import soundfile as sf

from fake_corpora import make_msp_tree, speechlike
from merit.data.datadir import read_kv
from recipe_tree import make_recipe_tree

# prints its arguments, one per line, then runs stage 1 the way merit.sh does:
# local/data.sh with --local_data_opts split on whitespace
FAKE_MERIT_SH = r"""#!/usr/bin/env bash
set -euo pipefail
printf 'merit.sh: %s\n' "$@"
opts=""
while [ $# -gt 0 ]; do
    [ "$1" != --local_data_opts ] || opts=$2
    shift 2
done
[ "${RUN_STAGE_1:-}" != true ] || local/data.sh ${opts}
"""
FAKE_PREP_NOISE = r"""#!/usr/bin/env bash
printf 'prep_noise.sh: %s\n' "$@" >&2
"""


def _executable(path, text):
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("msp_options")
    env = make_recipe_tree(root / "tree", recipes=["msp_podcast"])
    recipe_dir = root / "tree" / "egs" / "msp_podcast" / "merit"
    msp = root / "MSP-Podcast"
    rows = make_msp_tree(msp, n_speakers=5, per_speaker=10)
    short = next(r["FileName"] for r in rows if r["Split_Set"] == "Train" and r["EmoClass"] in "ASHN")
    sf.write(str(msp / "Audios" / short), speechlike(0.1, 150, 1), 16000)
    env["MSP_PODCAST"] = str(msp)
    return recipe_dir, env, short


@pytest.fixture(scope="module")
def fake_merit_sh(recipe):
    recipe_dir, env, _ = recipe
    _executable(recipe_dir / "merit.sh", FAKE_MERIT_SH)
    _executable(recipe_dir.parents[1] / "TEMPLATE" / "merit" / "scripts" / "prep_noise.sh",
                FAKE_PREP_NOISE)
    return recipe_dir, env


def merit_sh_args(stdout):
    return [line[len("merit.sh: "):] for line in stdout.splitlines() if line.startswith("merit.sh: ")]


def value_of(args, option):
    """The value merit.sh finally sees for ``option`` (the last one wins)."""
    return [args[i + 1] for i, a in enumerate(args) if a == option][-1]


def test_own_options_anywhere(fake_merit_sh, run_tool):
    recipe_dir, env = fake_merit_sh
    res = run_tool(["./run.sh", "--ngpu", "0", "--skip_missing", "true", "--stage", "1",
                    "--classes", "A,S,H,U,F,D,C,N", "--train_args", "--classes x --skip_missing y",
                    "--duration-action", "skip", "--skip_bad_noise", "true"],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    args = merit_sh_args(res.stdout)
    assert value_of(args, "--local_data_opts") == (
        "--classes A,S,H,U,F,D,C,N --skip_missing true --min_duration 0.5 --max_duration 30 "
        "--duration_action skip --skip_bad_noise true --suffix _ASHUFDCN")
    # merit.sh's options keep their order and values, after the recipe's defaults
    assert args[-6:] == ["--ngpu", "0", "--stage", "1", "--train_args", "--classes x --skip_missing y"]
    assert value_of(args, "--emotion_classes") == "A,S,H,U,F,D,C,N"
    assert value_of(args, "--train_set") == "train_ASHUFDCN"


def test_local_data_opts_are_added_and_values_checked(fake_merit_sh, run_tool):
    recipe_dir, env = fake_merit_sh
    res = run_tool(["./run.sh", "--local_data_opts", "--noise_opts --check_audio", "--nj", "2"],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert value_of(merit_sh_args(res.stdout), "--local_data_opts").startswith("--classes A,S,H,N ")
    assert value_of(merit_sh_args(res.stdout), "--local_data_opts").endswith(
        "--skip_bad_noise false --noise_opts --check_audio")
    res = run_tool(["./run.sh", "--skip_bad_noise", "yes"], cwd=recipe_dir, env=env)
    assert res.returncode == 2 and "'--skip_bad_noise' is boolean" in res.stderr
    res = run_tool(["./run.sh", "--seen_noise", "crss musan"], cwd=recipe_dir, env=env)
    assert res.returncode == 2 and "separate list items by commas" in res.stderr
    res = run_tool(["./run.sh", "--nj", "2", "--classes"], cwd=recipe_dir, env=env)
    assert res.returncode == 2 and "option '--classes' needs a value" in res.stderr


def test_flags_reach_prep_and_prep_noise(fake_merit_sh, recipe, run_tool):
    """--skip_bad_noise and the noise corpora survive merit.sh's word splitting down to
    scripts/prep_noise.sh; --duration_action reaches the speech prep."""
    recipe_dir, env = fake_merit_sh
    _, _, short = recipe
    res = run_tool(["./run.sh", "--ngpu", "0", "--skip_bad_noise", "true", "--seen_noise", "crss,musan",
                    "--unseen_noise", "dns", "--duration_action", "skip", "--min-noise-seconds", "0.5"],
                   cwd=recipe_dir, env={**env, "RUN_STAGE_1": "true"}, timeout=300)
    assert res.returncode == 0, res.stderr
    noise_args = [line[len("prep_noise.sh: "):] for line in res.stderr.splitlines()
                  if line.startswith("prep_noise.sh: ")]
    assert noise_args == ["--skip_bad", "true", "--seen_corpora", "crss musan",
                          "--unseen_corpora", "dns", "--min_noise_seconds", "0.5"]
    assert "1 utterance(s) outside 0.5-30 s: 1 shorter than 0.5 s" in res.stderr
    assert short[:-len(".wav")] not in read_kv(recipe_dir / "data" / "train" / "wav.scp")


def test_help_lists_own_options_then_merit_sh(tmp_path, run_tool):
    env = make_recipe_tree(tmp_path, recipes=["msp_podcast"])  # the real merit.sh
    res = run_tool(["./run.sh", "--ngpu", "0", "--help"], cwd=tmp_path / "egs" / "msp_podcast" / "merit",
                   env={**env, "MSP_PODCAST": ""})
    assert res.returncode == 0, res.stderr
    ours = res.stderr.index("Options of this recipe")
    theirs = res.stderr.index("--local_data_opts # options for local/data.sh")
    assert ours < theirs
    for option in ("--classes", "--skip_missing", "--min_duration", "--max_duration",
                   "--duration_action", "--skip_bad_noise", "--min_noise_seconds", "--silence_dbfs",
                   "--seen_noise", "--unseen_noise"):
        assert f"  {option} " in res.stderr[ours:theirs], option
