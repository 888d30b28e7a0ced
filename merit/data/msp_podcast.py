"""MSP-Podcast (release 1.11 and later) → Kaldi-style data directories.

Reads ``<root>/Labels/labels_consensus.csv`` (FileName, EmoClass, EmoAct, EmoVal,
EmoDom, SpkrID, Gender, Split_Set) and the audio in ``<root>/Audios/``, and writes
one data directory per split present: Train → ``train``, Development → ``dev``,
Test1/Test2/Test3 → ``test1``/``test2``/``test3``. Each holds ``wav.scp``,
``utt2spk``, ``spk2utt``, ``utt2emo`` and ``utt2gender``.

The shipped mini corpus (egs/mini_emo) is written in this same layout and goes
through this same code.
"""
import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile as sf

from merit.data.audio_io import SAMPLE_RATE, read_audio, write_audio
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


class CorpusError(RuntimeError):
    """The corpus is not where or what it should be; the message names the file."""


@dataclass
class PrepReport:
    """What the prep kept and dropped, for the log and for tests."""

    kept: Dict[str, int] = field(default_factory=dict)            # data dir → utterances
    dropped_class: Counter = field(default_factory=Counter)       # EmoClass → count
    skipped_missing: List[str] = field(default_factory=list)      # FileNames
    skipped_unreadable: List[str] = field(default_factory=list)
    resampled: List[str] = field(default_factory=list)


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


def read_labels(root: Path) -> List[dict]:
    path = root / LABELS_CSV
    if not path.is_file():
        raise CorpusError(f"{path}: labels file not found (is {root} an MSP-Podcast release root?)")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; "
                              f"found {reader.fieldnames}")
        rows = list(reader)
    if not rows:
        raise CorpusError(f"{path}: no utterances listed")
    for lineno, row in enumerate(rows, 2):
        if row["EmoClass"] not in EMO_CODES:
            raise CorpusError(f"{path}:{lineno}: unknown EmoClass {row['EmoClass']!r} "
                              f"for {row['FileName']}")
        if row["Split_Set"] not in SPLIT_DIRS:
            raise CorpusError(f"{path}:{lineno}: unknown Split_Set {row['Split_Set']!r} "
                              f"for {row['FileName']} (expected one of {', '.join(SPLIT_DIRS)})")
    return rows


def _audio_info(path: Path) -> Tuple[object, Optional[str]]:
    """(header, None) when ``path`` is readable audio, else (None, what is wrong with it)."""
    if not path.is_file():
        return None, "missing"
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        return None, f"unreadable ({err})"
    if info.frames == 0:
        return None, "unreadable (no samples)"
    return info, None


def prepare(root, out_dir, classes: Sequence[str] = ("A", "S", "H", "N"),
            skip_missing: bool = False, resample_dir=None, suffix: str = "") -> PrepReport:
    """Write ``<out_dir>/{train,dev,test1,…}<suffix>`` from the release at ``root``.

    Utterances whose EmoClass is not in ``classes`` are dropped and counted. A
    listed file that is missing or unreadable is an error naming it, unless
    ``skip_missing`` is true: then it is skipped and counted. Audio that is not
    16 kHz mono is converted once into ``resample_dir`` (default
    ``<out_dir>/local/audio_16k``) and ``wav.scp`` points at the copy.
    """
    root, out_dir = Path(root).resolve(), Path(out_dir)
    resample_dir = Path(resample_dir) if resample_dir else out_dir / "local" / "audio_16k"
    audio_dir = root / "Audios"
    if not audio_dir.is_dir():
        raise CorpusError(f"{audio_dir}: audio folder not found (is {root} an MSP-Podcast release root?)")
    rows = read_labels(root)
    report = PrepReport()
    sets: Dict[str, Dict[str, Dict[str, str]]] = {}
    for row in rows:
        name, emo = row["FileName"], row["EmoClass"]
        if emo not in classes:
            report.dropped_class[emo] += 1
            continue
        path = audio_dir / name
        info, problem = _audio_info(path)
        if problem is not None:
            if not skip_missing:
                raise CorpusError(f"{path}: {problem} (listed in {root / LABELS_CSV}; "
                                  "use --skip_missing true to skip such files)")
            (report.skipped_missing if problem == "missing" else report.skipped_unreadable).append(name)
            continue
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            converted = resample_dir / (Path(name).stem + ".wav")
            if not converted.is_file():
                write_audio(converted, read_audio(path, resample=True))
            report.resampled.append(name)
            path = converted.resolve()
        utt = Path(name).stem
        speaker = row["SpkrID"].strip()
        # Kaldi needs a speaker per utterance; unknown ones become their own speaker.
        spk = utt if speaker.lower() in ("", UNKNOWN_SPEAKER) else f"spk{speaker}"
        files = sets.setdefault(SPLIT_DIRS[row["Split_Set"]] + suffix, {
            "wav.scp": {}, "utt2spk": {}, "utt2emo": {}, "utt2gender": {}})
        if utt in files["wav.scp"]:
            raise CorpusError(f"{root / LABELS_CSV}: {name} is listed twice")
        files["wav.scp"][utt] = str(path)
        files["utt2spk"][utt] = spk
        files["utt2emo"][utt] = emo
        files["utt2gender"][utt] = GENDERS.get(row["Gender"].strip().lower(), "u")
    if not sets:
        raise CorpusError(f"{root / LABELS_CSV}: no utterance left with classes {','.join(classes)}")
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
        log.warning("skipped %d missing and %d unreadable audio files (--skip_missing true), e.g. %s",
                    len(report.skipped_missing), len(report.skipped_unreadable),
                    (report.skipped_missing + report.skipped_unreadable)[0])
    if report.resampled:
        log.info("converted %d files to 16 kHz mono in %s", len(report.resampled), resample_dir)
    return report
