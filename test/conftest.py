"""Shared pytest fixtures: where the repository and its shell tools live."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


def _make_runner():
    """Run a repo tool (path relative to the repo root) and return the CompletedProcess.

    Never raises on a non-zero exit: tests assert on ``returncode``, ``stdout`` and
    ``stderr`` themselves. ``cwd`` defaults to the repo root.
    """

    def _run(args, cwd=None, env=None, input=None, timeout=120):
        args = [str(a) for a in args]
        if not os.path.isabs(args[0]) and (REPO / args[0]).exists():
            args[0] = str(REPO / args[0])
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(
            args, cwd=cwd or REPO, env=full_env, input=input, text=True,
            capture_output=True, timeout=timeout,
        )

    return _run


@pytest.fixture
def run_tool():
    return _make_runner()


@pytest.fixture(scope="module")
def run_tool_module():
    """``run_tool`` for module-scoped fixtures (e.g. a recipe run shared by tests)."""
    return _make_runner()
