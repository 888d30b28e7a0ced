"""Decode data sets with a trained MERIT model (recipe stage 5).

    python -m merit.bin.merit_inference --model_dir exp/sparse_merit_fbank \\
        --data_dir data/test1_snr-5_seen --feats_dir dump/fbank/test1_snr-5_seen \\
        --out_dir exp/sparse_merit_fbank/decode_test1_snr-5_seen

Writes to ``--out_dir``: ``enhanced/<utt>.wav`` and ``enhanced.scp`` (SE),
``utt2emo_hyp`` and ``utt2posteriors`` (``<utt> p_1 … p_C`` in the order of
``classes``) (SER), and ``utt2expert_usage_<task>`` (``<utt> f_1 … f_E``: the
fraction of the utterance's frames whose top-1 expert is each expert).

``--data_dir``/``--feats_dir``/``--out_dir`` may be repeated (in order), so one
process loads the model once for several sets. A model trained on dumped features
reads them from ``--feats_dir`` (its ``feats.scp``) or, without one, computes them
from the audio and rounds them as the dump did (``Speech2Merit``): the same outputs
either way. ``--num_jobs N --job J`` decodes every N-th utterance into ``job{J}of{N}/``;
``--merge true`` joins the parts. The lists are written last, so a directory with
``utt2emo_hyp``/``enhanced.scp`` is complete.

Utterances are decoded in batches (``Speech2Merit.batch``): a job's share, longest
first, cut into batches of at most ``--batch_seconds`` of padded audio (utterances x
the longest, from ``utt2num_samples`` or the audio headers); one longer than that is
decoded alone, and ``--batch_seconds 0`` decodes one utterance at a time. A batch
gives each utterance the same bits it gets alone (``Speech2Merit.batch``), so every
file written is the same at any ``--batch_seconds``.
"""
import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Dict, Sequence

from espnet2.utils.types import str2bool
from tqdm import tqdm

from merit.batching import DEFAULT_BATCH_SECONDS, length_batches
from merit.data.audio_io import SAMPLE_RATE, audio_info, read_audio
from merit.data.datadir import read_kv, write_kv
from merit.tasks.task_specs import table_row
from merit.utils.job_parts import check_job, finished_parts, job_utterances, mark_done, part_dir

log = logging.getLogger("merit_inference")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="default: the config's first best_model_criterion, "
                             "e.g. valid.macro_f1.best.pth")
    parser.add_argument("--data_dir", required=True, action="append",
                        help="data directory with wav.scp (noisy); repeatable")
    parser.add_argument("--feats_dir", action="append", default=None,
                        help="dumped features of each set (feats.scp), for models trained on "
                             "dumps; an empty one: computed from the set's audio")
    parser.add_argument("--out_dir", required=True, action="append", help="one per --data_dir")
    parser.add_argument("--batch_seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                        help="padded audio per batch, in seconds (utterances x the longest); "
                             "0: one utterance at a time")
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_jobs", type=int, default=0)
    parser.add_argument("--job", type=int, default=0)
    parser.add_argument("--merge", type=str2bool, default=False)
    return parser


def num_samples(data_dir: Path, wav_scp: Dict[str, str], utts: Sequence[str]) -> Dict[str, int]:
    """Samples of each of ``utts``: the data dir's ``utt2num_samples``, else (for an
    utterance it does not list) its audio file's header."""
    listed = read_kv(data_dir / "utt2num_samples") if (data_dir / "utt2num_samples").is_file() else {}
    return {utt: int(listed[utt]) if utt in listed else audio_info(wav_scp[utt]).frames
            for utt in utts}


def decode(speech2merit, utts, wav_scp, data_dir, feats_dir, out_dir: Path, part: Path,
           batch_seconds: float) -> None:
    from merit.models.frontend import load_dumped

    feats_scp = read_kv(Path(feats_dir) / "feats.scp") if feats_dir else {}
    lengths = num_samples(Path(data_dir), wav_scp, utts)
    batches = length_batches(lengths, int(batch_seconds * SAMPLE_RATE))
    tables = {}
    part.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(utts), desc=part.parent.name, mininterval=5.0, file=sys.stdout) as bar:
        for batch in batches:
            feats = [load_dumped(feats_scp[utt]) if utt in feats_scp else None for utt in batch]
            results = speech2merit.batch([read_audio(wav_scp[utt]) for utt in batch], feats)
            for utt, result in zip(batch, results):
                for task in speech2merit.model.tasks:
                    entries = task.decode_entries(utt, result.outputs[task.name], out_dir,
                                                  speech2merit.classes)
                    for name, value in entries.items():
                        tables.setdefault(name, {})[utt] = value
                for task, usage in result.expert_usage.items():
                    tables.setdefault(f"utt2expert_usage_{task}", {})[utt] = table_row(usage)
            bar.update(len(batch))
    for name, table in tables.items():
        write_kv(part / name, table)
    (part / "classes").write_text("\n".join(speech2merit.classes) + "\n")
    mark_done(part)
    log.info("%s: decoded %d utterances in %d batches", part, len(utts), len(batches))


def merge(out_dir: Path, num_jobs: int) -> None:
    parts = finished_parts(out_dir, num_jobs)
    names = sorted({p.name for part in parts for p in part.iterdir()} - {"done", "classes"})
    for name in names:
        table = {}
        for part in parts:
            table.update(read_kv(part / name))
        write_kv(out_dir / f"{name}.tmp", table)
    (out_dir / "classes").write_text((parts[0] / "classes").read_text())
    for name in names:  # renamed last: their presence marks a complete decode
        os.replace(out_dir / f"{name}.tmp", out_dir / name)
    log.info("%s: merged %d parts (%s)", out_dir, num_jobs, " ".join(names))


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s merit_inference: %(message)s")
    feats_dirs = args.feats_dir or [None] * len(args.data_dir)
    try:
        if not len(args.data_dir) == len(args.out_dir) == len(feats_dirs):
            raise ValueError("give one --out_dir (and --feats_dir, if any) per --data_dir")
        if args.merge:
            for out_dir in args.out_dir:
                merge(Path(out_dir), args.num_jobs)
            return 0
        if args.batch_seconds < 0:
            raise ValueError(f"--batch_seconds must be 0 (one utterance at a time) or more, "
                             f"got {args.batch_seconds}")
        num_jobs, job = args.num_jobs or 1, args.job or 1
        check_job(job, num_jobs)
        from merit.inference import Speech2Merit

        speech2merit = Speech2Merit(args.model_dir, args.checkpoint,
                                    device="cuda" if args.ngpu > 0 else "cpu")
        for data_dir, feats_dir, out_dir in zip(args.data_dir, feats_dirs, args.out_dir):
            wav_scp = read_kv(Path(data_dir) / "wav.scp")
            out_dir = Path(out_dir)
            decode(speech2merit, job_utterances(wav_scp, job, num_jobs), wav_scp, data_dir,
                   feats_dir, out_dir, part_dir(out_dir, job, num_jobs), args.batch_seconds)
            if not args.num_jobs:
                merge(out_dir, 1)
    except (ValueError, FileNotFoundError) as err:
        print(f"merit_inference: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
