"""Directories that appear complete or not at all."""
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing_dir(out_dir):
    """Yield ``<out_dir>.tmp`` to fill; on success it replaces ``out_dir`` as a whole.

    If the block raises, the temporary directory is removed and ``out_dir`` (old
    content, if any) is left untouched. Between the two renames of the swap the old
    directory sits at ``<out_dir>.old``, so an interrupted run never leaves a
    directory that looks finished.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    old = out_dir.with_name(out_dir.name + ".old")
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old.exists():
        shutil.rmtree(old)
