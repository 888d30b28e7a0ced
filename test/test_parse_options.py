"""utils/parse_options.sh: option spellings, --config, --help, errors."""
import pytest

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
nj=4
foo_bar=default
use_gpu=false
help_message="Usage: demo.sh [options] <dir>
  --nj       # jobs
  --foo_bar  # anything"
. {utils}/parse_options.sh
echo "nj=${{nj}} foo_bar=${{foo_bar}} use_gpu=${{use_gpu}} rest=$*"
"""


@pytest.fixture
def demo(tmp_path, repo):
    script = tmp_path / "demo.sh"
    script.write_text(SCRIPT.format(utils=repo / "utils"))
    script.chmod(0o755)
    return script


def test_underscore_and_dash_spellings(demo, run_tool):
    res = run_tool([demo, "--nj", "8", "--foo-bar", "x y", "--use_gpu", "true", "pos1", "pos2"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "nj=8 foo_bar=x y use_gpu=true rest=pos1 pos2"


def test_config_file_then_override(demo, run_tool, tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("nj=2\nfoo_bar=from_config\n")
    res = run_tool([demo, "--config", conf, "--nj", "3"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "nj=3 foo_bar=from_config use_gpu=false rest="


def test_missing_config_file_is_named(demo, run_tool, tmp_path):
    res = run_tool([demo, "--config", tmp_path / "nope.conf"])
    assert res.returncode == 1
    assert "nope.conf" in res.stderr and "does not exist" in res.stderr


def test_unknown_option_is_named(demo, run_tool):
    res = run_tool([demo, "--nj", "2", "--no_such_thing", "1"])
    assert res.returncode == 1
    assert "unknown option '--no_such_thing'" in res.stderr
    assert res.stdout == ""


def test_boolean_accepts_only_true_or_false(demo, run_tool):
    res = run_tool([demo, "--use_gpu", "yes"])
    assert res.returncode == 1
    assert "--use_gpu" in res.stderr and "true or false" in res.stderr


def test_option_without_value(demo, run_tool):
    res = run_tool([demo, "--nj"])
    assert res.returncode == 1
    assert "needs a value" in res.stderr


def test_equals_form_is_rejected_clearly(demo, run_tool):
    res = run_tool([demo, "--nj=3"])
    assert res.returncode == 1
    assert "--name value" in res.stderr


def test_help_prints_usage_and_exits_zero(demo, run_tool):
    res = run_tool([demo, "--help"])
    assert res.returncode == 0
    assert "Usage: demo.sh [options] <dir>" in res.stderr
    assert "--foo_bar" in res.stderr
    assert res.stdout == ""
