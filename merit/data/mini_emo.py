"""The shipped mini corpus: neutral read speech rendered in four emotion styles,
written in MSP-Podcast's release layout so that the real prep code reads it.

Input (``egs/mini_emo/merit/downloads``)::

    speech/speakers.tsv               speaker, gender (F|M), language, source_package
    speech/<speaker>/<speaker>_NNN.flac

Output (``<out>``)::

    Audios/MINI-EMO_<speaker>_NNN_<E>.wav   one file per base utterance and style E
    Labels/labels_consensus.csv             FileName, EmoClass, EmoAct, EmoVal, EmoDom,
                                            SpkrID, Gender, Split_Set
    Labels/render_params.csv                the drawn prosody parameters per file
    Labels/render.key                       what it was rendered from (``render_key``)

The labels are constructed, not perceived: EmoClass is the style the utterance was
rendered in, and EmoAct/EmoVal/EmoDom are fixed nominal values per style.
"""
import csv
import hashlib
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from merit.data import emotion_styles
from merit.data.audio_io import SAMPLE_RATE, read_audio, write_audio
from merit.utils.atomic_dir import replacing_dir

STYLE_ORDER = ("A", "S", "H", "N")
# Base utterances are brought to this RMS before rendering, so that the loudest
# style (A, about +5 dB) rarely needs the renderer's peak limiter, whose action
# would weaken A's level cue.
BASE_RMS_DBFS = -30.0
# Nominal arousal / valence / dominance (MSP-Podcast's 1-7 scale) per style.
NOMINAL_AVD = {"A": (6.0, 2.0, 5.5), "S": (2.5, 2.5, 2.5), "H": (5.0, 6.0, 4.5), "N": (4.0, 4.0, 4.0)}
GENDER_NAMES = {"F": "Female", "M": "Male"}
LABEL_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")


def read_speakers(downloads: Path) -> Dict[str, str]:
    """{speaker: gender letter} from ``speech/speakers.tsv``."""
    path = downloads / "speech" / "speakers.tsv"
    if not path.is_file():
        raise ValueError(f"{path}: speaker list not found")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    speakers = {}
    for row in rows:
        if row.get("gender") not in GENDER_NAMES:
            raise ValueError(f"{path}: speaker {row.get('speaker')!r} has gender "
                             f"{row.get('gender')!r}, expected F or M")
        speakers[row["speaker"]] = row["gender"]
    if not speakers:
        raise ValueError(f"{path}: no speakers listed")
    return speakers


def assign_splits(speakers: Sequence[str], dev: Sequence[str], test: Sequence[str]) -> Dict[str, str]:
    """{speaker: Split_Set}: listed dev/test speakers, every other one in Train."""
    unknown = [s for s in list(dev) + list(test) if s not in speakers]
    if unknown:
        raise ValueError(f"dev/test speaker(s) {unknown} are not in speakers.tsv")
    if set(dev) & set(test):
        raise ValueError(f"speaker(s) {sorted(set(dev) & set(test))} are in both dev and test")
    split = {s: "Train" for s in speakers}
    split.update({s: "Development" for s in dev})
    split.update({s: "Test1" for s in test})
    if "Train" not in split.values():
        raise ValueError("no speaker left for training")
    return split


def _render_base(task):
    """Render one base utterance in every style; returns its label and parameter rows."""
    path, speaker, gender, split, seed, audio_dir = task
    base = Path(path).stem  # <speaker>_NNN
    wav = read_audio(path).astype(np.float64)
    wav *= 10 ** (BASE_RMS_DBFS / 20) / np.sqrt(np.mean(wav ** 2))
    features = emotion_styles.analyze(wav, SAMPLE_RATE)
    labels, params = [], []
    for index, emo in enumerate(STYLE_ORDER):
        rng = np.random.default_rng([seed, zlib.crc32(base.encode("utf-8")), index])
        wav, drawn = emotion_styles.render(features, emotion_styles.STYLES[emo], rng)
        name = f"MINI-EMO_{base}_{emo}.wav"
        write_audio(Path(audio_dir) / name, wav)
        act, val, dom = NOMINAL_AVD[emo]
        labels.append({"FileName": name, "EmoClass": emo, "EmoAct": act, "EmoVal": val,
                       "EmoDom": dom, "SpkrID": speaker, "Gender": GENDER_NAMES[gender],
                       "Split_Set": split})
        params.append({"FileName": name, **{k: drawn[k] for k in sorted(drawn)}})
    return labels, params


def _write_csv(path: Path, rows: List[dict], columns: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def render_key(base_files: Dict[str, List[Path]], split: Dict[str, str], seed: int) -> str:
    """What the rendered corpus depends on: the settings, each base file's name, size and
    mtime, and the renderer's own source (a changed style re-renders)."""
    digest = hashlib.sha1(f"seed {seed}\nsplit {sorted(split.items())}\n".encode())
    for speaker in sorted(base_files):
        for path in base_files[speaker]:
            stat = path.stat()
            digest.update(f"{speaker}/{path.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    for module in (emotion_styles.__file__, __file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()


def build(downloads, out, dev_speakers: Sequence[str], test_speakers: Sequence[str],
          seed: int = 1, nj: int = 1, progress=None) -> Tuple[int, bool]:
    """Write the corpus to ``out`` (replacing it as a whole), unless ``out`` already holds
    it (``Labels/render.key``: same speech, settings and renderer), so that rerunning
    stage 1 leaves the audio, and so every later stage's input, untouched.

    Returns (file count, whether it was rendered now). ``progress`` is called with the
    number of base utterances done after each one.
    """
    downloads, out = Path(downloads), Path(out)
    speakers = read_speakers(downloads)
    split = assign_splits(list(speakers), dev_speakers, test_speakers)
    base_files = {}
    for speaker in speakers:
        base_files[speaker] = sorted((downloads / "speech" / speaker).glob("*.flac"))
        if not base_files[speaker]:
            raise ValueError(f"{downloads / 'speech' / speaker}: no .flac files for speaker {speaker}")
    key = render_key(base_files, split, seed)
    key_file = out / "Labels" / "render.key"
    if key_file.is_file() and key_file.read_text() == key:
        with open(out / "Labels" / "labels_consensus.csv", encoding="utf-8") as f:
            return sum(1 for _ in f) - 1, False
    labels, params = [], []
    with replacing_dir(out) as tmp:
        tasks = [(str(f), speaker, gender, split[speaker], seed, str(tmp / "Audios"))
                 for speaker, gender in speakers.items() for f in base_files[speaker]]
        with ProcessPoolExecutor(max_workers=max(1, nj)) as pool:
            for done, (rows, drawn) in enumerate(pool.map(_render_base, tasks, chunksize=4), 1):
                labels += rows
                params += drawn
                if progress:
                    progress(done)
        (tmp / "Labels").mkdir()
        _write_csv(tmp / "Labels" / "labels_consensus.csv", labels, LABEL_COLUMNS)
        _write_csv(tmp / "Labels" / "render_params.csv", params, list(params[0]))
        (tmp / "Labels" / "render.key").write_text(key)
    return len(labels), True
