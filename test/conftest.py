"""Shared pytest fixtures: where the repository and its shell tools live, and one tiny
trained model for the tests that only need *a* model.

Threads are pinned to one per process before torch loads, here and in every process a
test starts: several torch processes on a 2-core machine otherwise oversubscribe it
(one test took 342 s instead of 3 s). Set the variables beforehand to choose otherwise.
"""
import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Root of the tiny experiment: ``data/{train,dev}_noisy`` and their fbank ``dump/``."""
    from tiny_experiment import make_data  # torch and espnet only for the tests that need them

    return make_data(tmp_path_factory.mktemp("tiny_experiment"))


@pytest.fixture(scope="session")
def tiny_model(tiny_data) -> Path:
    """The exp dir of a small sparse MERIT model trained for two epochs in one run on
    ``tiny_data`` (ESPnet's trainer; ``valid.macro_f1.best.pth``, ``train.log``)."""
    from tiny_experiment import train

    exp = tiny_data / "exp" / "tiny_model"
    train(tiny_data, exp, max_epoch=2)
    return exp
