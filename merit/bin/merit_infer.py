"""Enhance recordings and recognise their emotion with a trained MERIT model.

    merit-infer --model exp/sparse_merit_fbank_seed1 talk.wav clips/ data/test/wav.scp
    merit-infer --model model.zip --out_dir out/ clips/
    find /data -name '*.flac' | merit-infer --model model.zip -

Inputs: any mix of audio files (any rate and channel count: converted to 16 kHz mono),
folders (searched recursively for wav, flac, ogg and, where libsndfile reads it, mp3),
Kaldi wav.scp lists, and ``-`` for paths on standard input. ``--model`` is a trained
model dir or a packed model (``merit-pack``).

Prints one line per file: its duration, emotion and class probabilities. Recordings
longer than ``--segment`` seconds are processed in windows every ``--hop`` seconds with
memory bounded by one window (``merit.long_audio``): the enhanced audio is stitched by
a cross-fade, and the emotion is the windows' probabilities averaged over the seconds
each window owns. Consecutive shorter files go through the model together, in batches
of at most ``--batch_seconds`` of padded audio (files x the longest; 0: one at a time),
which changes no bit of any result (``Speech2Merit.batch``). With ``--out_dir``:

* ``enhanced/<input tree>.wav``: the enhanced audio (a folder's files keep their place
  below the folder's name; a wav.scp's utterances are ``<id>.wav``);
* ``results.jsonl`` and ``results.csv``: per file its duration, emotion, each class
  probability and the fraction of frames each expert took per task (``results.jsonl``
  also has a line per failed file with the reason);
* ``segments.csv``: per window its start and end (seconds), emotion and probabilities.

They are written as ``<name>.part`` and renamed when the run ends. A file that is
missing, unreadable, empty or shorter than ``--min_duration`` is reported by name with
the reason and skipped; the others are processed. The exit status is 1 when any file
failed (a summary names them; ``--fail_fast`` stops at the first), 2 for bad arguments.
"""
import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import soundfile as sf

from merit.batching import DEFAULT_BATCH_SECONDS, consecutive_batches
from merit.data.audio_inputs import InputItem, gather_inputs
from merit.data.audio_io import SAMPLE_RATE, audio_info
from merit.long_audio import (DEFAULT_HOP, DEFAULT_SEGMENT, LongAudioReader, plan_windows,
                              process_file, segments_csv_header, segments_csv_rows)
from merit.utils.progress import Progress


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+",
                        help="audio files, folders, wav.scp files, or - for a list on stdin")
    parser.add_argument("--model", "--model_dir", dest="model", required=True,
                        help="a trained model dir (exp/<run>) or a packed model (.zip)")
    parser.add_argument("--checkpoint", default=None,
                        help="default: the packed one, or the config's first "
                             "best_model_criterion, e.g. valid.loss.best.pth (se_only)")
    parser.add_argument("--out_dir", default=None,
                        help="write enhanced audio, results.jsonl/.csv and segments.csv here")
    parser.add_argument("--out", default=None,
                        help="with a single input file: where to write its enhanced audio")
    parser.add_argument("--segment", type=float, default=DEFAULT_SEGMENT,
                        help="window length in seconds for long recordings")
    parser.add_argument("--hop", type=float, default=DEFAULT_HOP,
                        help="window step in seconds (at most --segment)")
    parser.add_argument("--batch_seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                        help="files up to --segment long go through the model together, at "
                             "most this many seconds of padded audio at once (files x the "
                             "longest); 0: one at a time. Results are the same either way")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min_duration", type=float, default=None,
                        help="shortest input accepted, in seconds (default: "
                             "merit.inference.MIN_INPUT_SECONDS, 0.25)")
    parser.add_argument("--fail_fast", action="store_true",
                        help="stop at the first file that fails")
    return parser


class FileFailure(Exception):
    """A file that cannot be processed; the message names it and says why."""


def _duration(item: InputItem, min_duration: float) -> float:
    """Seconds of audio in ``item`` from its header; FileFailure when it is missing,
    unreadable, empty or too short."""
    try:
        info = audio_info(item.path)
    except ValueError as err:
        raise FileFailure(str(err)) from None
    seconds = info.frames / info.samplerate
    if seconds < min_duration:
        raise FileFailure(f"{item.path}: {seconds:.3f} s of audio ({info.frames} samples at "
                          f"{info.samplerate / 1000:g} kHz) is shorter than the {min_duration:g} s "
                          f"a model needs to judge an emotion from; give a longer recording (or "
                          f"lower --min_duration)")
    return seconds


def _batches(todo: List[InputItem], durations, segment: float,
             batch_seconds: float) -> List[List[InputItem]]:
    """``todo`` in its order, cut into batches of consecutive one-window files (up to
    ``segment`` seconds) under ``batch_seconds`` of padded audio; a windowed file is a
    batch of its own."""
    batches: List[List[InputItem]] = []
    run: List[InputItem] = []
    for item in todo + [None]:  # None ends the last run
        if item is not None and durations[item] <= segment:
            run.append(item)
            continue
        lengths = [round(durations[i] * SAMPLE_RATE) for i in run]
        batches += [[run[i] for i in b]
                    for b in consecutive_batches(lengths, round(batch_seconds * SAMPLE_RATE))]
        run = []
        if item is not None:
            batches.append([item])
    return batches


def _infer_together(speech2merit, batch: List[InputItem], segment: float, hop: float) -> dict:
    """{item: result} of the one-window files of ``batch`` from one ``Speech2Merit.batch``
    (each read as ``process_file`` reads its one window); {} for a batch of one, or when
    a file cannot be read, has more windows or the batch fails: each file then goes
    alone and fails, if it does, with its own message."""
    if len(batch) < 2:
        return {}
    audio = []
    try:
        for item in batch:
            with LongAudioReader(item.path) as reader:
                if len(plan_windows(reader.num_samples, segment, hop)) != 1:
                    return {}
                audio.append(reader.read(0, reader.num_samples))
        return dict(zip(batch, speech2merit.batch(audio)))
    except (ValueError, RuntimeError, sf.LibsndfileError):
        return {}


class Outputs:
    """``--out_dir``'s result files, each written as ``<name>.part`` and renamed by
    ``close``."""

    def __init__(self, out_dir: Path, classes: List[str]):
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.classes = classes
        self.usage_columns = None  # (task, expert) pairs, from the first result
        self._files = {name: open(out_dir / f"{name}.part", "w", encoding="utf-8", newline="")
                       for name in ("results.jsonl", "results.csv", "segments.csv")}
        self._results = csv.writer(self._files["results.csv"])
        self._segments = csv.writer(self._files["segments.csv"])
        self._segments.writerow(segments_csv_header(classes))

    def _results_header(self, expert_usage: dict) -> None:
        self.usage_columns = [(task, e) for task, fractions in expert_usage.items()
                              for e in range(len(fractions))]
        self._results.writerow(["file", "duration", "emotion", *self.classes,
                                *(f"{task}_expert{e}" for task, e in self.usage_columns)])

    def enhanced_path(self, item: InputItem) -> Path:
        return self.out_dir / "enhanced" / item.relpath

    def add(self, item: InputItem, result, enhanced: Optional[Path]) -> None:
        if self.usage_columns is None:
            self._results_header(result.expert_usage)
        probs = {} if result.posteriors is None else {
            c: float(p) for c, p in zip(self.classes, result.posteriors)}
        usage = {task: [float(f) for f in fractions]
                 for task, fractions in result.expert_usage.items()}
        self._write_json(dict(file=item.name, duration=result.duration, emotion=result.emotion,
                              probabilities=probs, expert_usage=usage,
                              enhanced=None if enhanced is None else str(enhanced),
                              segments=len(result.segments)))
        self._results.writerow([item.name, f"{result.duration:.3f}", result.emotion or "",
                                *(f"{probs[c]:.4f}" for c in probs),
                                *(f"{usage[task][e]:.4f}" for task, e in self.usage_columns)])
        self._segments.writerows(segments_csv_rows(item.name, result))
        self._flush()

    def add_failure(self, item: InputItem, reason: str) -> None:
        self._write_json(dict(file=item.name, error=reason))
        self._flush()

    def _write_json(self, record: dict) -> None:
        self._files["results.jsonl"].write(json.dumps(record) + "\n")

    def _flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def close(self) -> None:
        if self.usage_columns is None:  # no file succeeded: the columns known without one
            self._results_header({})
        for name, f in self._files.items():
            f.close()
            os.replace(self.out_dir / f"{name}.part", self.out_dir / name)


def _summary_line(item: InputItem, result, classes: List[str]) -> str:
    line = f"{item.name}: {result.duration:.2f} s"
    if result.posteriors is not None:
        probs = " ".join(f"{c}={p:.3f}" for c, p in zip(classes, result.posteriors))
        line += f", emotion {result.emotion} ({probs})"
    return line


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    if not 0 < args.hop <= args.segment:
        print(f"merit-infer: error: --hop {args.hop:g} must be above 0 and at most --segment "
              f"{args.segment:g}", file=sys.stderr)
        return 2
    if args.batch_seconds < 0:
        print(f"merit-infer: error: --batch_seconds {args.batch_seconds:g} must be 0 (one file "
              f"at a time) or more", file=sys.stderr)
        return 2
    try:
        items = gather_inputs(args.inputs, stdin=sys.stdin)
    except (OSError, ValueError) as err:
        print(f"merit-infer: error: {err}", file=sys.stderr)
        return 2
    if args.out is not None and len(items) != 1:
        print(f"merit-infer: error: --out names one output file, and {len(items)} inputs were "
              f"given; use --out_dir", file=sys.stderr)
        return 2

    from merit.inference import MIN_INPUT_SECONDS, Speech2Merit

    min_duration = MIN_INPUT_SECONDS if args.min_duration is None else args.min_duration
    failures = []  # (item, reason)
    durations = {}
    for item in items:  # every header before the model: bad files are known at once
        try:
            durations[item] = _duration(item, min_duration)
        except FileFailure as err:
            failures.append((item, str(err)))
            print(f"merit-infer: error: {err}", file=sys.stderr)
            if args.fail_fast:
                return _finish(failures, len(items))
    todo = [item for item in items if item in durations]
    if not todo:
        return _finish(failures, len(items))

    try:
        speech2merit = Speech2Merit.from_pretrained(args.model, args.checkpoint,
                                                    device=args.device)
    except (OSError, ValueError) as err:
        print(f"merit-infer: error: {err}", file=sys.stderr)
        return 1
    classes = speech2merit.classes
    enhances = any(task.name == "se" for task in speech2merit.model.tasks)
    outputs = None
    if args.out_dir is not None:
        outputs = Outputs(Path(args.out_dir), classes)
        for item, reason in failures:
            outputs.add_failure(item, reason)
    progress = Progress(len(todo), sum(durations.values()))
    try:
        for item, inferred in _results_in_order(speech2merit, todo, durations, args):
            enhanced = None
            if enhances:
                enhanced = (Path(args.out) if args.out is not None
                            else outputs.enhanced_path(item) if outputs is not None else None)
            try:
                # a file inferred in a batch hands its one window's result over as is
                infer = speech2merit if inferred is None else lambda _audio, r=inferred: r
                result = process_file(item.path, infer, classes, args.segment, args.hop,
                                      enhanced_out=enhanced, progress=progress.advance)
            except (ValueError, RuntimeError, sf.LibsndfileError) as err:
                reason = str(err) if str(err).startswith(str(item.path)) else f"{item.path}: {err}"
                failures.append((item, reason))
                progress.clear()
                print(f"merit-infer: error: {reason}", file=sys.stderr)
                if outputs is not None:
                    outputs.add_failure(item, reason)
                if args.fail_fast:
                    break
                continue
            progress.clear()
            print(_summary_line(item, result, classes), flush=True)
            if outputs is not None:
                outputs.add(item, result, enhanced)
            progress.file_done()
        progress.close()
    finally:
        if outputs is not None:
            outputs.close()
    return _finish(failures, len(items))


def _results_in_order(speech2merit, todo, durations, args):
    """(item, its result from a batch or None) for every item of ``todo``, in order."""
    for batch in _batches(todo, durations, args.segment, args.batch_seconds):
        inferred = _infer_together(speech2merit, batch, args.segment, args.hop)
        for item in batch:
            yield item, inferred.get(item)


def _finish(failures, total: int) -> int:
    """Exit status, after a summary naming the failed files (if any)."""
    if not failures:
        return 0
    print(f"merit-infer: {len(failures)} of {total} file(s) failed:", file=sys.stderr)
    for _, reason in failures:
        print(f"  {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
