"""Time ``merit-infer`` as a user meets it: the time to the first result for a 1 s file,
through the old start-up and the new one side by side, and the real-time factor and
peak memory on long recordings.

    python -m merit.bin.bench_inference --model egs/mini_emo/merit/exp/sparse_merit_fbank_seed1

Every measure runs ``merit-infer`` in a fresh interpreter, as a user's shell would:

* ``first_result_s_espnet_imports``: the start-up merit-infer had before issue 17. It
  imported ESPnet's training task (``merit.tasks.merit_task``: ``espnet2.tasks.abs_task``
  with ``inflect`` and ``transformers``) and, through ``S3PRLUpstream``, every s3prl
  upstream family (``s3prl.hub`` in full). The program here imports both, then runs
  today's merit-infer: the same work behind the old imports.
* ``first_result_s``: today's merit-infer (``merit.tasks.model_builder`` and a lazy
  ``s3prl.hub`` that imports one family).
  Both are the wall time from starting the process to its first line on stdout, the
  median of ``--repeats`` runs; ``first_result_speedup`` is their ratio.
* ``rtf_<N>min`` and ``peak_rss_mb_<N>min`` for a ``--short_minutes`` and a
  ``--long_minutes`` recording (wall time of the whole process over the audio's
  duration, and its peak resident memory: ``merit.utils.peak_memory``), with ``--out_dir`` so the
  enhanced audio is written too; ``peak_rss_ratio`` is long over short (memory that
  does not grow with the file's length gives about 1).

The audio is a wandering tone in noise (its content does not change the cost).
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from merit.utils.measure_table import MeasureTable
from merit.utils.peak_memory import run_measured

#: The old start-up: what merit-infer imported before it built models without ESPnet's
#: task and looked s3prl entries up lazily; then today's merit-infer.
ESPNET_IMPORTS = """
import sys
import merit.tasks.merit_task
from s3prl.nn import S3PRLUpstream
S3PRLUpstream.available_names()
from merit.bin import merit_infer
sys.exit(merit_infer.main(sys.argv[1:]))
"""
NEW_PATH = "import sys; from merit.bin import merit_infer; sys.exit(merit_infer.main(sys.argv[1:]))"


def write_recording(path: Path, seconds: float) -> Path:
    """A mono 16 kHz wav of ``seconds``, written in one-minute blocks (bounded memory)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for start in range(0, int(seconds * 16000), 60 * 16000):
            t = np.arange(start, min(start + 60 * 16000, int(seconds * 16000))) / 16000
            tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(t / 7)) * t)
            f.write(tone + 0.05 * rng.standard_normal(t.size))
    return path


def first_result_seconds(program: str, args) -> float:
    """Seconds from starting ``python -c program args`` to its first line on stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", program, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode != 0 or not first:
        raise RuntimeError(f"merit-infer failed (exit {proc.returncode}): {err[-2000:]}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model dir or a packed model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--short_minutes", type=float, default=1.0)
    parser.add_argument("--long_minutes", type=float, default=10.0)
    parser.add_argument("--out", default=None, help="also write the measures here as JSON")
    args = parser.parse_args(argv)

    table = MeasureTable()
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        tmp = Path(tmp)
        one_second = [str(write_recording(tmp / "one_second.wav", 1.0)), "--model", args.model]
        old, new = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            old.append(first_result_seconds(ESPNET_IMPORTS, one_second))
            new.append(first_result_seconds(NEW_PATH, one_second))
        table.record("first_result_s_espnet_imports", statistics.median(old))
        table.record("first_result_s", statistics.median(new))
        table.record("first_result_speedup", statistics.median(old) / statistics.median(new))
        peaks = []
        for minutes in (args.short_minutes, args.long_minutes):
            name = f"{minutes:g}min"
            wav = write_recording(tmp / f"{name}.wav", minutes * 60)
            run = run_measured("merit.bin.merit_infer", [wav, "--model", args.model,
                                                         "--out_dir", tmp / f"out_{name}"])
            if run.status != 0 or run.peak_bytes is None:
                raise RuntimeError(f"merit-infer failed (exit {run.status}): {run.output[-2000:]}")
            peak = run.peak_bytes / 2**20
            table.record(f"rtf_{name}", run.seconds / (minutes * 60))
            table.record(f"peak_rss_mb_{name}", peak)
            peaks.append(peak)
            wav.unlink()
        table.record("peak_rss_ratio", peaks[1] / peaks[0])
    if args.out:
        table.write_json(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
