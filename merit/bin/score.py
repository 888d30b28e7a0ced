"""Score a decoded set (recipe stage 6): SER on the hypotheses, SE on the noisy input
and on the enhanced output.

    python -m merit.bin.score --data_dir data/test1_snr-5_seen \\
        --decode_dir exp/sparse_merit_fbank/decode_test1_snr-5_seen --nj 2

Writes to ``--decode_dir``: ``scores.json`` (means and counts), ``per_utt_se.tsv``
(ssnr, pesq, stoi, estoi, si_sdr of noisy and of enhanced, per utterance),
``per_utt_ser.tsv`` (reference, hypothesis), ``confusion.txt`` and
``confusion.png``. SE metrics compare with ``spk1.scp``, the clean reference.

The noisy-input metrics are the same for every system scored on a set. With
``--noisy_cache PATH`` they are kept in a TSV (``utt``, path, size and mtime_ns of
the noisy and the clean file, then the metrics at full precision): rows whose files
are unchanged are reused, all others computed, and the file rewritten for the set.
"""
import argparse
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from merit.data.audio_io import read_audio
from merit.data.datadir import c_sorted, read_kv
from merit.metrics.classification import (SER_METRICS, classification_scores, confusion_matrix,
                                          format_confusion)
from merit.metrics.confusion_plot import plot_confusion
from merit.metrics.se import SE_METRICS, se_scores

SE_NAMES = tuple(metric.name for metric in SE_METRICS)
STAMP_COLUMNS = ("noisy_path", "size", "mtime_ns", "clean_path", "clean_size", "clean_mtime_ns")
CACHE_HEADER = "\t".join(("utt",) + STAMP_COLUMNS + SE_NAMES)


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="noisy set: wav.scp, spk1.scp, utt2emo")
    parser.add_argument("--decode_dir", required=True, help="enhanced.scp and/or utt2emo_hyp")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes for SE metrics")
    parser.add_argument("--noisy_cache", type=Path, default=None,
                        help="TSV of the noisy-input SE metrics of this set, reused and updated")
    return parser


def score_utterance(task):
    """(utt, {noisy_<metric>: …, enhanced_<metric>: …}) for one utterance; a path of
    None (noisy: cached, enhanced: absent) leaves its metrics out."""
    utt, clean_path, noisy_path, enhanced_path = task
    clean = read_audio(clean_path)
    row = {}
    if noisy_path is not None:
        row.update({f"noisy_{k}": v for k, v in se_scores(clean, read_audio(noisy_path)).items()})
    if enhanced_path is not None:
        enhanced = read_audio(enhanced_path)
        if enhanced.size != clean.size:
            raise ValueError(f"{enhanced_path}: {enhanced.size} samples, the reference "
                             f"{clean_path} has {clean.size}")
        row.update({f"enhanced_{k}": v for k, v in se_scores(clean, enhanced).items()})
    return utt, row


def nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: a shared cache
    tmp.write_text(text)
    os.replace(tmp, path)


def file_stamp(path: str) -> tuple:
    """(path, size, mtime_ns) of a file, as strings: what the noisy cache compares."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read audio: {err.strerror}") from err
    return path, str(stat.st_size), str(stat.st_mtime_ns)


def read_noisy_cache(path: Path) -> dict:
    """{utt: (stamps, {noisy_<metric>: value})} from a noisy cache; {} when there is
    none or, with a warning, when it cannot be parsed."""
    if not path.exists():
        return {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0] != CACHE_HEADER:
            raise ValueError("not a noisy-input cache (header)")
        cache = {}
        for lineno, line in enumerate(lines[1:], 2):
            fields = line.split("\t")
            if len(fields) != 1 + len(STAMP_COLUMNS) + len(SE_NAMES):
                raise ValueError(f"line {lineno}: {len(fields)} fields")
            stamps, values = tuple(fields[1:1 + len(STAMP_COLUMNS)]), fields[1 + len(STAMP_COLUMNS):]
            cache[fields[0]] = stamps, {f"noisy_{m}": float(v) for m, v in zip(SE_NAMES, values)}
    except (OSError, ValueError) as err:
        print(f"score: warning: {path}: unreadable ({err}); recomputing the noisy-input metrics",
              file=sys.stderr)
        return {}
    return cache


def write_noisy_cache(path: Path, utts, stamps: dict, rows: dict) -> None:
    """The noisy cache of ``utts``, replacing the file as a whole."""
    lines = [CACHE_HEADER]
    lines += ["\t".join((utt,) + stamps[utt] + tuple(repr(rows[utt][f"noisy_{m}"]) for m in SE_NAMES))
              for utt in utts]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines) + "\n")


def compute_rows(tasks, nj: int, desc: str) -> dict:
    """{utt: row} of ``score_utterance`` over ``tasks``, in ``nj`` processes (none if no tasks)."""
    if not tasks:
        return {}
    with ProcessPoolExecutor(max_workers=max(1, nj)) as pool:
        return dict(tqdm(pool.map(score_utterance, tasks, chunksize=8), total=len(tasks),
                         desc=desc, mininterval=5.0))


def score_se(data_dir: Path, decode_dir: Path, nj: int, noisy_cache: Path = None) -> dict:
    noisy, clean = read_kv(data_dir / "wav.scp"), read_kv(data_dir / "spk1.scp")
    enhanced_scp = decode_dir / "enhanced.scp"
    enhanced = read_kv(enhanced_scp) if enhanced_scp.is_file() else {}
    missing = [u for u in enhanced if u not in clean]
    if missing:
        raise ValueError(f"{enhanced_scp}: {len(missing)} utterance(s) not in {data_dir}, e.g. {missing[0]}")
    utts = c_sorted(noisy)
    cached, stamps = {}, {}
    if noisy_cache is not None:
        stamps = {u: file_stamp(noisy[u]) + file_stamp(clean[u]) for u in utts}
        cache = read_noisy_cache(noisy_cache)
        cached = {u: cache[u][1] for u in utts if u in cache and cache[u][0] == stamps[u]}
        print(f"score: {decode_dir}: noisy-input metrics of {len(cached)}/{len(utts)} utterances "
              f"from {noisy_cache}", file=sys.stderr)
    tasks = [(u, clean[u], None if u in cached else noisy[u], enhanced.get(u)) for u in utts
             if u not in cached or u in enhanced]
    computed = compute_rows(tasks, nj, f"scoring {decode_dir.name}")
    rows = {u: {**cached.get(u, {}), **computed.get(u, {})} for u in utts}
    if noisy_cache is not None:
        write_noisy_cache(noisy_cache, utts, stamps, rows)
    columns = [f"{which}_{m}" for which in ("noisy", "enhanced") for m in SE_NAMES
               if f"{which}_{m}" in rows[utts[0]]]
    lines = ["utt\t" + "\t".join(columns)]
    lines += [utt + "\t" + "\t".join(f"{rows[utt][c]:.4f}" for c in columns) for utt in utts]
    write_atomic(decode_dir / "per_utt_se.tsv", "\n".join(lines) + "\n")
    result = {"count": len(utts)}
    for which in ("noisy", "enhanced"):
        if f"{which}_{SE_NAMES[0]}" in columns:
            result[which] = {m: nanmean([rows[u][f"{which}_{m}"] for u in utts]) for m in SE_NAMES}
    return result


def score_ser(data_dir: Path, decode_dir: Path) -> dict:
    ref, hyp = read_kv(data_dir / "utt2emo"), read_kv(decode_dir / "utt2emo_hyp")
    classes = (decode_dir / "classes").read_text().split()
    missing = [u for u in ref if u not in hyp]
    if missing:
        raise ValueError(f"{decode_dir / 'utt2emo_hyp'}: no hypothesis for {len(missing)} "
                         f"utterance(s), e.g. {missing[0]}")
    utts = c_sorted(ref)
    index = {c: i for i, c in enumerate(classes)}
    confusion = confusion_matrix([index[ref[u]] for u in utts], [index[hyp[u]] for u in utts],
                                 len(classes))
    write_atomic(decode_dir / "per_utt_ser.tsv",
                 "utt\tref\thyp\n" + "".join(f"{u}\t{ref[u]}\t{hyp[u]}\n" for u in utts))
    write_atomic(decode_dir / "confusion.txt", format_confusion(confusion, classes) + "\n")
    plot_confusion(confusion, classes, decode_dir / "confusion.png", title=decode_dir.name)
    return {"count": len(utts), **classification_scores(confusion, classes)}


def summary_of(values: dict, metrics) -> list:
    """``["SSNR -1.50 dB", …]``: the table metrics among ``values``, for the log."""
    return [f"{m.title} {m.format(values[m.name])} {m.unit}".rstrip()
            for m in metrics if m.in_tables]


def main(argv=None):
    args = get_parser().parse_args(argv)
    data_dir, decode_dir = Path(args.data_dir), Path(args.decode_dir)
    missing = [str(p) for p in (data_dir / "wav.scp", data_dir / "spk1.scp", decode_dir)
               if not p.exists()]
    if missing:
        print(f"score: error: missing {', '.join(missing)} (run stages 2 and 5 first)",
              file=sys.stderr)
        return 1
    scores = {"set": data_dir.name, "decode_dir": str(decode_dir)}
    for name in ("utt2snr", "utt2category"):
        values = set(read_kv(data_dir / name).values()) if (data_dir / name).is_file() else set()
        if len(values) == 1:
            scores[{"utt2snr": "snr_db", "utt2category": "condition"}[name]] = values.pop()
    try:
        if (decode_dir / "utt2emo_hyp").is_file():
            scores["ser"] = score_ser(data_dir, decode_dir)
        scores["se"] = score_se(data_dir, decode_dir, args.nj, args.noisy_cache)
    except ValueError as err:
        print(f"score: error: {err}", file=sys.stderr)
        return 1
    write_atomic(decode_dir / "scores.json", json.dumps(scores, indent=2) + "\n")
    summary = []
    if "ser" in scores:
        summary.append(", ".join(summary_of(scores["ser"], SER_METRICS)))
    for which in ("noisy", "enhanced"):
        if which in scores["se"]:
            summary.append(f"{which}: " + ", ".join(summary_of(scores["se"][which], SE_METRICS)))
    print(f"score: {decode_dir}: " + "; ".join(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
