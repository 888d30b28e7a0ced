"""egs/TEMPLATE/merit: setup.sh makes a recipe; merit.sh runs and selects stages; a new
corpus reaches stage 6 as README.md says."""
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from fake_corpora import make_noise_dir
from merit.data.datadir import read_kv
from recipe_tree import REPO, make_recipe_tree

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


def test_generated_data_sh_builds_noise_pools_then_asks_for_the_speech(recipe, run_tool,
                                                                       tmp_path):
    recipe_dir, env = recipe
    env = {**env, "FOO": str(tmp_path)}
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "noise/seen is missing" in res.stderr and "--noise_dir" in res.stderr
    make_noise_dir(tmp_path / "noise" / "seen", n_files=3, seconds=1.0, seed=1)
    make_noise_dir(tmp_path / "noise" / "unseen", n_files=1, seconds=1.0, seed=2)
    res = run_tool(["./run.sh", "--stop_stage", "1", "--local_data_opts",
                    f"--noise_dir {tmp_path / 'noise'}"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert "local/data.sh is not written yet: prepare data/{train,dev,test}" in res.stderr
    assert len(read_kv(recipe_dir / "data" / "noise" / "train.scp")) >= 1
    assert list(read_kv(recipe_dir / "data" / "noise" / "test_unseen.scp")) == ["unseen-noise0"]


def test_stage_one_runs_and_validates(recipe, run_tool):
    recipe_dir, env = recipe
    write_data_sh(recipe_dir)
    res = run_tool(["./run.sh", "--stop_stage", "1"], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "Stage 1: Data preparation: done in" in res.stderr
    assert res.stdout.count("Successfully validated") == 3
    assert "Stage 2" not in res.stderr


def test_local_data_opts_split_like_a_command_line(recipe, run_tool):
    """Quoted values reach local/data.sh whole: the documented way to hand options on
    to scripts/prep_noise.sh (--noise_opts '--skip_bad true')."""
    recipe_dir, env = recipe
    data_sh = recipe_dir / "local" / "data.sh"
    data_sh.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > args.txt\nexit 1\n')
    res = run_tool(["./run.sh", "--stop_stage", "1", "--local_data_opts",
                    "--noise_opts '--skip_bad true' --nj 2"], cwd=recipe_dir, env=env)
    assert res.returncode != 0
    assert (recipe_dir / "args.txt").read_text().splitlines() == [
        "--noise_opts", "--skip_bad true", "--nj", "2"]


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
    (["--ngpu", "99"], "--ngpu 99, but this machine has"),
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


# ---------------------------------------------------------------- a new corpus to stage 6

SPEECH = REPO / "egs" / "mini_emo" / "merit" / "downloads" / "speech"
SPLIT_SPEAKERS = {"train": ("en_f1", "fr_f1"), "dev": ("ru_m1",), "test": ("it_m1",)}


def readme_blocks(readme: Path) -> dict:
    """The fenced code blocks of README.md, by the number of the "## N." step they are in."""
    blocks, step = {}, None
    parts = re.split(r"^```.*\n", readme.read_text(), flags=re.M)
    for text, code in zip(parts[0::2], parts[1::2]):
        for heading in re.findall(r"^## (.*)$", text, flags=re.M):
            step = int(heading[0]) if re.match(r"\d\. ", heading) else None
        blocks.setdefault(step, []).append(code)
    return blocks


def make_corpus(root: Path) -> None:
    """README.md's example corpus: labels.tsv (<utt> <speaker> <emotion> <set>) and
    <utt>.flac, four of mini_emo's real utterances per speaker, emotions A S H N in turn."""
    root.mkdir()
    rows = []
    for dset, speakers in SPLIT_SPEAKERS.items():
        for spk in speakers:
            for i, src in enumerate(sorted((SPEECH / spk).glob("*.flac"))[:4]):
                shutil.copy(src, root / src.name)
                rows.append(f"{src.stem} {spk} {'ASHN'[i]} {dset}\n")
    (root / "labels.tsv").write_text("".join(rows))


def test_new_corpus_reaches_stage_6_as_the_readme_says(recipe, run_tool, tmp_path):
    """README.md's steps 3-5 as written there: its speech code in place of the generated
    data.sh's "not written yet" lines, noise in noise/{seen,unseen}/, its small sizes in
    conf/train.yaml and its first-run command."""
    recipe_dir, env = recipe
    blocks = readme_blocks(recipe_dir.parents[1] / "TEMPLATE" / "merit" / "README.md")
    speech_code, (sizes, first_run) = blocks[3][0], blocks[5]
    make_corpus(tmp_path / "foo_corpus")
    make_noise_dir(recipe_dir / "noise" / "seen", n_files=3, seconds=1.0, seed=1)
    make_noise_dir(recipe_dir / "noise" / "unseen", n_files=1, seconds=1.0, seed=2)
    data_sh = recipe_dir / "local" / "data.sh"
    lines = data_sh.read_text().splitlines(keepends=True)
    todo = next(i for i, line in enumerate(lines) if "is not written yet" in line)
    assert lines[todo - 2].startswith("# The speech: replace these two lines")
    assert lines[todo + 1] == "exit 1\n" and todo + 2 == len(lines)
    data_sh.write_text("".join(lines[:todo - 2]) + speech_code)
    train_yaml = recipe_dir / "conf" / "train.yaml"
    config = yaml.safe_load(train_yaml.read_text())
    for key, value in yaml.safe_load(sizes).items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    train_yaml.write_text(yaml.safe_dump(config))
    command = shlex.split(first_run.replace("\\\n", " "))
    assert command[0] == "./run.sh"

    res = run_tool(command, cwd=recipe_dir, env={**env, "FOO": str(tmp_path / "foo_corpus")},
                   timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Stage 6: Scoring: done in" in res.stderr
    pools = {p: read_kv(recipe_dir / "data" / "noise" / f"{p}.scp")
             for p in ("train", "dev", "test_seen", "test_unseen")}
    assert all(i.startswith("seen-noise") for p in ("train", "dev", "test_seen") for i in pools[p])
    assert list(pools["test_unseen"]) == ["unseen-noise0"]
    assert set(read_kv(recipe_dir / "data" / "test_snr5_unseen" / "utt2noise").values()) == {
        "unseen-noise0"}
    exp = recipe_dir / "exp" / "sparse_merit_fbank_seed1"
    scores = json.loads((exp / "decode_test_snr5_unseen" / "scores.json").read_text())
    assert scores["ser"]["count"] == 4 and scores["snr_db"] == "5"
    assert "| test_snr5_unseen |" in (exp / "RESULTS.md").read_text()
    tables = (recipe_dir / "exp" / "tables_fbank.md").read_text()
    assert "| sparse_merit_fbank |" in tables and tables in res.stderr
    assert_reruns_redo_exactly_what_changed(recipe_dir, command, run_tool,
                                            {**env, "FOO": str(tmp_path / "foo_corpus")})


def assert_reruns_redo_exactly_what_changed(recipe_dir, command, run_tool, env):
    """An unchanged rerun skips every step of stages 2-6; after stage 2 rewrites the noisy
    sets (another --sim_seed), stages 3-6 redo their work and say which input changed."""
    exp = recipe_dir / "exp" / "sparse_merit_fbank_seed1"
    scores = exp / "decode_test_snr5_unseen" / "scores.json"
    before = scores.read_text()
    res = run_tool(command, cwd=recipe_dir, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for skipped in ("Simulating data/train_noisy: already complete, skipped",
                    f"Training {exp.relative_to(recipe_dir)}: already complete, skipped",
                    "every set already decoded, skipped", "every set already scored, skipped"):
        assert skipped in res.stderr
    assert "merit.bin.merit_train" not in res.stderr and scores.read_text() == before

    one_set = ["--test_snrs", "5", "--test_conditions", "unseen"]  # fewer sets to redo
    res = run_tool(command + ["--stage", "2", "--sim_seed", "2", *one_set], cwd=recipe_dir,
                   env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    changed = "changed since the last run:"
    for redone in (f"Simulating data/train_noisy from data/train, {changed} sim_seed=2 (was 1) (",
                   f"inputs {changed} data/train_noisy, data/dev_noisy;",  # online: no dumps
                   "removing its checkpoints and decodes and training it again from scratch",
                   f"Decoding 1 set(s) with {exp.relative_to(recipe_dir)}/"):
        assert redone in res.stderr, redone
    assert scores.read_text() != before  # scored again, on the new mixtures
