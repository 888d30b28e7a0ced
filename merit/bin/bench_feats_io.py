"""Read throughput of dumped SSL features through ESPnet's training data loader: the ark
shards that ``merit.bin.dump_ssl`` writes against the one ``.npy`` per utterance of the
dumps before them, on the same arrays; and the file count of each layout at
MSP-Podcast's size.

    python -m merit.bin.bench_feats_io [--num_utts 200] [--out bench_feats_io.json]
    python -m merit.bin.bench_feats_io --tiny      # a few small arrays, in about a second

The arrays are random ``(T, L, D)`` float16, WavLM Large's shape by default (25 × 1024,
50 frames/s), of utterances drawn between ``--min_seconds`` and ``--max_seconds``. Both
layouts are written the way each dump wrote them: ``np.save`` per utterance, and
``dump_ssl.append_record`` into ``--num_jobs`` part arks (job split and merge as
dump_ssl's). Each layout is then read through ``espnet2.train.dataset.ESPnetDataset``
(data type ``npy`` or ``kaldi_ark``, what a training DataLoader worker calls per
utterance, float32 cast included) in one shuffled order, twice:

* ``cold``: every file dropped from the page cache first (``posix_fadvise``
  DONTNEED after an fsync; best effort: a file system may ignore it), so the disk is
  read;
* ``warm``: right after, from the page cache: what the format itself costs.

The fastest of ``--repeats`` reads counts (the machine may be busy with other work);
the layout read first alternates between repeats.

Measured on the 2-core development machine (a VM, busy with other jobs; its "cold"
reads may come from the host's cache), defaults, 2,773 MB:

=====================  ==============  ==============  =======
read                   npy             ark             ark/npy
=====================  ==============  ==============  =======
cold, MB/s (utts/s)    354 (25.6)      402 (29.0)      1.13
warm, MB/s (utts/s)    775 (55.9)      616 (44.5)      0.79
=====================  ==============  ==============  =======

A single read before ``--repeats`` gave 202/206 (1.02) cold and 581/555 (0.96) warm.
From the page cache the ark costs more CPU: kaldiio copies each record into a buffer
before ``np.load`` copies it again. 600 MB/s is still about 230 s of WavLM Large
features per second in one loader process. At 100,000 utterances in 2 sets of 8 jobs
the npy layout is 100,086 files, the ark 102 (16 arks).

MB/s counts the stored float16 bytes of the arrays (1 MB = 10^6 bytes); ``ark/npy``
is the ark's rate over the npy's. The file counts are those of a dump of ``--msp_utts``
utterances in ``--msp_sets`` sets of ``--nj`` jobs (stage 3 dumps the training and
validation sets; the msp_podcast run.sh's ``nj=8``): npy writes a file per utterance,
the ark one per job part, and both the small lists of each part and set
(``PART_LISTS``, ``MERGED_LISTS``).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from merit.bin.dump_ssl import ARK, SCP, append_record
from merit.data.datadir import read_kv, write_kv
from merit.utils.job_parts import job_utterances, part_dir
from merit.utils.measure_table import MeasureTable

LAYOUTS = {"npy": "npy", "ark": "kaldi_ark"}  # layout: ESPnet data type
#: The small files of a dump_ssl job part and of the merged set, in either layout.
PART_LISTS = ("feats.scp", "feats_shape", "feats_info.yaml", "settings.yaml", "done")
MERGED_LISTS = ("feats.scp", "feats_shape", "feats_info.yaml")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_utts", type=int, default=200)
    parser.add_argument("--min_seconds", type=float, default=3.0)
    parser.add_argument("--max_seconds", type=float, default=8.0)
    parser.add_argument("--num_layers", type=int, default=25, help="L (WavLM Large: 25)")
    parser.add_argument("--hidden_size", type=int, default=1024, help="D (WavLM Large: 1024)")
    parser.add_argument("--frame_rate", type=int, default=50, help="frames per second")
    parser.add_argument("--num_jobs", type=int, default=4, help="ark parts of the written set")
    parser.add_argument("--msp_utts", type=int, default=100_000,
                        help="utterances of the dumped sets at MSP-Podcast's size")
    parser.add_argument("--msp_sets", type=int, default=2, help="dumped sets (train, dev)")
    parser.add_argument("--nj", type=int, default=8, help="stage 3 jobs (msp_podcast run.sh)")
    parser.add_argument("--tiny", action="store_true",
                        help="12 utterances of 0.3-0.8 s, 3 x 16: checks the benchmark runs")
    parser.add_argument("--work_dir", default=None,
                        help="where to write the sets (default: a temporary directory; "
                        "about 2 × 2.8 GB at the defaults)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="read each layout this many times (which goes first alternates); "
                        "the fastest read counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    return parser


def write_sets(root: Path, args) -> int:
    """The same random arrays as ``root/npy`` and ``root/ark`` (each with its feats.scp);
    returns their stored bytes. One array in memory at a time."""
    rng = np.random.default_rng(args.seed)
    utts = [f"utt{i:06d}" for i in range(args.num_utts)]
    part_of = {utt: job for job in range(1, args.num_jobs + 1)
               for utt in job_utterances(utts, job, args.num_jobs)}
    (root / "npy").mkdir(parents=True)
    ark_fds, scp_fds = {}, {}
    for job in range(1, args.num_jobs + 1):
        part = part_dir(root / "ark", job, args.num_jobs)
        part.mkdir(parents=True)
        ark_fds[job] = open(part / ARK, "ab")
        scp_fds[job] = open(part / SCP, "a", encoding="utf-8")
    npy_scp, nbytes = {}, 0
    try:
        for utt in utts:
            frames = int(rng.uniform(args.min_seconds, args.max_seconds) * args.frame_rate)
            feats = rng.standard_normal((frames, args.num_layers, args.hidden_size),
                                        dtype=np.float32).astype(np.float16)
            npy_scp[utt] = root / "npy" / f"{utt}.npy"
            np.save(npy_scp[utt], feats)
            append_record(ark_fds[part_of[utt]], scp_fds[part_of[utt]], utt, feats)
            nbytes += feats.nbytes
    finally:
        for fd in (*ark_fds.values(), *scp_fds.values()):
            fd.close()
    write_kv(root / "npy" / SCP, npy_scp)
    merged = {}
    for job in ark_fds:
        merged.update(read_kv(part_dir(root / "ark", job, args.num_jobs) / SCP))
    write_kv(root / "ark" / SCP, merged)
    return nbytes


def drop_from_page_cache(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def read_seconds(scp: Path, data_type: str, order: List[str]) -> float:
    """Seconds to read every utterance of ``scp`` in ``order`` through ESPnetDataset."""
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset([(str(scp), "feats", data_type)])
    start = time.perf_counter()
    for utt in order:
        dataset[utt]
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    if args.tiny:
        args.num_utts, args.min_seconds, args.max_seconds = 12, 0.3, 0.8
        args.num_layers, args.hidden_size, args.num_jobs, args.repeats = 3, 16, 2, 1
    table = MeasureTable()
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        root = Path(tmp)
        nbytes = write_sets(root, args)
        table.record("utterances", args.num_utts)
        table.record("shape", f"(T, {args.num_layers}, {args.hidden_size}) float16, "
                              f"{args.min_seconds:g}-{args.max_seconds:g} s")
        table.record("stored_MB", nbytes / 1e6)
        order = list(read_kv(root / "npy" / SCP))
        np.random.default_rng(args.seed).shuffle(order)
        seconds: Dict[tuple, float] = {}
        for repeat in range(args.repeats):
            layouts = list(LAYOUTS)[::-1] if repeat % 2 else list(LAYOUTS)
            for cache in ("cold", "warm"):
                for layout in layouts:
                    if cache == "cold":
                        drop_from_page_cache(root / layout)
                    took = read_seconds(root / layout / SCP, LAYOUTS[layout], order)
                    seconds[cache, layout] = min(took, seconds.get((cache, layout), took))
        for cache in ("cold", "warm"):
            for layout in LAYOUTS:
                table.record(f"{cache}_{layout}_MB_per_s", nbytes / 1e6 / seconds[cache, layout])
                table.record(f"{cache}_{layout}_utts_per_s", args.num_utts / seconds[cache, layout])
            table.record(f"{cache}_ark_over_npy", seconds[cache, "npy"] / seconds[cache, "ark"])
    fixed = args.msp_sets * (len(MERGED_LISTS) + args.nj * len(PART_LISTS))
    table.record("msp_files_npy", args.msp_utts + fixed)
    table.record("msp_files_ark", args.msp_sets * args.nj + fixed)
    if args.out:
        table.write_json(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
