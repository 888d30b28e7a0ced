"""The recordings one ``merit-infer`` call names: files, folders, Kaldi ``wav.scp`` lists,
or a list of paths on standard input (``-``), in any mix.

    items = gather_inputs(["talk.flac", "clips/", "data/test/wav.scp", "-"], stdin=sys.stdin)

Each ``InputItem`` has ``name`` (how results name it: the path as found, or a
``wav.scp``'s utterance id), ``path`` (the file to read) and ``relpath`` (where its
enhanced audio goes below ``--out_dir``: a folder's files keep their place below the
folder's own name, a named file keeps its name, a ``wav.scp`` utterance is ``<id>``;
always ending in ``.wav``, since the output is 16 kHz PCM WAV).

What cannot be right is refused here, before any model is loaded, naming the file and
the line: a ``wav.scp`` line that is not ``<id> <path>`` or is a command (``… |``), an
id given twice, a folder without audio, two inputs whose outputs would overwrite each
other. A path that does not exist stays an item: it is reported with the other
unusable files and the rest are processed.
"""
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable, List, Optional, TextIO

import soundfile as sf

from merit.data.audio_io import AUDIO_SUFFIXES

#: Suffixes a folder is searched for: merit's audio, and MP3 where this libsndfile
#: (1.1 and later) reads it.
READABLE_SUFFIXES = AUDIO_SUFFIXES + ((".mp3",) if "MP3" in sf.available_formats() else ())


@dataclass(frozen=True)
class InputItem:
    name: str
    path: Path
    relpath: PurePath


def _folder_items(folder: Path) -> List[InputItem]:
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: a folder with no audio files "
                         f"({', '.join(READABLE_SUFFIXES)}, searched recursively)")
    return [InputItem(str(p), p,
                      PurePath(folder.resolve().name, p.relative_to(folder)).with_suffix(".wav"))
            for p in files]


def _scp_items(scp: Path) -> List[InputItem]:
    items, seen = [], {}
    for lineno, line in enumerate(scp.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        where = f"{scp} line {lineno}"
        if len(fields) != 2:
            raise ValueError(f"{where}: expected '<utterance id> <audio path>', got {line!r}")
        utt, path = fields[0], fields[1].strip()
        if path.endswith("|"):
            raise ValueError(f"{where}: {utt} is a command ({path!r}), not a file; merit-infer "
                             f"reads audio files: write the audio out first (e.g. with sox)")
        if utt in seen:
            raise ValueError(f"{where}: utterance id {utt} was given before, on line {seen[utt]}")
        seen[utt] = lineno
        items.append(InputItem(utt, Path(path), PurePath(f"{utt}.wav")))
    if not items:
        raise ValueError(f"{scp}: an empty wav.scp (no '<utterance id> <audio path>' lines)")
    return items


def _items_of(argument: str) -> List[InputItem]:
    path = Path(argument)
    if path.is_dir():
        return _folder_items(path)
    if path.suffix == ".scp":
        if not path.is_file():
            raise ValueError(f"{path}: no such wav.scp")
        return _scp_items(path)
    return [InputItem(argument, path, PurePath(path.name).with_suffix(".wav"))]


def gather_inputs(arguments: Iterable[str], stdin: Optional[TextIO] = None) -> List[InputItem]:
    """The items of ``arguments`` in order; ``-`` reads one path (file, folder or
    wav.scp) per line from ``stdin``.

    Raises ValueError for what the module docstring lists."""
    items: List[InputItem] = []
    for argument in arguments:
        if argument == "-":
            if stdin is None:
                raise ValueError("'-' names standard input, and there is none")
            for line in stdin:
                if line.strip():
                    items.extend(_items_of(line.strip()))
        else:
            items.extend(_items_of(argument))
    if not items:
        raise ValueError("no input: name audio files, folders, a wav.scp, or '-' for a list "
                         "on standard input")
    owners = {}
    for item in items:
        owner = owners.setdefault(item.relpath, item.path)
        if owner != item.path:
            raise ValueError(f"{owner} and {item.path} would both be written as {item.relpath} "
                             f"below --out_dir; give them in different folders or rename one")
    return items
