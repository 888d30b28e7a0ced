"""MSP-Podcast (release 1.11 and later) → Kaldi-style data directories.

Reads ``<root>/Labels/labels_consensus.csv`` (FileName, EmoClass, EmoAct, EmoVal,
EmoDom, SpkrID, Gender, Split_Set) and the audio in ``<root>/Audios/``, and writes
one data directory per split present: Train → ``train``, Development → ``dev``,
Test1/Test2/Test3 → ``test1``/``test2``/``test3``. Each holds ``wav.scp``,
``utt2spk``, ``spk2utt``, ``utt2emo`` and ``utt2gender``.

The shipped mini corpus (egs/mini_emo) is written in this same layout and goes
through this same code.

Everything a later stage would trip over is checked here, from the labels and the
audio headers (no decoding), and named with its labels line: a file listed twice or
under two splits (train/test leakage), a FileName with whitespace, a missing,
unreadable, empty or truncated file, a duration outside the bounds.
"""
import csv
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from merit.data.audio_io import SAMPLE_RATE, AudioFileError, audio_info, read_audio, write_audio
from merit.data.datadir import write_datadir

log = logging.getLogger(__name__)

LABELS_CSV = Path("Labels") / "labels_consensus.csv"
REQUIRED_COLUMNS = ("FileName", "EmoClass", "SpkrID", "Gender", "Split_Set")
# Consensus codes of the release: angry, sad, happy, surprise, fear, disgust,
# contempt, neutral, other, no agreement.
EMO_CODES = ("A", "S", "H", "U", "F", "D", "C", "N", "O", "X")
SPLIT_DIRS = {"Train": "train", "Development": "dev", "Test1": "test1",
              "Test2": "test2", "Test3": "test3"}
GENDERS = {"male": "m", "female": "f"}
UNKNOWN_SPEAKER = "unknown"
# Duration bounds (seconds). The release's segments are 2.75-11 s by construction,
# so anything outside 0.5-30 s is a damaged file or a wrong row. Below 0.5 s WavLM
# gives under 25 frames (20 ms each) for the emotion to be pooled from; above 30 s
# one utterance pads its whole batch (32 × 30 s of WavLM Large is already ~10 GB of
# activations in training).
MIN_DURATION, MAX_DURATION = 0.5, 30.0
# stop by default: stage 1 takes minutes, finding out in training takes hours
DURATION_ACTIONS = ("stop", "skip", "warn")
# Bumped when the 16 kHz conversion changes, so old conversions are not reused.
CONVERSION_VERSION = "1"
EXAMPLES = 5  # rows quoted in a summary message


class CorpusError(RuntimeError):
    """The corpus is not where or what it should be; the message names the file."""


@dataclass
class PrepReport:
    """What the prep kept and dropped, for the log and for tests."""

    kept: Dict[str, int] = field(default_factory=dict)            # data dir → utterances
    dropped_class: Counter = field(default_factory=Counter)       # EmoClass → count
    skipped_missing: List[str] = field(default_factory=list)      # FileNames
    skipped_unreadable: List[str] = field(default_factory=list)   # not audio, empty, truncated
    resampled: List[str] = field(default_factory=list)
    # (FileName, labels line, seconds) outside [min_duration, max_duration]
    out_of_bounds: List[Tuple[str, int, float]] = field(default_factory=list)


def parse_classes(text: str) -> List[str]:
    """``"A,S,H,N"`` → ``["A", "S", "H", "N"]``, checked against the release's codes."""
    classes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in classes if c not in EMO_CODES]
    if unknown or not classes:
        raise ValueError(f"--classes {text!r}: unknown code(s) {unknown}; "
                         f"MSP-Podcast codes are {','.join(EMO_CODES)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"--classes {text!r}: a class is listed twice")
    return classes


def read_labels(root: Path) -> List[Tuple[int, dict]]:
    """(line number, row) of every utterance of the labels CSV, checked: known
    EmoClass and Split_Set, and each FileName listed once."""
    path = root / LABELS_CSV
    if not path.is_file():
        raise CorpusError(f"{path}: labels file not found (is {root} an MSP-Podcast release root?)")
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; "
                              f"found {reader.fieldnames}")
        for row in reader:
            rows.append((reader.line_num, row))  # the line the row ends on: quoted fields may span lines
    if not rows:
        raise CorpusError(f"{path}: no utterances listed")
    for lineno, row in rows:
        if row["EmoClass"] not in EMO_CODES:
            raise CorpusError(f"{path} line {lineno}: unknown EmoClass {row['EmoClass']!r} "
                              f"for {row['FileName']}")
        if row["Split_Set"] not in SPLIT_DIRS:
            raise CorpusError(f"{path} line {lineno}: unknown Split_Set {row['Split_Set']!r} "
                              f"for {row['FileName']} (expected one of {', '.join(SPLIT_DIRS)})")
    _check_listed_once(path, rows)
    return rows


def _check_listed_once(path: Path, rows: Sequence[Tuple[int, dict]]) -> None:
    """A FileName on two rows is refused: under two splits it would put the same
    audio in training and test (leakage); twice in one split it would count twice."""
    first: Dict[str, Tuple[int, str]] = {}
    across, within = [], []
    for lineno, row in rows:
        name, split = row["FileName"], row["Split_Set"]
        if name not in first:
            first[name] = (lineno, split)
            continue
        line0, split0 = first[name]
        if split0 != split:
            across.append(f"lines {line0} and {lineno}: {name} under {split0} and {split}")
        else:
            within.append(f"lines {line0} and {lineno}: {name} twice under {split}")
    if across:
        raise CorpusError(
            f"{path}: {len(across)} FileName(s) listed under two splits, which would put the "
            f"same audio in both (train/test leakage): {'; '.join(across[:EXAMPLES])}"
            f"{' ...' if len(across) > EXAMPLES else ''}; keep each file in one split")
    if within:
        raise CorpusError(
            f"{path}: {len(within)} FileName(s) listed twice: {'; '.join(within[:EXAMPLES])}"
            f"{' ...' if len(within) > EXAMPLES else ''}; keep one row per file")


def conversion_path(resample_dir: Path, source: Path) -> Path:
    """Where the 16 kHz mono copy of ``source`` goes: ``<stem>.<key>.wav``.

    The key hashes the source's absolute path, size and modification time (and the
    conversion's version), so a rewritten source or another corpus root with the
    same file names gets its own fresh copy. Stat, not content: hashing the audio
    would read every file of a 100k-utterance corpus on every rerun, while a stat
    costs microseconds; a file rewritten with the same size *and* its old mtime
    restored (``touch -r``) is the one change it misses.
    """
    stat = source.stat()
    key = hashlib.sha1(f"{CONVERSION_VERSION}\0{source.resolve()}\0{stat.st_size}\0"
                       f"{stat.st_mtime_ns}".encode("utf-8")).hexdigest()[:16]
    return resample_dir / f"{source.stem}.{key}.wav"


def _examples(items: Sequence[Tuple[str, int, float]]) -> str:
    return ", ".join(f"{name} ({seconds:.2f} s, line {lineno})"
                     for name, lineno, seconds in items[:EXAMPLES]) + (" ..." if len(items) > EXAMPLES else "")


def _duration_summary(report: PrepReport, min_duration: float, max_duration: float) -> str:
    short = [x for x in report.out_of_bounds if x[2] < min_duration]
    long = [x for x in report.out_of_bounds if x[2] > max_duration]
    parts = []
    if short:
        parts.append(f"{len(short)} shorter than {min_duration:g} s, e.g. {_examples(short)}")
    if long:
        parts.append(f"{len(long)} longer than {max_duration:g} s, e.g. {_examples(long)}")
    return f"{len(report.out_of_bounds)} utterance(s) outside {min_duration:g}-{max_duration:g} s: " \
        + "; ".join(parts)


def prepare(root, out_dir, classes: Sequence[str] = ("A", "S", "H", "N"),
            skip_missing: bool = False, resample_dir=None, suffix: str = "",
            min_duration: float = MIN_DURATION, max_duration: float = MAX_DURATION,
            duration_action: str = "stop") -> PrepReport:
    """Write ``<out_dir>/{train,dev,test1,…}<suffix>`` from the release at ``root``.

    Utterances whose EmoClass is not in ``classes`` are dropped and counted. A
    listed file that is missing, unreadable, empty or truncated is an error naming
    it, unless ``skip_missing`` is true: then it is skipped and counted. Utterances
    shorter than ``min_duration`` or longer than ``max_duration`` seconds (from the
    header) stop the prep (``duration_action`` stop), are dropped and counted (skip)
    or kept with a warning (warn). Audio that is not 16 kHz mono is converted once
    into ``resample_dir`` (default ``<out_dir>/local/audio_16k``, see
    ``conversion_path``) and ``wav.scp`` points at the copy.
    """
    if duration_action not in DURATION_ACTIONS:
        raise ValueError(f"--duration_action {duration_action!r}: expected one of "
                         f"{', '.join(DURATION_ACTIONS)}")
    if not 0 <= min_duration < max_duration:
        raise ValueError(f"--min_duration {min_duration:g} and --max_duration {max_duration:g}: "
                         "expected 0 <= min < max (seconds)")
    root, out_dir = Path(root).resolve(), Path(out_dir)
    resample_dir = Path(resample_dir) if resample_dir else out_dir / "local" / "audio_16k"
    audio_dir = root / "Audios"
    if not audio_dir.is_dir():
        raise CorpusError(f"{audio_dir}: audio folder not found (is {root} an MSP-Podcast release root?)")
    labels = root / LABELS_CSV
    rows = read_labels(root)
    report = PrepReport()
    # First every check, from the labels and the headers; then the conversions.
    usable = []
    utt_rows: Dict[str, Tuple[int, str]] = {}
    for lineno, row in rows:
        name, emo = row["FileName"], row["EmoClass"]
        if emo not in classes:
            report.dropped_class[emo] += 1
            continue
        if not name:
            raise CorpusError(f"{labels} line {lineno}: empty FileName; fill it in or remove the row")
        if re.search(r"\s", name):
            raise CorpusError(f"{labels} line {lineno}: FileName {name!r} contains whitespace; "
                              "rename the file and its row (Kaldi data dirs split on whitespace)")
        utt = Path(name).stem
        if utt in utt_rows:
            line0, name0 = utt_rows[utt]
            raise CorpusError(f"{labels} lines {line0} and {lineno}: {name0} and {name} give the "
                              f"same utterance id {utt}; rename one of them")
        utt_rows[utt] = (lineno, name)
        path = audio_dir / name
        try:
            info = audio_info(path)
        except AudioFileError as err:
            if not skip_missing:
                raise CorpusError(f"{err} (listed in {labels} line {lineno}; use --skip_missing "
                                  "true to skip such files)") from err
            (report.skipped_missing if err.kind == "missing" else report.skipped_unreadable).append(name)
            continue
        seconds = info.frames / info.samplerate
        if not min_duration <= seconds <= max_duration:
            report.out_of_bounds.append((name, lineno, seconds))
            if duration_action != "warn":
                continue
        usable.append((row, utt, path, info))
    if report.out_of_bounds and duration_action == "stop":
        raise CorpusError(f"{labels}: {_duration_summary(report, min_duration, max_duration)}; "
                          "--duration_action skip drops them, --duration_action warn keeps "
                          "them, or set --min_duration / --max_duration (seconds)")

    sets: Dict[str, Dict[str, Dict[str, str]]] = {}
    for row, utt, path, info in usable:
        name, emo = row["FileName"], row["EmoClass"]
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            converted = conversion_path(resample_dir, path)
            if not converted.is_file():
                write_audio(converted, read_audio(path, resample=True))
            report.resampled.append(name)
            path = converted.resolve()
        # Kaldi needs a speaker per utterance without whitespace; unknown ones become
        # their own speaker.
        speaker = re.sub(r"\s+", "_", row["SpkrID"].strip())
        spk = utt if speaker.lower() in ("", UNKNOWN_SPEAKER) else f"spk{speaker}"
        files = sets.setdefault(SPLIT_DIRS[row["Split_Set"]] + suffix, {
            "wav.scp": {}, "utt2spk": {}, "utt2emo": {}, "utt2gender": {}})
        files["wav.scp"][utt] = str(path)
        files["utt2spk"][utt] = spk
        files["utt2emo"][utt] = emo
        files["utt2gender"][utt] = GENDERS.get(row["Gender"].strip().lower(), "u")
    if not sets:
        raise CorpusError(f"{labels}: no utterance left with classes {','.join(classes)}")
    for set_name, files in sorted(sets.items()):
        write_datadir(out_dir / set_name, files)
        report.kept[set_name] = len(files["wav.scp"])
        counts = Counter(files["utt2emo"].values())
        log.info("%s: %d utterances (%s)", out_dir / set_name, len(files["wav.scp"]),
                 " ".join(f"{c}={counts[c]}" for c in classes))
    if report.dropped_class:
        log.info("dropped %d utterances outside --classes %s: %s",
                 sum(report.dropped_class.values()), ",".join(classes),
                 " ".join(f"{c}={n}" for c, n in sorted(report.dropped_class.items())))
    if report.skipped_missing or report.skipped_unreadable:
        log.warning("skipped %d missing and %d unreadable, empty or truncated audio files "
                    "(--skip_missing true), e.g. %s", len(report.skipped_missing),
                    len(report.skipped_unreadable),
                    (report.skipped_missing + report.skipped_unreadable)[0])
    if report.out_of_bounds:
        what = "skipped" if duration_action == "skip" else "kept (--duration_action warn)"
        log.warning("%s %s", what, _duration_summary(report, min_duration, max_duration))
    if report.resampled:
        log.info("converted %d files to 16 kHz mono in %s", len(report.resampled), resample_dir)
    return report
