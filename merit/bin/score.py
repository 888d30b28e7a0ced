"""Score a decoded set (recipe stage 6): SER on the hypotheses, SE on the noisy input
and on the enhanced output.

    python -m merit.bin.score --data_dir data/test1_snr-5_seen \\
        --decode_dir exp/sparse_merit_fbank/decode_test1_snr-5_seen --nj 2

Writes to ``--decode_dir``: ``scores.json`` (means and counts), ``per_utt_se.tsv``
(the SE metrics of noisy, of the oracles and of enhanced, per utterance),
``per_utt_ser.tsv`` (reference, hypothesis), ``confusion.txt`` and ``confusion.png``.
SE metrics compare with ``spk1.scp``, the clean reference.

The SE metrics are those of ``merit.metrics.se.DEFAULT_SE_METRICS`` (ssnr, pesq, stoi,
estoi, si_sdr, lsd, llr, wss and the composite csig, cbak, covl derived from them), and
the opt-in ones named with ``--extra_metrics`` (DNSMOS: dnsmos_sig, dnsmos_bak,
dnsmos_ovrl). A non-intrusive metric (DNSMOS) needs no reference, so it is also scored on
the clean reference itself: ``clean_<metric>`` per utterance, ``se.clean`` in
``scores.json`` (the non-intrusive metrics only), before ``noisy``.

With ``--oracle_config exp/<run>/config.yaml`` (the trained model whose SE head made
the enhanced output) two bounds of that head are scored too, as ``oracle_mask`` and
``oracle_magnitude`` beside ``noisy`` and ``enhanced``: the ideal mask of the head's
mask family applied to the noisy STFT, and the clean STFT magnitude with the noisy
phase, both resynthesised as the head's output is (``oracle_outputs`` of the head,
built from the config's ``se_head_conf``; no weights are read). ``scores.json`` also
holds, under ``se.oracle_settings``, what each oracle depends on (the STFT, and for
``oracle_mask`` the mask family). The oracle waveforms are scored as float32, not
rounded to 16 bits as the decoded output is written (a difference about 90 dB down).
A config without an SE head (``se_head: none``) gives no oracle rows.

The noisy-input metrics are the same for every system scored on a set, the oracle
metrics for every system whose head has the same oracle settings. With
``--noisy_cache PATH`` both are kept in TSVs (``utt``, path, size and mtime_ns of the
noisy and the clean file, then the metrics at full precision): the noisy-input ones (and
those of the clean reference, ``clean_<metric>``) in PATH, the oracle ones beside it in ``oracle_<rest of PATH's name>_<hash of the oracle
settings>.tsv`` (PATH's name without its ``noisy_`` prefix: ``noisy_se_scores.tsv``
gives ``oracle_se_scores_<hash>.tsv``). Rows whose files are unchanged are reused, all
others computed, and each file rewritten for the set with the metrics scored. A cache
written with more metrics (``--extra_metrics``) serves a run with fewer; one that lacks
a metric scored is computed again as a whole.

Without ``--decode_dir`` only these caches are filled (``--noisy_cache`` is then
required): stage 4 does so on the cores its training leaves idle, so that stage 6 finds
the noisy-input and oracle metrics already computed. The oracle settings are read from
the config stage 4 composes for the model (``se_head``, ``se_head_conf``), as they are
later from the trained model's config.yaml.
"""
import argparse
import hashlib
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import yaml
from tqdm import tqdm

from merit.data.audio_io import read_audio
from merit.data.datadir import c_sorted, read_kv
from merit.metrics.classification import (SER_METRICS, classification_scores, confusion_matrix,
                                          format_confusion)
from merit.metrics.confusion_plot import plot_confusion
from merit.metrics.se import (DEFAULT_SE_METRICS, SE_METRICS, reference_free_scores, se_metrics,
                              se_scores)
from merit.tasks.task_specs import SpeechEnhancement

SE_NAMES = tuple(metric.name for metric in DEFAULT_SE_METRICS)  # scored unless more are asked
OPT_IN = tuple(metric.name for metric in SE_METRICS if not metric.default)
STAMP_COLUMNS = ("noisy_path", "size", "mtime_ns", "clean_path", "clean_size", "clean_mtime_ns")
CACHE_HEADER = "\t".join(("utt",) + STAMP_COLUMNS + SE_NAMES)  # of the default noisy cache
#: The oracle outputs of an SE head (``oracle_outputs``), in table order.
ORACLES = ("oracle_mask", "oracle_magnitude")
SE_TASK = SpeechEnhancement()


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, action="append",
                        help="noisy set: wav.scp, spk1.scp, utt2emo; repeatable (one process "
                        "scores several sets)")
    parser.add_argument("--decode_dir", action="append", default=None,
                        help="enhanced.scp and/or utt2emo_hyp, one per --data_dir; without it "
                        "only the caches of --noisy_cache are filled")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes for SE metrics")
    parser.add_argument("--noisy_cache", type=Path, action="append", default=None,
                        help="TSV of the noisy-input SE metrics of each set (one per --data_dir), "
                        "reused and updated; the oracle metrics are cached beside it")
    parser.add_argument("--oracle_config", type=Path, default=None,
                        help="config.yaml of the model whose SE head made the enhanced output: "
                        "score that head's oracle bounds too")
    parser.add_argument("--extra_metrics", nargs="+", default=[], choices=OPT_IN,
                        metavar="METRIC", help="opt-in SE metrics to score too, beyond the "
                        f"default set ({', '.join(OPT_IN)}); the non-intrusive ones are also "
                        "scored on the clean reference")
    return parser


class Oracle(NamedTuple):
    """The SE head of a trained model's config, for its oracle outputs."""

    head: str  # its choice of ``se_head`` (a key of SE_TASK.head_classes())
    conf: dict  # its ``se_head_conf``
    settings: dict  # {oracle: what it depends on} (the head's ``oracle_settings()``)

    def build(self):
        """The head, untrained (the oracles need no weights), with one torch thread."""
        import torch

        torch.set_num_threads(1)
        return SE_TASK.head_classes()[self.head](input_size=1, **self.conf)

    def cache_path(self, noisy_cache: Path) -> Path:
        """Where the oracle metrics are cached beside ``noisy_cache`` (module docstring)."""
        key = json.dumps(self.settings, sort_keys=True).encode()
        stem = noisy_cache.stem[len("noisy_"):] if noisy_cache.stem.startswith("noisy_") \
            else noisy_cache.stem
        return noisy_cache.with_name(f"oracle_{stem}_{hashlib.sha1(key).hexdigest()[:8]}.tsv")


def load_oracle(config: Path) -> Optional[Oracle]:
    """The ``Oracle`` of a trained model's config.yaml; None (said on stderr) when the
    model has no SE head. ValueError when the config cannot give one."""
    try:
        conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{config}: cannot read the --oracle_config ({err}); give the "
                         "config.yaml of a trained model (run stage 4 first)") from err
    if not isinstance(conf, dict):
        raise ValueError(f"{config}: not a model config (a YAML mapping): give the "
                         "config.yaml of a trained model")
    head = conf.get(f"{SE_TASK.name}_head", SE_TASK.default_head)
    if head in (None, "none"):
        print(f"score: {config}: no SE head ({SE_TASK.name}_head: none), no oracle rows",
              file=sys.stderr)
        return None
    classes = SE_TASK.head_classes()
    if head not in classes:
        raise ValueError(f"{config}: unknown {SE_TASK.name}_head {head!r} (choices: "
                         f"{', '.join(classes)})")
    oracle = Oracle(head, dict(conf.get(f"{SE_TASK.name}_head_conf") or {}), {})
    try:
        built = oracle.build()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{config}: cannot build its SE head from {SE_TASK.name}_head_conf: "
                         f"{err}") from err
    if not hasattr(built, "oracle_outputs"):
        raise ValueError(f"{config}: the SE head {head!r} ({type(built).__name__}) has no "
                         "oracle_outputs; score without --oracle_config")
    return oracle._replace(settings=built.oracle_settings())


#: The oracle head of a worker process (``start_worker``), None when not scoring oracles.
_worker_head = None


def start_worker(oracle: Optional[Oracle]) -> None:
    """Pool initializer: build the oracle head once per process."""
    global _worker_head
    _worker_head = oracle.build() if oracle is not None else None


def oracle_waveforms(noisy: np.ndarray, clean: np.ndarray) -> dict:
    """{oracle: (S,) float32 waveform} of the worker's head for one utterance."""
    import torch

    lengths = torch.tensor([noisy.shape[0]])
    with torch.no_grad():
        outputs = _worker_head.oracle_outputs(torch.from_numpy(noisy)[None],
                                              torch.from_numpy(clean)[None], lengths)
    return {which: outputs[which][0].numpy() for which in ORACLES}


def score_utterance(task):
    """(utt, {<input>_<metric>: …, enhanced_<metric>: …}) for one utterance. ``inputs``
    names what to score besides the enhanced file: ``noisy`` (the noisy file), ``clean``
    (the non-intrusive metrics of the clean reference) and/or ``oracle`` (``ORACLES`` of
    the worker's head); an enhanced path of None (absent) leaves its metrics out.
    ``extra``: the opt-in metrics scored beside the default ones (``se_metrics``)."""
    utt, clean_path, noisy_path, enhanced_path, inputs, extra = task
    metrics = se_metrics(extra)
    clean = read_audio(clean_path)
    row = {}
    if "clean" in inputs:
        row.update({f"clean_{k}": v for k, v in reference_free_scores(clean, metrics=metrics).items()})
    if "noisy" in inputs or "oracle" in inputs:
        noisy = read_audio(noisy_path)
        if noisy.size != clean.size:
            raise ValueError(f"{noisy_path}: {noisy.size} samples, the reference "
                             f"{clean_path} has {clean.size}")
        if "noisy" in inputs:
            row.update({f"noisy_{k}": v for k, v in se_scores(clean, noisy, metrics=metrics).items()})
        if "oracle" in inputs:
            for which, wav in oracle_waveforms(noisy, clean).items():
                row.update({f"{which}_{k}": v
                            for k, v in se_scores(clean, wav, metrics=metrics).items()})
    if enhanced_path is not None:
        enhanced = read_audio(enhanced_path)
        if enhanced.size != clean.size:
            raise ValueError(f"{enhanced_path}: {enhanced.size} samples, the reference "
                             f"{clean_path} has {clean.size}")
        row.update({f"enhanced_{k}": v
                    for k, v in se_scores(clean, enhanced, metrics=metrics).items()})
    return utt, row


def nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: a shared cache
    tmp.write_text(text)
    os.replace(tmp, path)


def file_stamp(path: str) -> tuple:
    """(path, size, mtime_ns) of a file, as strings: what the caches compare."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read audio: {err.strerror}") from err
    return path, str(stat.st_size), str(stat.st_mtime_ns)


@dataclass(frozen=True)
class RowCache:
    """A TSV of per-utterance metrics that depend only on a set's noisy and clean files:
    ``utt``, the ``STAMP_COLUMNS`` of both files, then ``columns`` at full precision,
    holding the row values ``keys`` (in the same order). A file with more columns (written
    with more metrics) serves too; one without some of ``columns`` is recomputed."""

    path: Path
    what: str  # for messages, e.g. "noisy-input"
    keys: tuple  # row keys, e.g. noisy_pesq
    columns: tuple  # their headings in the file, e.g. pesq

    @property
    def header(self) -> str:
        return "\t".join(("utt",) + STAMP_COLUMNS + self.columns)

    def read(self) -> dict:
        """{utt: (stamps, {key: value})}; {} when there is no file, when it lacks some
        of ``columns`` (said on stderr) or, with a warning, when it cannot be parsed."""
        if not self.path.exists():
            return {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = lines[0].split("\t") if lines else []
            if header[:1 + len(STAMP_COLUMNS)] != ["utt", *STAMP_COLUMNS]:
                raise ValueError(f"not a {self.what} cache (header)")
            missing = [column for column in self.columns if column not in header]
            if missing:
                print(f"score: {self.path}: no {', '.join(missing)} column(s); recomputing the "
                      f"{self.what} metrics", file=sys.stderr)
                return {}
            where = [header.index(column) for column in self.columns]
            cache = {}
            for lineno, line in enumerate(lines[1:], 2):
                fields = line.split("\t")
                if len(fields) != len(header):
                    raise ValueError(f"line {lineno}: {len(fields)} fields, the header {len(header)}")
                cache[fields[0]] = (tuple(fields[1:1 + len(STAMP_COLUMNS)]),
                                    {k: float(fields[i]) for k, i in zip(self.keys, where)})
        except (OSError, ValueError) as err:
            print(f"score: warning: {self.path}: unreadable ({err}); recomputing the "
                  f"{self.what} metrics", file=sys.stderr)
            return {}
        return cache

    def write(self, utts, stamps: dict, rows: dict) -> None:
        """The rows of ``utts``, replacing the file as a whole."""
        lines = [self.header]
        lines += ["\t".join((utt,) + stamps[utt] + tuple(repr(rows[utt][k]) for k in self.keys))
                  for utt in utts]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "\n".join(lines) + "\n")


def compute_rows(tasks, nj: int, desc: str, oracle: Optional[Oracle] = None) -> dict:
    """{utt: row} of ``score_utterance`` over ``tasks``, in ``nj`` processes (none if no
    tasks), each with the head of ``oracle`` when a task scores the oracles (building
    it imports torch: a second or two per process)."""
    if not tasks:
        return {}
    if not any("oracle" in inputs for _, _, _, _, inputs, _ in tasks):
        oracle = None
    with ProcessPoolExecutor(max_workers=max(1, nj), initializer=start_worker,
                             initargs=(oracle,)) as pool:
        return dict(tqdm(pool.map(score_utterance, tasks, chunksize=8), total=len(tasks),
                         desc=desc, mininterval=5.0))


def score_se(data_dir: Path, decode_dir: Optional[Path], nj: int, noisy_cache: Path = None,
             oracle: Optional[Oracle] = None, extra: tuple = ()) -> dict:
    """SE metrics (the default ones and the opt-in ones named in ``extra``) of the set's
    noisy input, of the oracles of ``oracle`` and of the enhanced output in
    ``decode_dir`` (None: no enhanced output, no ``per_utt_se.tsv``), and the
    non-intrusive ones of the clean reference (``clean``, when any is scored)."""
    noisy, clean = read_kv(data_dir / "wav.scp"), read_kv(data_dir / "spk1.scp")
    enhanced_scp = decode_dir / "enhanced.scp" if decode_dir is not None else None
    enhanced = read_kv(enhanced_scp) if enhanced_scp is not None and enhanced_scp.is_file() else {}
    missing = [u for u in enhanced if u not in clean]
    if missing:
        raise ValueError(f"{enhanced_scp}: {len(missing)} utterance(s) not in {data_dir}, e.g. {missing[0]}")
    utts = c_sorted(noisy)
    metrics = se_metrics(extra)
    # the metrics of each scored signal, in table order: {part: metric names}
    names = tuple(metric.name for metric in metrics)
    part_metrics = {"clean": tuple(metric.name for metric in metrics if not metric.needs_reference),
                    "noisy": names, **{which: names for which in ORACLES}, "enhanced": names}
    # what is scored besides the enhanced files: {input: its row keys}
    inputs = {"noisy": tuple(f"noisy_{m}" for m in names)}
    if part_metrics["clean"]:
        inputs["clean"] = tuple(f"clean_{m}" for m in part_metrics["clean"])
    if oracle is not None:
        inputs["oracle"] = tuple(f"{which}_{m}" for which in ORACLES for m in names)
    caches, cached, stamps = [], {u: {} for u in utts}, {}
    if noisy_cache is not None:  # the clean file's metrics too: its rows stamp both files
        clean_keys = inputs.get("clean", ())
        caches.append(RowCache(noisy_cache, "noisy-input", inputs["noisy"] + clean_keys,
                               names + clean_keys))
        if oracle is not None:
            caches.append(RowCache(oracle.cache_path(noisy_cache), "oracle", inputs["oracle"],
                                   inputs["oracle"]))
        stamps = {u: file_stamp(noisy[u]) + file_stamp(clean[u]) for u in utts}
    for cache in caches:
        found = cache.read()
        reused = [u for u in utts if u in found and found[u][0] == stamps[u]]
        for u in reused:
            cached[u].update(found[u][1])
        print(f"score: {decode_dir or data_dir}: {cache.what} metrics of {len(reused)}/{len(utts)} "
              f"utterances from {cache.path}", file=sys.stderr)
    todo = {u: tuple(name for name, keys in inputs.items() if keys[0] not in cached[u])
            for u in utts}
    tasks = [(u, clean[u], noisy[u], enhanced.get(u), todo[u], tuple(extra)) for u in utts
             if todo[u] or u in enhanced]
    computed = compute_rows(tasks, nj, f"scoring {(decode_dir or data_dir).name}", oracle)
    rows = {u: {**cached[u], **computed.get(u, {})} for u in utts}
    for cache in caches:
        cache.write(utts, stamps, rows)
    parts = [which for which, its in part_metrics.items()
             if its and f"{which}_{its[0]}" in rows[utts[0]]]
    columns = [f"{which}_{m}" for which in parts for m in part_metrics[which]]
    if decode_dir is not None:
        lines = ["utt\t" + "\t".join(columns)]
        lines += [utt + "\t" + "\t".join(repr(rows[utt][c]) for c in columns) for utt in utts]
        write_atomic(decode_dir / "per_utt_se.tsv", "\n".join(lines) + "\n")
    result = {"count": len(utts)}
    for which in parts:
        result[which] = {m: nanmean([rows[u][f"{which}_{m}"] for u in utts])
                         for m in part_metrics[which]}
    if oracle is not None:
        result["oracle_settings"] = {which: oracle.settings[which] for which in ORACLES}
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


def score_set(data_dir: Path, decode_dir: Optional[Path], nj: int, noisy_cache: Optional[Path],
              oracle: Optional[Oracle], extra: tuple = ()) -> None:
    """Score one set into ``decode_dir`` (None: fill the caches only), with the opt-in SE
    metrics of ``extra`` too; ValueError on bad input."""
    missing = [str(p) for p in (data_dir / "wav.scp", data_dir / "spk1.scp", decode_dir)
               if p is not None and not p.exists()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (run stages 2 and 5 first)")
    if decode_dir is None:  # only the caches (module docstring)
        score_se(data_dir, None, nj, noisy_cache, oracle, extra)
        return
    scores = {"set": data_dir.name, "decode_dir": str(decode_dir)}
    for name in ("utt2snr", "utt2category"):
        values = set(read_kv(data_dir / name).values()) if (data_dir / name).is_file() else set()
        if len(values) == 1:
            scores[{"utt2snr": "snr_db", "utt2category": "condition"}[name]] = values.pop()
    if (decode_dir / "utt2emo_hyp").is_file():
        scores["ser"] = score_ser(data_dir, decode_dir)
    scores["se"] = score_se(data_dir, decode_dir, nj, noisy_cache, oracle, extra)
    write_atomic(decode_dir / "scores.json", json.dumps(scores, indent=2) + "\n")
    summary = []
    if "ser" in scores:
        summary.append(", ".join(summary_of(scores["ser"], SER_METRICS)))
    for which in ("noisy",) + ORACLES + ("enhanced",):
        if which in scores["se"]:
            summary.append(f"{which}: " + ", ".join(summary_of(scores["se"][which], SE_METRICS)))
    print(f"score: {decode_dir}: " + "; ".join(summary), file=sys.stderr)


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    data_dirs = [Path(d) for d in args.data_dir]
    decode_dirs = [Path(d) for d in args.decode_dir] if args.decode_dir else [None] * len(data_dirs)
    caches = args.noisy_cache or [None] * len(data_dirs)
    if not len(data_dirs) == len(decode_dirs) == len(caches):
        parser.error("give one --decode_dir and one --noisy_cache (when given) per --data_dir")
    if args.decode_dir is None and args.noisy_cache is None:
        parser.error("without --decode_dir give --noisy_cache: the caches are what is filled")
    try:
        oracle = load_oracle(args.oracle_config) if args.oracle_config is not None else None
        for data_dir, decode_dir, cache in zip(data_dirs, decode_dirs, caches):
            score_set(data_dir, decode_dir, args.nj, cache, oracle, tuple(args.extra_metrics))
    except ValueError as err:
        print(f"score: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
