"""A throwaway copy of the repository's recipe parts, for running recipes in tests.

Recipes write data/, dump/ and exp/ next to run.sh; tests run them in a copy so the
working tree stays clean. The copy uses the Python environment running the tests,
through MERIT_VENV pointing at a small wrapper environment (activated as is, never
installed into).
"""
import shutil
import sys
from pathlib import Path

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


def recording_python(env_dir: Path, python3: str) -> dict:
    """A MERIT_VENV at ``env_dir`` whose ``python3`` (first on PATH) is the bash script
    ``python3``: tests record merit.sh's steps through it. Returns the environment
    variables to run recipes with."""
    shim = env_dir / "bin" / "python3"
    shim.parent.mkdir(parents=True)
    shim.write_text(python3)
    shim.chmod(0o755)
    (env_dir / "bin" / "activate").write_text(f'export PATH="{env_dir / "bin"}:$PATH"\n')
    return {"MERIT_VENV": str(env_dir)}
