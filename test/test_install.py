"""tools/install.sh: idempotent, and a failed install leaves no stamp."""
import os
import shutil
import sys
from pathlib import Path

import pytest


@pytest.fixture
def tools_copy(tmp_path, repo):
    """install.sh beside a requirements file we control (the repo's is left alone)."""
    tools = tmp_path / "repo" / "tools"
    tools.mkdir(parents=True)
    shutil.copy2(repo / "tools" / "install.sh", tools / "install.sh")
    (tools / "requirements.txt").write_text("merit-no-such-package-anywhere==0.0.1\n")
    (tools.parent / "setup.py").write_text("")
    return tools


def test_complete_env_returns_without_work(repo, run_tool):
    venv = Path(sys.prefix)
    if not (venv / ".merit_managed").exists():
        pytest.skip(f"tests run in a user-provided environment ({venv}), not one install.sh owns")
    stamp = venv / ".merit_installed"
    before = stamp.stat().st_mtime_ns
    res = run_tool([repo / "tools/install.sh", venv])
    assert res.returncode == 0, res.stderr
    assert res.stderr == "" and res.stdout == ""
    assert stamp.stat().st_mtime_ns == before


def test_missing_base_python_is_reported(tools_copy, run_tool, tmp_path):
    venv = tmp_path / "venv"
    res = run_tool([tools_copy / "install.sh", venv],
                   env={"MERIT_BASE_PYTHON": str(tmp_path / "no-python")})
    assert res.returncode == 1
    assert "FAILED" in res.stderr and "Python 3.10" in res.stderr
    assert not (venv / ".merit_installed").exists()


def test_failed_pip_leaves_no_stamp(tools_copy, run_tool, tmp_path):
    venv = tmp_path / "venv"
    offline = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
               "MERIT_BASE_PYTHON": sys.executable}
    res = run_tool([tools_copy / "install.sh", venv], env=offline, timeout=300)
    assert res.returncode == 1
    assert "install.sh: FAILED" in res.stderr
    assert "incomplete (no stamp)" in res.stderr
    assert (venv / ".merit_managed").exists()
    assert not (venv / ".merit_installed").exists()


def test_refuses_a_directory_it_does_not_own(tools_copy, run_tool, tmp_path):
    venv = tmp_path / "someone_elses"
    venv.mkdir()
    (venv / "precious.txt").write_text("keep me")
    res = run_tool([tools_copy / "install.sh", venv])
    assert res.returncode == 1
    assert "was not created by this script" in res.stderr
    assert sorted(p.name for p in venv.iterdir()) == ["precious.txt"]
