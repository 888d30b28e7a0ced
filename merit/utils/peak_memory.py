"""Wall time and peak resident memory of ``python -m <module> ...`` in a fresh process,
for benchmarks and the scale tests.

``ru_maxrss`` of the child (``os.wait4``, ``RUSAGE_CHILDREN``) does not measure this:
Linux folds the high-water mark of the forked copy of the parent into the child's at
``exec``, so a child of a large process (a test session with torch loaded, about 3 GB)
reports at least the parent's size. The child here reports at exit its own ``VmHWM``
from ``/proc/self/status`` instead (the high-water mark of the address space ``exec``
gave it: what the command itself used), or, if larger, the peak of the worker processes
it started and waited for (their ``ru_maxrss``; they were forked from the command, so
the same carry-over only adds what the command held).
"""
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional, Sequence

#: The line, written to stderr at exit, that carries the child's VmHWM in KiB.
MARK = "merit-peak-memory-kib"

_WRAPPER = f"""
import atexit, resource, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    kib = max(kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.stderr.write("\\n{MARK} " + str(kib) + "\\n")

atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@dataclass
class Measured:
    status: int                 # exit status
    output: str                 # stdout and stderr, interleaved (the report line removed)
    seconds: float              # wall time, start-up included
    peak_bytes: Optional[int]   # None when the process died before reporting


def run_measured(module: str, args: Sequence, cwd=None) -> Measured:
    """Run ``python -m module args`` and measure it (module docstring)."""
    with tempfile.TemporaryFile() as out:  # a file, not a pipe: nothing can block
        start = time.perf_counter()
        status = subprocess.run([sys.executable, "-c", _WRAPPER, module, *map(str, args)],
                                cwd=cwd, stdout=out, stderr=out).returncode
        seconds = time.perf_counter() - start
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    reports = [line for line in lines if line.startswith(MARK + " ")]
    peak = int(reports[-1].split()[1]) * 1024 if reports else None
    kept = [line for line in lines if not line.startswith(MARK + " ")]
    return Measured(status, "\n".join(kept), seconds, peak)
