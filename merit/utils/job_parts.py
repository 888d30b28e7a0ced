"""Work split over ``--num_jobs N --job J`` and joined again with ``--merge true``.

The tools that run under run.pl/slurm.pl (noise simulation, SSL dumping, decoding)
give job J every N-th utterance in C-locale order, write its results into a part
directory ``<root>/job{J}of{N}/`` and mark it finished with a ``done`` file; the
merge step only accepts parts that are all finished.
"""
from pathlib import Path
from typing import Iterable, List

from merit.data.datadir import c_sorted


def check_job(job: int, num_jobs: int) -> None:
    if num_jobs < 1 or not 1 <= job <= num_jobs:
        raise ValueError(f"--job must be in 1..{num_jobs}, got {job}")


def job_utterances(utts: Iterable[str], job: int, num_jobs: int) -> List[str]:
    """Job ``job``'s share (1-based) of ``utts``: every ``num_jobs``-th in C order."""
    check_job(job, num_jobs)
    return c_sorted(utts)[job - 1::num_jobs]


def part_dir(root: Path, job: int, num_jobs: int) -> Path:
    return Path(root) / f"job{job}of{num_jobs}"


def mark_done(part: Path) -> None:
    (Path(part) / "done").touch()


def is_done(part: Path) -> bool:
    return (Path(part) / "done").is_file()


def finished_parts(root: Path, num_jobs: int) -> List[Path]:
    """The ``num_jobs`` part directories; a ValueError names the first unfinished one."""
    if num_jobs < 1:
        raise ValueError("--merge true needs --num_jobs")
    parts = [part_dir(root, job, num_jobs) for job in range(1, num_jobs + 1)]
    for job, part in enumerate(parts, 1):
        if not is_done(part):
            raise ValueError(f"{part}: part {job} of {num_jobs} is missing or incomplete")
    return parts
