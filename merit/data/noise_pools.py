"""Noise corpora → the four noise pools of stage 2: train, dev, test_seen, test_unseen.

Writes ``<out>/{train,dev,test_seen,test_unseen}.scp`` (``<noise-id> <absolute path>``,
C-sorted) and ``<out>/noise_split.tsv`` (noise_id, corpus, pool, path), all at once:
the files are written to ``<out>.tmp`` and swapped in for any old ``<out>``.

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

The split (seen corpora only; every file of an unseen corpus goes to test_unseen):
each file gets ``u = sha1("<seed>:<corpus>/<relative path>")`` read as a fraction
in [0, 1) (first 8 bytes, big-endian, / 2**64), and goes to train if
``u < f_train``, to dev if ``u < f_train + f_dev``, else to test_seen. A file's pool
thus depends only on the seed, the corpus name, its own relative path and the
fractions: not on listing order, on other files or on other corpora. Hash
splits of a small corpus can leave a pool empty, so per seen corpus, pools are
filled in the order train, dev, test_seen: an empty pool takes the file whose
``u`` lies nearest to the pool's interval ``[lo, hi)`` (ties: C order of relative
path) among the pools that hold two or more files. A seen corpus needs at least
three files for that; fewer is an error. Every pool must end up with a file.
"""
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import soundfile as sf

from merit.data.audio_io import AUDIO_SUFFIXES
from merit.data.datadir import c_sorted, write_kv
from merit.utils.atomic_dir import replacing_dir

log = logging.getLogger(__name__)

POOLS = ("train", "dev", "test_seen", "test_unseen")
SEEN_POOLS = POOLS[:3]
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_TSV = "noise_split.tsv"
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
    u: Optional[float] = None      # split hash in [0, 1) (hash-split corpora only)
    pool: str = ""
    seconds: Optional[float] = None


def split_hash(seed: int, corpus: str, rel: str) -> float:
    """sha1 of ``"<seed>:<corpus>/<rel>"``, first 8 bytes as a fraction in [0, 1)."""
    digest = hashlib.sha1(f"{seed}:{corpus}/{rel}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def noise_id(corpus: str, rel: str) -> str:
    stem = os.path.splitext(rel)[0]
    return f"{corpus}-" + re.sub(r"\s", "_", stem.replace("/", "-"))


def _check_name(name: str) -> None:
    if not CORPUS_NAME.match(name):
        raise ValueError(f"corpus name {name!r}: use letters, digits and _ . + - "
                         f"(it starts noise ids and names the corpus in {SPLIT_TSV})")


def list_corpus(spec: CorpusSpec, seed: int) -> List[NoiseFile]:
    """The corpus's files in C order of relative path; an error naming what is missing."""
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
        files.append(NoiseFile(noise_id(spec.name, rel), spec.name, rel, str(path),
                               split_hash(seed, spec.name, rel)))
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
        files.append(NoiseFile(re.sub(r"\s", "_", stem), spec.name, rel, path, pool=pool))
    if not files:
        raise ValueError(f"{spec.table}: lists no noise files")
    log.info("listed corpus %s: %d files in %s under %s", spec.name, len(files), spec.table,
             root)
    return files


def measure_audio(files: List[NoiseFile], skip_bad: bool) -> Tuple[List[NoiseFile], List[str]]:
    """Files soundfile can open and that have samples, with their durations filled in.

    An unreadable file is an error naming it, or with ``skip_bad`` left out and
    returned as ``"<path>: <why>"``.
    """
    good, bad = [], []
    for f in files:
        try:
            info = sf.info(f.path)
            if info.frames <= 0 or info.samplerate <= 0:
                raise ValueError("audio has no samples")
        except (RuntimeError, ValueError, sf.LibsndfileError) as err:
            problem = f"{f.path}: unreadable noise audio ({err})"
            if not skip_bad:
                raise ValueError(problem + "; remove it, or pass skip_bad to skip such files")
            log.warning("skipping %s", problem)
            bad.append(problem)
            continue
        f.seconds = info.frames / info.samplerate
        good.append(f)
    return good, bad


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


def split_seen(files: List[NoiseFile], fractions) -> None:
    """Set ``pool`` of one seen corpus's files (rule in the module docstring)."""
    corpus = files[0].corpus
    if len(files) < 3:
        raise ValueError(f"seen corpus {corpus}: {len(files)} usable file(s); a seen corpus "
                         f"needs at least 3 (one each for train, dev and test_seen)")
    intervals = _intervals(fractions)
    for f in files:
        f.pool = next((p for p, (lo, hi) in intervals.items() if f.u < hi), SEEN_POOLS[-1])
    for pool, (lo, hi) in intervals.items():
        counts = {p: sum(f.pool == p for f in files) for p in SEEN_POOLS}
        if counts[pool]:
            continue
        donors = [f for f in files if counts[f.pool] >= 2]
        moved = min(donors, key=lambda f: (max(lo - f.u, f.u - hi, 0.0), f.rel.encode("utf-8")))
        log.info("corpus %s: %s was empty after the hash split; %s moves there from %s",
                 corpus, pool, moved.rel, moved.pool)
        moved.pool = pool


# ---------------------------------------------------------------- all together

@dataclass
class NoiseSplit:
    """What went where, for the log and for tests."""

    files: List[NoiseFile] = field(default_factory=list)    # in C order of noise id
    skipped: List[str] = field(default_factory=list)        # "<path>: <why>"

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
            lines.append(f"skipped {len(self.skipped)} unreadable file(s), "
                         f"e.g. {self.skipped[0]}")
        return "\n".join(lines)


def build_split(seen: Sequence[CorpusSpec], unseen: Sequence[CorpusSpec], seed: int = 1,
                fractions=DEFAULT_FRACTIONS, check_audio: bool = True,
                skip_bad: bool = False, listed: Sequence[ListedSpec] = ()) -> NoiseSplit:
    """List, check and split the corpora (nothing is written)."""
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
    result = NoiseSplit()
    by_id: Dict[str, NoiseFile] = {}
    for spec, side in ([(s, "seen") for s in seen] + [(s, "unseen") for s in unseen]
                       + [(s, "listed") for s in listed]):
        files = list_listed(spec) if side == "listed" else list_corpus(spec, seed)
        for f in files:
            if f.noise_id in by_id:
                raise ValueError(f"noise id {f.noise_id} is shared by {by_id[f.noise_id].path} "
                                 f"and {f.path}; rename one of them")
            by_id[f.noise_id] = f
        if check_audio:
            files, bad = measure_audio(files, skip_bad)
            result.skipped.extend(bad)
            if not files:
                raise ValueError(f"corpus {spec.name}: none of its files is readable audio")
        if side == "seen":
            split_seen(files, fractions)
        elif side == "unseen":
            for f in files:
                f.pool = "test_unseen"
        result.files.extend(files)
    result.files.sort(key=lambda f: f.noise_id.encode("utf-8"))
    for (split, category), pool in LISTED_POOLS.items():  # reached with listed corpora only
        if not result.pool(pool):
            raise ValueError(f"noise pool {pool} would be empty: add {category} noise "
                             f"(--{category}), or list files of split {split} and category "
                             f"{category} in a listed corpus's table")
    return result


def write_split(split: NoiseSplit, out_dir) -> None:
    """The four scp files and noise_split.tsv, replacing ``out_dir`` as a whole."""
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


def prepare(seen: Sequence[CorpusSpec], unseen: Sequence[CorpusSpec], out_dir, seed: int = 1,
            fractions=DEFAULT_FRACTIONS, check_audio: bool = True,
            skip_bad: bool = False, listed: Sequence[ListedSpec] = ()) -> NoiseSplit:
    """Build the split, write ``out_dir`` and log the summary; returns the split."""
    split = build_split(seen, unseen, seed, fractions, check_audio, skip_bad, listed)
    write_split(split, out_dir)
    log.info("noise pools in %s (seed %d):\n%s", out_dir, seed, split.summary())
    return split
