"""A throwaway copy of the repository's recipe parts, for running recipes in tests.

Recipes write data/, dump/ and exp/ next to run.sh; tests run them in a copy so the
working tree stays clean. The copy uses the Python environment running the tests,
through MERIT_VENV pointing at a small wrapper environment (activated as is, never
installed into).
"""
import shlex
import shutil
import sys
from pathlib import Path
from typing import List, Sequence

import yaml

REPO = Path(__file__).resolve().parent.parent


def make_recipe_tree(dest: Path, recipes=()) -> dict:
    """Copy egs/TEMPLATE, utils and tools/ scripts (and the named egs/<corpus>
    recipes, with their downloads linked, not copied) into ``dest``.

    Returns the environment variables to run recipes there with.
    """
    shutil.copytree(REPO / "egs" / "TEMPLATE", dest / "egs" / "TEMPLATE", symlinks=True)
    shutil.copytree(REPO / "utils", dest / "utils", symlinks=True)
    (dest / "tools").mkdir(parents=True)
    for name in ("activate_python.sh", "install.sh", "requirements.txt"):
        shutil.copy2(REPO / "tools" / name, dest / "tools" / name)
    for corpus in recipes:
        src = REPO / "egs" / corpus / "merit"
        shutil.copytree(src, dest / "egs" / corpus / "merit", symlinks=True,
                        ignore=shutil.ignore_patterns("downloads", "data", "dump", "exp"))
        if (src / "downloads").exists():
            (dest / "egs" / corpus / "merit" / "downloads").symlink_to(src / "downloads")
    env_dir = dest / "test_env"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    return {"MERIT_VENV": str(env_dir)}


#: ``python3`` of ``recording_python``: a ``python3 -m <module>`` call of a module in
#: ``{recorded}`` is written to ``{calls}`` as one shell-quoted line (and its ``--out_dir``
#: dirs made, where merit.sh writes its done markers) instead of run; every other call
#: runs with the real interpreter (config composition, look-ups).
RECORDING_PYTHON3 = """#!/usr/bin/env bash
# python3 for merit.sh in tests: records some modules' calls, one shell-quoted line each.
if [ "${{1:-}}" = -m ] && [[ " {recorded} " == *" ${{2:-}} "* ]]; then
    line=$(printf '%q ' "$@")
    printf '%s\\n' "${{line}}" >> "{calls}"  # one write: parallel jobs append whole lines
    prev=
    for arg in "$@"; do
        [ "${{prev}}" = --out_dir ] && mkdir -p "${{arg}}"
        prev=${{arg}}
    done
    exit 0
fi
exec "{python}" "$@"
"""


def recording_python(env_dir: Path, recorded: Sequence[str], calls: Path) -> dict:
    """A MERIT_VENV at ``env_dir`` whose ``python3`` (first on PATH) records the calls of
    the ``recorded`` modules in ``calls`` (``RECORDING_PYTHON3``; read them back with
    ``recorded_calls``). Returns the environment variables to run recipes with."""
    shim = env_dir / "bin" / "python3"
    shim.parent.mkdir(parents=True)
    shim.write_text(RECORDING_PYTHON3.format(recorded=" ".join(recorded), calls=calls,
                                             python=sys.executable))
    shim.chmod(0o755)
    (env_dir / "bin" / "activate").write_text(f'export PATH="{env_dir / "bin"}:$PATH"\n')
    return {"MERIT_VENV": str(env_dir)}


def recorded_calls(calls: Path, module: str) -> List[List[str]]:
    """The argument lists of the recorded ``python3 -m <module>`` calls, in order."""
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [args[2:] for args in map(shlex.split, lines) if args[1] == module]


def option_values(args: Sequence[str], name: str) -> List[str]:
    """The values given to option ``name`` in the argument list ``args``."""
    return [value for option, value in zip(args, args[1:]) if option == name]


def trained_exp(exp: Path, criteria: Sequence[Sequence[str]]) -> None:
    """``exp`` as merit.sh sees a finished training run: ``train.done``, a
    ``train_config.yaml`` with ``criteria`` as its best_model_criterion, and the best
    checkpoint of each criterion (empty files)."""
    exp.mkdir(parents=True)
    (exp / "train.done").write_text("0123456789abcdef\n")
    (exp / "train_config.yaml").write_text(
        yaml.safe_dump({"best_model_criterion": [list(c) for c in criteria]}))
    for phase, metric, _ in criteria:
        (exp / f"{phase}.{metric}.best.pth").touch()
