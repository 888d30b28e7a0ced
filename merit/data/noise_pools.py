r"""Noise corpora → the four noise pools of stage 2: train, dev, test_seen, test_unseen.

Writes ``<out>/{train,dev,test_seen,test_unseen}.scp`` (``<noise-id> <absolute path>``,
C-sorted), ``<out>/noise_split.tsv`` (noise_id, corpus, pool, path),
``<out>/duplicates.tsv`` (each file left out as a copy of a file in an earlier pool,
with that file and the reason) and ``<out>/skipped.tsv`` (path, kind, why: the files
left out with ``skip_bad``), all at once: the files are written to ``<out>.tmp`` and
swapped in for any old ``<out>``.

Layouts (where a corpus keeps its audio under the root it is given; audio is
.wav/.flac/.ogg, whatever soundfile reads, any letter case):

- ``dns``: DNS Challenge noise, a flat folder of clips. The root is that folder
  itself, or a release root holding ``datasets/noise/``,
  ``datasets_fullband/noise_fullband/``, ``noise/`` or ``noise_fullband/`` (the first
  that holds audio, in that order). Relative paths start at the noise folder, so
  both roots give the same ids and the same split.
- ``musan``: MUSAN's ``noise/free-sound/`` and ``noise/sound-bible/``; the root is the
  release root or its ``noise/`` folder. Relative paths start at ``noise/``.
- ``fsd50k``: Freesound FSD50K's ``FSD50K.dev_audio/`` and ``FSD50K.eval_audio/``.
- ``folder`` (and its aliases ``crss``, ``freesound``): every audio file below the
  root, recursively (symlinked folders followed; hidden files and folders, such as
  macOS ``._*`` shadows, left out).

Noise ids are ``<corpus>-<relative path without extension>`` with ``/`` → ``-`` and
whitespace → ``_``; two files that give the same id are an error naming both.

Listed corpora (``ListedSpec``) already say which pool each file belongs to: a
tab-separated table with a header line naming at least the columns ``file`` (a path,
absolute or relative to the corpus's root, by default the table's folder), ``split``
(``train``, ``dev`` or ``test``) and ``category`` (``seen`` or ``unseen``; unseen noise
is test noise only); other columns are ignored. A file goes to its split, test noise
to ``test_seen`` or ``test_unseen`` by category. Its id is its file name without
extension (whitespace → ``_``), no corpus prefix: the table names its files.

Checked audio (``check_audio``, the default). Every file is decoded once, in blocks,
and must be readable, at least ``min_noise_seconds`` long (default 1 s: a shorter
noise is repeated over a 2-11 s utterance as an audible loop, not the noise it stands
for) and not silent: digital silence (every sample zero) is refused whatever the
floor, since stage 2 cannot scale it to any SNR, and so is an RMS over all samples and
channels below ``silence_dbfs`` (default -80 dBFS: 16-bit quantisation noise and
dither lie near -100 dBFS, noise recorded for mixing far above -80 (the mini_emo
noise sits at -25 dBFS); a file below -80 holds little but that floor, and mixing it
at 0 dB SNR with -25 dBFS speech would raise it by over 55 dB, making the "noise"
amplified quantisation noise). Every unusable file is named in one error
(the first few, then a count) before anything is written; with ``skip_bad`` they are
left out instead, counted in the log and listed in skipped.tsv. A file silent only in
parts still passes: a stage 2 excerpt that falls wholly in a digitally silent stretch
is refused there, naming the noise file.

The split (seen corpora only; every file of an unseen corpus goes to test_unseen):
each file belongs to a source recording, and each recording gets
``u = sha1("<seed>:<corpus>/<recording>")`` read as a fraction in [0, 1) (first 8
bytes, big-endian, / 2**64); all its files go to train if ``u < f_train``, to dev if
``u < f_train + f_dev``, else to test_seen. A file's recording is, in this order:

1. with a ``recording_regex`` for its corpus (a Python regular expression searched in
   the relative path): its first group, or the whole match if it has no group, when
   it matches (and the group is not empty). ``^(.*)_\d+\.wav$`` makes
   ``recA_0001.wav`` and ``recA_0002.wav`` recording ``recA``; ``^(.*)/`` makes a
   file's folder its recording, for a corpus with one folder per recording;
2. ``freesound:<id>`` when its name is a DNS Challenge chunk of a Freesound clip,
   ``<label>_Freesound_validated_<id>_<chunk>`` (DNS cuts one clip into several);
3. else its relative path: each file its own recording, as without recordings.

A file's pool thus depends only on the seed, the corpus name, its recording and the
fractions: not on listing order, on other files or on other corpora. Hash splits of
a small corpus can leave a pool empty, so per seen corpus, pools are filled in the
order train, dev, test_seen: an empty pool takes the recording whose ``u`` lies
nearest to the pool's interval ``[lo, hi)`` (ties: C order of recording) among the
pools that hold two or more recordings. A seen corpus needs at least three
recordings for that; fewer is an error. No recording regex is given by default: a
parent folder is often a category (car/, cafe/), not a recording.

Duplicates across pools (after the split): two files are the same clip when their
decoded samples are identical (sha1 over the float32 samples and the channel count,
so WAV and FLAC copies, other names and other metadata match; a resampled or cut
copy does not), or when their names carry the same Freesound id: FSD50K's
``<id>.wav`` (layouts ``fsd50k`` and ``freesound`` only; digits alone elsewhere mean
nothing), the DNS chunk form above, or Freesound's download form
``<id>__<user>__<name>``. Of a clip in several pools, the copy in the earliest pool
of train, dev, test_seen, test_unseen stays and the later ones are left out, so the
test pools hold no training noise and train keeps what the split gave it (adding a
test corpus never changes training). Copies within one pool stay. One file reached
through two corpora (overlapping roots) is one clip too. Without ``check_audio`` only
paths and Freesound ids are compared: hashing the bytes instead would read every
file, the cost that ``check_audio false`` is there to avoid.
"""
import hashlib
import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from merit.data.audio_io import AUDIO_SUFFIXES
from merit.data.datadir import c_sorted, write_kv
from merit.utils.atomic_dir import replacing_dir

log = logging.getLogger(__name__)

POOLS = ("train", "dev", "test_seen", "test_unseen")
SEEN_POOLS = POOLS[:3]
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_TSV = "noise_split.tsv"
DUPLICATES_TSV = "duplicates.tsv"
SKIPPED_TSV = "skipped.tsv"
MIN_NOISE_SECONDS = 1.0
SILENCE_DBFS = -80.0
SHOWN_PROBLEMS = 5         # unusable files an error names before it counts the rest
CHECK_BLOCK = 1 << 18      # frames decoded at a time: bounded memory for hour-long files
CORPUS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
LISTED_COLUMNS = ("file", "split", "category")
LISTED_POOLS = {("train", "seen"): "train", ("dev", "seen"): "dev",
                ("test", "seen"): "test_seen", ("test", "unseen"): "test_unseen"}


# ---------------------------------------------------------------- layouts

def _is_audio(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES


def _flat_audio(folder: Path) -> List[Path]:
    """Audio files directly in ``folder`` (not below), empty if it is not a folder."""
    if not folder.is_dir():
        return []
    return [folder / name for name in os.listdir(folder) if _is_audio(name)
            and (folder / name).is_file()]


def _tree_audio(folder: Path) -> List[Path]:
    """Audio files anywhere below ``folder``, following symlinked folders."""
    found = []
    for top, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(top) / n for n in names if _is_audio(n))
    return found


DNS_FOLDERS = ("datasets/noise", "datasets_fullband/noise_fullband", "noise", "noise_fullband")
MUSAN_FOLDERS = ("free-sound", "sound-bible")
FSD50K_FOLDERS = ("FSD50K.dev_audio", "FSD50K.eval_audio")


def dns_files(root: Path) -> Tuple[Path, List[Path]]:
    """(noise folder, its clips): the root itself if it holds audio, else the first
    of DNS_FOLDERS under it that does."""
    for base in (root, *(root / sub for sub in DNS_FOLDERS)):
        files = _flat_audio(base)
        if files:
            return base, files
    return root, []


def musan_files(root: Path) -> Tuple[Path, List[Path]]:
    """(the ``noise/`` folder, the clips of its free-sound/ and sound-bible/)."""
    base = root if any((root / sub).is_dir() for sub in MUSAN_FOLDERS) else root / "noise"
    return base, [f for sub in MUSAN_FOLDERS for f in _flat_audio(base / sub)]


def fsd50k_files(root: Path) -> Tuple[Path, List[Path]]:
    return root, [f for sub in FSD50K_FOLDERS for f in _flat_audio(root / sub)]


def folder_files(root: Path) -> Tuple[Path, List[Path]]:
    return root, _tree_audio(root)


@dataclass(frozen=True)
class Layout:
    find: Callable[[Path], Tuple[Path, List[Path]]]  # root → (base of relative paths, files)
    expects: str                                      # what an empty result should have held


_FOLDER = Layout(folder_files, "audio files anywhere below it")
LAYOUTS: Dict[str, Layout] = {
    "dns": Layout(dns_files, "audio files in it or in one of "
                  + ", ".join(f"{d}/" for d in DNS_FOLDERS)),
    "musan": Layout(musan_files, "audio files in noise/free-sound/ or noise/sound-bible/ "
                    "(or free-sound/, sound-bible/ when the root is noise/)"),
    "fsd50k": Layout(fsd50k_files, "audio files in FSD50K.dev_audio/ or FSD50K.eval_audio/"),
    "folder": _FOLDER,
    "crss": _FOLDER,
    "freesound": _FOLDER,
}


# ---------------------------------------------------------------- corpora and files

@dataclass(frozen=True)
class CorpusSpec:
    """One noise corpus: its name (the id prefix), layout and root folder."""

    name: str
    layout: str
    root: str

    @classmethod
    def parse(cls, text: str) -> "CorpusSpec":
        """``NAME=LAYOUT:PATH`` → CorpusSpec (the path may itself hold ``:`` or ``=``)."""
        name, eq, rest = text.partition("=")
        layout, colon, root = rest.partition(":")
        if not (eq and colon and name and layout and root):
            raise ValueError(f"corpus {text!r}: expected NAME=LAYOUT:PATH, "
                             f"e.g. crss=folder:/data/CRSS-noise")
        return cls(name.strip(), layout.strip(), root)


@dataclass(frozen=True)
class ListedSpec:
    """A noise corpus listed with its pools: its name, its table and the folder its
    relative paths start from."""

    name: str
    table: str
    root: str

    @classmethod
    def parse(cls, text: str, root: Optional[str] = None) -> "ListedSpec":
        """``NAME=TABLE`` → ListedSpec; ``root`` defaults to the table's folder."""
        name, eq, table = text.partition("=")
        if not (eq and name and table):
            raise ValueError(f"listed corpus {text!r}: expected NAME=TABLE, "
                             f"e.g. mini_emo=downloads/noise/noise.tsv")
        return cls(name.strip(), table, root or os.path.dirname(table) or ".")


@dataclass
class NoiseFile:
    noise_id: str
    corpus: str
    rel: str                       # posix path relative to the base (or as listed), with extension
    path: str                      # absolute
    u: Optional[float] = None      # split hash of its recording in [0, 1) (hash-split corpora only)
    pool: str = ""
    seconds: Optional[float] = None
    recording: str = ""            # source recording (hash-split corpora only)
    freesound: Optional[str] = None  # Freesound id its name carries
    digest: Optional[str] = None   # sha1 of its decoded samples (with check_audio)


def split_hash(seed: int, corpus: str, key: str) -> float:
    """sha1 of ``"<seed>:<corpus>/<key>"``, first 8 bytes as a fraction in [0, 1)."""
    digest = hashlib.sha1(f"{seed}:{corpus}/{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def noise_id(corpus: str, rel: str) -> str:
    stem = os.path.splitext(rel)[0]
    return f"{corpus}-" + re.sub(r"\s", "_", stem.replace("/", "-"))


# ---------------------------------------------------------------- source clips in names

# DNS Challenge noise: <label>_Freesound_validated_<id>_<chunk> (label may hold "_");
# names such as munching_Freesound_validated_B32_Chips_ebrahim_10 carry no id.
DNS_FREESOUND_CHUNK = re.compile(r"(?:^|_)Freesound_validated_(\d+)_\d+$", re.IGNORECASE)
FREESOUND_DOWNLOAD = re.compile(r"^(\d+)__")          # freesound.org: <id>__<user>__<name>
FREESOUND_LAYOUTS = ("fsd50k", "freesound")           # where <id>.wav is the whole name


def freesound_id(rel: str, layout: Optional[str] = None) -> Optional[str]:
    """The Freesound id a file name carries (rules in the module docstring), or None."""
    stem = os.path.splitext(os.path.basename(rel))[0]
    if layout in FREESOUND_LAYOUTS and stem.isascii() and stem.isdigit():
        return str(int(stem))
    for pattern in (DNS_FREESOUND_CHUNK, FREESOUND_DOWNLOAD):
        found = pattern.search(stem)
        if found:
            return str(int(found.group(1)))
    return None


def recording_of(rel: str, regex: Optional["re.Pattern"] = None) -> str:
    """The source recording of the file at ``rel`` (rule in the module docstring)."""
    if regex is not None:
        found = regex.search(rel)
        if found:
            recording = found.group(1) if regex.groups else found.group(0)
            if recording:
                return recording
    chunk = DNS_FREESOUND_CHUNK.search(os.path.splitext(os.path.basename(rel))[0])
    if chunk:
        return f"freesound:{int(chunk.group(1))}"
    return rel


def compile_recording_regex(corpus: str, text: str) -> "re.Pattern":
    try:
        return re.compile(text)
    except re.error as err:
        raise ValueError(f"--recording_regex for {corpus}: {text!r} is not a regular "
                         f"expression ({err}); e.g. '^(.*)_[0-9]+\\.wav$' makes "
                         f"recA_0001.wav part of recording recA") from None


def _check_name(name: str) -> None:
    if not CORPUS_NAME.match(name):
        raise ValueError(f"corpus name {name!r}: use letters, digits and _ . + - "
                         f"(it starts noise ids and names the corpus in {SPLIT_TSV})")


def list_corpus(spec: CorpusSpec, seed: int,
                recording_regex: Optional["re.Pattern"] = None) -> List[NoiseFile]:
    """The corpus's files in C order of relative path, each with its recording, split
    hash and Freesound id; an error naming what is missing."""
    _check_name(spec.name)
    if spec.layout not in LAYOUTS:
        raise ValueError(f"corpus {spec.name}: unknown layout {spec.layout!r}; "
                         f"known layouts: {', '.join(sorted(LAYOUTS))}")
    root = Path(os.path.abspath(spec.root))
    if not root.is_dir():
        raise ValueError(f"corpus {spec.name}: root {spec.root} does not exist "
                         f"or is not a directory")
    layout = LAYOUTS[spec.layout]
    base, paths = layout.find(root)
    if not paths:
        raise ValueError(f"corpus {spec.name} (layout {spec.layout}): no audio files "
                         f"({', '.join(AUDIO_SUFFIXES)}) under {root}; expected "
                         f"{layout.expects}")
    files = []
    for path in paths:
        rel = path.relative_to(base).as_posix()
        if re.search(r"[\t\n\r]", str(path)):
            raise ValueError(f"{path!r}: a tab or line break in the path cannot go in "
                             f"an scp or tsv file; rename it")
        recording = recording_of(rel, recording_regex)
        files.append(NoiseFile(noise_id(spec.name, rel), spec.name, rel, str(path),
                               split_hash(seed, spec.name, recording), recording=recording,
                               freesound=freesound_id(rel, spec.layout)))
    files.sort(key=lambda f: f.rel.encode("utf-8"))
    log.info("corpus %s (%s): %d files under %s", spec.name, spec.layout, len(files), base)
    return files


def list_listed(spec: ListedSpec) -> List[NoiseFile]:
    """The files of a listed corpus with their pools, in table order; an error naming
    the table line of anything wrong (rules in the module docstring)."""
    _check_name(spec.name)
    try:
        with open(spec.table, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise ValueError(f"listed corpus {spec.name}: cannot read its table {spec.table} "
                         f"({err.strerror})") from None
    header = lines[0].split("\t") if lines else []
    missing = [c for c in LISTED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{spec.table}: the header line has no column {', '.join(missing)}; "
                         f"a listed noise table is tab-separated, with a header naming at "
                         f"least {', '.join(LISTED_COLUMNS)}")
    column = {c: header.index(c) for c in LISTED_COLUMNS}
    root = os.path.abspath(spec.root)
    files = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{spec.table} line {number}"
        if len(fields) != len(header):
            raise ValueError(f"{where}: {len(fields)} tab-separated fields, the header has "
                             f"{len(header)}")
        rel, split, category = (fields[column[c]] for c in LISTED_COLUMNS)
        pool = LISTED_POOLS.get((split, category))
        if pool is None:
            raise ValueError(f"{where}: split {split!r}, category {category!r}; expected "
                             f"split train, dev or test and category seen or unseen "
                             f"(unseen noise is test noise only)")
        path = os.path.abspath(os.path.join(root, rel))
        if not os.path.isfile(path):
            raise ValueError(f"{where}: {path} does not exist (relative paths start at "
                             f"{root}, the listed corpus's root)")
        stem = os.path.splitext(os.path.basename(rel))[0]
        files.append(NoiseFile(re.sub(r"\s", "_", stem), spec.name, rel, path, pool=pool,
                               freesound=freesound_id(rel)))
    if not files:
        raise ValueError(f"{spec.table}: lists no noise files")
    log.info("listed corpus %s: %d files in %s under %s", spec.name, len(files), spec.table,
             root)
    return files


# ---------------------------------------------------------------- the audio check

@dataclass(frozen=True)
class Unusable:
    """A noise file refused or left out: its path, its kind (unreadable, short or
    silent) and why, in words that name the option deciding it."""

    path: str
    kind: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


@dataclass(frozen=True)
class AudioFacts:
    frames: int
    samplerate: int
    rms_dbfs: float      # over all samples and channels; -inf when no sample is above 0
    all_zero: bool       # digital silence
    digest: str          # sha1 of the channel count and the float32 samples


def audio_facts(path: str) -> AudioFacts:
    """Decode ``path`` once, CHECK_BLOCK frames at a time, into what the check needs.

    Raises what soundfile raises for a file it cannot read.
    """
    sha = hashlib.sha1()
    frames, energy, all_zero = 0, 0.0, True
    with sf.SoundFile(path) as audio:
        samplerate, channels = audio.samplerate, audio.channels
        sha.update(f"{channels} channels:".encode("ascii"))
        for block in audio.blocks(blocksize=CHECK_BLOCK, dtype="float32", always_2d=True):
            sha.update(block)                          # C-contiguous: hashed in place
            flat = block.reshape(-1)
            # a float32 BLAS dot: its rounding is far below the 0.1 dB the floor needs
            block_energy = float(np.dot(flat, flat))
            energy += block_energy
            if all_zero and (block_energy > 0.0 or flat.any()):  # any(): denormals square to 0
                all_zero = False
            frames += block.shape[0]
    samples = frames * max(1, channels)
    rms_dbfs = 10.0 * math.log10(energy / samples) if energy > 0.0 else -math.inf
    return AudioFacts(frames, samplerate, rms_dbfs, all_zero, sha.hexdigest())


def check_file(f: NoiseFile, min_seconds: float, silence_dbfs: float) -> Optional[Unusable]:
    """None when ``f`` is usable noise (its seconds and digest then filled in), else why
    not (rules in the module docstring)."""
    try:
        if os.path.getsize(f.path) == 0:       # libsndfile would say "Format not recognised"
            return Unusable(f.path, "unreadable", "unreadable noise audio (empty file, 0 bytes)")
        facts = audio_facts(f.path)
    except (RuntimeError, ValueError, OSError) as err:  # sf.LibsndfileError is a RuntimeError
        return Unusable(f.path, "unreadable", f"unreadable noise audio ({err})")
    if facts.frames <= 0 or facts.samplerate <= 0:
        return Unusable(f.path, "unreadable", "unreadable noise audio (audio has no samples)")
    f.seconds, f.digest = facts.frames / facts.samplerate, facts.digest
    problems, kind = [], ""
    if facts.all_zero:
        problems.append("silent: every sample is zero")
        kind = "silent"
    elif facts.rms_dbfs < silence_dbfs:
        problems.append(f"silent: RMS {facts.rms_dbfs:.1f} dBFS, below --silence_dbfs "
                        f"{silence_dbfs:g}")
        kind = "silent"
    if f.seconds < min_seconds:
        problems.append(f"{f.seconds:.3f} s long, shorter than --min_noise_seconds "
                        f"{min_seconds:g}")
        kind = kind or "short"
    return Unusable(f.path, kind, "; ".join(problems)) if problems else None


def check_audio_files(files: Sequence[NoiseFile], min_seconds: float = MIN_NOISE_SECONDS,
                      silence_dbfs: float = SILENCE_DBFS, nj: int = 1) -> List[Unusable]:
    """Decode every file with ``nj`` threads (libsndfile, sha1 and numpy let go of the
    GIL while they work) and fill in the seconds and digest of the usable ones; returns
    the unusable ones in C order of path."""
    bad = []
    with ThreadPoolExecutor(max_workers=max(1, nj)) as threads:
        checks = threads.map(lambda f: check_file(f, min_seconds, silence_dbfs), files)
        for done, problem in enumerate(checks, start=1):
            if problem is not None:
                bad.append(problem)
            if done % 5000 == 0:
                log.info("checked %d of %d noise files", done, len(files))
    return sorted(bad, key=lambda b: b.path.encode("utf-8"))


def _listing(bad: Sequence[Unusable]) -> str:
    """The first SHOWN_PROBLEMS of ``bad``, one per indented line, then a count."""
    lines = [f"  {b}" for b in bad[:SHOWN_PROBLEMS]]
    if len(bad) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(bad) - SHOWN_PROBLEMS} more")
    return "\n".join(lines)


def _kind_counts(bad: Sequence[Unusable]) -> str:
    kinds = sorted({b.kind for b in bad})
    return ", ".join(f"{k} {sum(b.kind == k for b in bad)}" for k in kinds)


def unusable_error(bad: Sequence[Unusable], total: int) -> ValueError:
    """The stage 1 stop: every unusable file counted, the first few named, the ways out."""
    message = (f"{len(bad)} of {total} noise files cannot be used:\n{_listing(bad)}\n"
               f"Remove or replace them, or pass --skip_bad true to leave them out "
               f"(scripts/prep_noise.sh; from egs/msp_podcast/merit: ./run.sh --skip_bad_noise "
               f"true; counted in the log and listed in {SKIPPED_TSV} next to the pools)")
    floors = [option for kind, option in (("short", "--min_noise_seconds"),
                                          ("silent", "--silence_dbfs"))
              if any(b.kind == kind for b in bad)]
    if floors:
        message += "; " + " and ".join(floors) + (" sets the floor" if len(floors) == 1
                                                  else " set the floors")
    return ValueError(message)


# ---------------------------------------------------------------- duplicates across pools

@dataclass(frozen=True)
class Duplicate:
    """``removed`` was left out of its pool as the same clip as ``kept``, which is in an
    earlier pool."""

    removed: NoiseFile
    kept: NoiseFile
    kind: str        # file, freesound or samples: what the two share
    reason: str      # the same, in words


_KIND_WORDS = {"file": "same file", "freesound": "same Freesound id", "samples": "same samples"}
_REASONS = {"file": lambda path: "the same file",
            "freesound": lambda fid: f"Freesound id {fid}",
            "samples": lambda digest: f"same samples (sha1 {digest[:12]})"}


def drop_duplicates(files: Sequence[NoiseFile]) -> Tuple[List[NoiseFile], List[Duplicate]]:
    """(files kept, files left out) after keeping each clip in its earliest pool only
    (rule in the module docstring); both in the order of ``files``."""
    rank = {pool: i for i, pool in enumerate(POOLS)}
    clips: Dict[Tuple[str, str], List[NoiseFile]] = {}
    for f in files:
        keys = [("file", os.path.realpath(f.path))]   # two corpora over the same folder
        if f.digest:
            keys.append(("samples", f.digest))
        if f.freesound:
            keys.append(("freesound", f.freesound))
        for key in keys:
            clips.setdefault(key, []).append(f)
    removed: Dict[str, Duplicate] = {}
    for (kind, value), same in sorted(clips.items()):
        if len(same) < 2:
            continue
        first = min(same, key=lambda f: (rank[f.pool], f.noise_id.encode("utf-8")))
        for f in same:
            if rank[f.pool] > rank[first.pool] and f.noise_id not in removed:
                removed[f.noise_id] = Duplicate(f, first, kind, _REASONS[kind](value))
    kept = [f for f in files if f.noise_id not in removed]
    return kept, [removed[f.noise_id] for f in files if f.noise_id in removed]


# ---------------------------------------------------------------- the split

def parse_fractions(text) -> Tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or a sequence) → (train, dev, test): all > 0, summing to 1."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        fractions = tuple(float(p) for p in parts)
    except ValueError:
        fractions = ()
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions {text!r}: expected three numbers > 0 for "
                         f"train,dev,test_seen that sum to 1, e.g. 0.8,0.1,0.1")
    return fractions


def _intervals(fractions) -> Dict[str, Tuple[float, float]]:
    edges = (0.0, fractions[0], fractions[0] + fractions[1], 1.0)
    return {pool: (edges[i], edges[i + 1]) for i, pool in enumerate(SEEN_POOLS)}


def split_seen(files: List[NoiseFile], fractions, recording_regex: Optional[str] = None) -> None:
    """Set ``pool`` of one seen corpus's files, a recording at a time (rule in the
    module docstring); ``recording_regex`` only names the rule in messages."""
    corpus = files[0].corpus
    recordings: Dict[str, List[NoiseFile]] = {}
    for f in files:
        recordings.setdefault(f.recording or f.rel, []).append(f)
    if len(recordings) < 3:
        grouped = recording_regex is not None or len(recordings) < len(files)
        by = f" (by --recording_regex {recording_regex!r})" if recording_regex else ""
        what = (f"{len(recordings)} recording{'s' if len(recordings) != 1 else ''}{by} in "
                f"{len(files)} usable file(s)"
                if grouped else f"{len(files)} usable file(s)")
        raise ValueError(f"seen corpus {corpus}: {what}; a seen corpus needs at least 3 "
                         f"{'recordings' if grouped else 'files'} (one each for train, dev "
                         f"and test_seen)")
    if recording_regex is not None:
        log.info("corpus %s: %d files in %d recordings (--recording_regex %r)", corpus,
                 len(files), len(recordings), recording_regex)
    u = {rec: members[0].u for rec, members in recordings.items()}
    intervals = _intervals(fractions)
    pool_of = {rec: next((p for p, (lo, hi) in intervals.items() if u[rec] < hi),
                         SEEN_POOLS[-1]) for rec in recordings}
    for pool, (lo, hi) in intervals.items():
        counts = {p: sum(q == p for q in pool_of.values()) for p in SEEN_POOLS}
        if counts[pool]:
            continue
        donors = [rec for rec in recordings if counts[pool_of[rec]] >= 2]
        moved = min(donors, key=lambda rec: (max(lo - u[rec], u[rec] - hi, 0.0),
                                             rec.encode("utf-8")))
        size = len(recordings[moved])
        log.info("corpus %s: %s was empty after the hash split; %s%s moves there from %s",
                 corpus, pool, moved, f" ({size} files)" if size > 1 else "", pool_of[moved])
        pool_of[moved] = pool
    for rec, members in recordings.items():
        for f in members:
            f.pool = pool_of[rec]


# ---------------------------------------------------------------- all together

@dataclass
class NoiseSplit:
    """What went where, for the log and for tests."""

    files: List[NoiseFile] = field(default_factory=list)          # in C order of noise id
    skipped: List[Unusable] = field(default_factory=list)         # with skip_bad
    duplicates: List[Duplicate] = field(default_factory=list)     # left out of later pools

    def pool(self, name: str) -> Dict[str, str]:
        return {f.noise_id: f.path for f in self.files if f.pool == name}

    def counts(self) -> Dict[Tuple[str, str], Tuple[int, Optional[float]]]:
        """(corpus, pool) → (files, hours or None when durations were not measured)."""
        table: Dict[Tuple[str, str], list] = {}
        for f in self.files:
            entry = table.setdefault((f.corpus, f.pool), [0, 0.0])
            entry[0] += 1
            entry[1] = None if f.seconds is None or entry[1] is None else entry[1] + f.seconds
        return {key: (n, None if s is None else s / 3600) for key, (n, s) in table.items()}

    def summary(self) -> str:
        rows = [("corpus", "pool", "files", "hours")]
        totals: Dict[str, list] = {}
        for (corpus, pool), (n, hours) in sorted(self.counts().items(),
                                                 key=lambda kv: (kv[0][0], POOLS.index(kv[0][1]))):
            rows.append((corpus, pool, str(n), "?" if hours is None else f"{hours:.3f}"))
            total = totals.setdefault(pool, [0, 0.0])
            total[0] += n
            total[1] = None if hours is None or total[1] is None else total[1] + hours
        for pool in POOLS:
            n, hours = totals.get(pool, (0, 0.0))
            rows.append(("(all)", pool, str(n), "?" if hours is None else f"{hours:.3f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unusable noise file(s) "
                         f"({_kind_counts(self.skipped)}): {SKIPPED_TSV}")
        if self.duplicates:
            kinds = sorted({d.kind for d in self.duplicates})
            counts = ", ".join(f"{_KIND_WORDS[kind]}: "
                               f"{sum(d.kind == kind for d in self.duplicates)}"
                               for kind in kinds)
            lines.append(f"left out {len(self.duplicates)} noise file(s) already in an "
                         f"earlier pool ({counts}): {DUPLICATES_TSV}")
        return "\n".join(lines)


def _compile_regexes(given: Mapping[str, str], seen: Sequence[CorpusSpec]):
    names = [s.name for s in seen]
    for corpus in given:
        if corpus not in names:
            raise ValueError(f"--recording_regex names corpus {corpus}, which is not a seen "
                             f"corpus (seen: {', '.join(names) or 'none'}); recordings "
                             f"decide the hash split of seen corpora only")
    return {corpus: compile_recording_regex(corpus, text) for corpus, text in given.items()}


def build_split(seen: Sequence[CorpusSpec], unseen: Sequence[CorpusSpec], seed: int = 1,
                fractions=DEFAULT_FRACTIONS, check_audio: bool = True,
                skip_bad: bool = False, listed: Sequence[ListedSpec] = (),
                min_noise_seconds: float = MIN_NOISE_SECONDS,
                silence_dbfs: float = SILENCE_DBFS,
                recording_regex: Optional[Mapping[str, str]] = None,
                nj: int = 1) -> NoiseSplit:
    """List, check, split and de-duplicate the corpora (nothing is written).

    ``recording_regex`` maps a seen corpus's name to its regular expression;
    ``nj`` threads decode the audio.
    """
    fractions = parse_fractions(fractions)
    names = [s.name for s in (*seen, *unseen, *listed)]
    both = sorted({s.name for s in seen} & {s.name for s in unseen})
    if both:
        raise ValueError(f"corpus {both[0]} is given as both seen and unseen; "
                         f"a corpus belongs to one side only")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"corpus {repeated[0]} is given twice; give each corpus once")
    if not seen and not listed:
        raise ValueError("pools train, dev and test_seen would be empty: "
                         "add a seen corpus (e.g. --seen crss=folder:/data/CRSS-noise)")
    if not unseen and not listed:
        raise ValueError("pool test_unseen would be empty: add an unseen corpus "
                         "(e.g. --unseen dns=dns:/data/DNS-Challenge)")
    regex_text = dict(recording_regex or {})
    regexes = _compile_regexes(regex_text, seen)
    result = NoiseSplit()
    by_id: Dict[str, NoiseFile] = {}
    corpora = []
    for spec, side in ([(s, "seen") for s in seen] + [(s, "unseen") for s in unseen]
                       + [(s, "listed") for s in listed]):
        files = (list_listed(spec) if side == "listed"
                 else list_corpus(spec, seed, regexes.get(spec.name)))
        for f in files:
            if f.noise_id in by_id:
                raise ValueError(f"noise id {f.noise_id} is shared by {by_id[f.noise_id].path} "
                                 f"and {f.path}; rename one of them")
            by_id[f.noise_id] = f
        corpora.append((spec, side, files))
    if check_audio:
        everything = [f for _, _, files in corpora for f in files]
        bad = check_audio_files(everything, min_noise_seconds, silence_dbfs, nj)
        if bad and not skip_bad:
            raise unusable_error(bad, len(everything))
        if bad:
            log.warning("skipping %d unusable noise file(s) (%s):\n%s", len(bad),
                        _kind_counts(bad), _listing(bad))
        result.skipped = bad
        left_out = {b.path for b in bad}
        corpora = [(spec, side, [f for f in files if f.path not in left_out])
                   for spec, side, files in corpora]
        for spec, _, files in corpora:
            if not files:
                raise ValueError(f"corpus {spec.name}: none of its files is usable noise "
                                 f"audio; --skip_bad left out every one (see the log)")
    else:
        log.info("check_audio is false: files are not opened, so copies of one clip are "
                 "found by Freesound id and path only, not by their samples")
    for spec, side, files in corpora:
        if side == "seen":
            split_seen(files, fractions, regex_text.get(spec.name))
        elif side == "unseen":
            for f in files:
                f.pool = "test_unseen"
        result.files.extend(files)
    before = {f.pool for f in result.files}
    result.files, result.duplicates = drop_duplicates(result.files)
    result.files.sort(key=lambda f: f.noise_id.encode("utf-8"))
    for pool in POOLS:
        if pool in before and not result.pool(pool):
            gone = [d for d in result.duplicates if d.removed.pool == pool]
            d = gone[0]
            raise ValueError(
                f"noise pool {pool} would be empty: its {len(gone)} file(s) are the same "
                f"clips as files in earlier pools, e.g. {d.removed.noise_id} "
                f"({d.removed.path}) is {d.kept.noise_id} ({d.kept.path}) in {d.kept.pool}: "
                f"{d.reason}; give {pool} noise that the earlier pools do not hold")
    for (split, category), pool in LISTED_POOLS.items():  # reached with listed corpora only
        if not result.pool(pool):
            raise ValueError(f"noise pool {pool} would be empty: add {category} noise "
                             f"(--{category}), or list files of split {split} and category "
                             f"{category} in a listed corpus's table")
    return result


def write_split(split: NoiseSplit, out_dir) -> None:
    """The four scp files, noise_split.tsv, duplicates.tsv and skipped.tsv, replacing
    ``out_dir`` as a whole."""
    for pool in POOLS:
        if not split.pool(pool):
            raise ValueError(f"{out_dir}: noise pool {pool} would be empty")
    with replacing_dir(out_dir) as tmp:
        for pool in POOLS:
            write_kv(tmp / f"{pool}.scp", split.pool(pool))
        with open(tmp / SPLIT_TSV, "w", encoding="utf-8") as f:
            f.write("noise_id\tcorpus\tpool\tpath\n")
            for nf in split.files:
                f.write(f"{nf.noise_id}\t{nf.corpus}\t{nf.pool}\t{nf.path}\n")
        with open(tmp / DUPLICATES_TSV, "w", encoding="utf-8") as f:
            f.write("noise_id\tpool\tpath\tsame_as\tsame_as_pool\tsame_as_path\treason\n")
            for d in split.duplicates:
                f.write(f"{d.removed.noise_id}\t{d.removed.pool}\t{d.removed.path}\t"
                        f"{d.kept.noise_id}\t{d.kept.pool}\t{d.kept.path}\t{d.reason}\n")
        with open(tmp / SKIPPED_TSV, "w", encoding="utf-8") as f:
            f.write("path\tkind\twhy\n")
            for b in split.skipped:
                f.write(f"{b.path}\t{b.kind}\t{b.why}\n")


def prepare(seen: Sequence[CorpusSpec], unseen: Sequence[CorpusSpec], out_dir, seed: int = 1,
            fractions=DEFAULT_FRACTIONS, check_audio: bool = True,
            skip_bad: bool = False, listed: Sequence[ListedSpec] = (),
            min_noise_seconds: float = MIN_NOISE_SECONDS, silence_dbfs: float = SILENCE_DBFS,
            recording_regex: Optional[Mapping[str, str]] = None, nj: int = 1) -> NoiseSplit:
    """Build the split, write ``out_dir`` and log the summary; returns the split."""
    split = build_split(seen, unseen, seed, fractions, check_audio, skip_bad, listed,
                        min_noise_seconds, silence_dbfs, recording_regex, nj)
    write_split(split, out_dir)
    log.info("noise pools in %s (seed %d):\n%s", out_dir, seed, split.summary())
    return split
