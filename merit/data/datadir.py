"""Kaldi-style data directories: read and write them, never half-written.

A data directory holds one text file per field, each line ``<key> <value>``,
sorted by key in C locale: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``utt2emo`` …
"""
from typing import Dict, Mapping

from merit.utils.atomic_dir import replacing_dir


def read_kv(path) -> Dict[str, str]:
    """Read ``<key> <value…>`` lines into a dict, keeping the line order.

    Raises ValueError naming the file and line for a line without a value or a
    repeated key.
    """
    table: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split(maxsplit=1)
            if len(fields) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<key> <value>', got {line!r}")
            key, value = fields
            if key in table:
                raise ValueError(f"{path}:{lineno}: duplicate key {key!r}")
            table[key] = value.strip()
    return table


def c_sorted(keys):
    """Keys in LC_ALL=C order (byte order of the UTF-8 encoding)."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def write_kv(path, table: Mapping[str, object]) -> None:
    """Write ``<key> <value>`` lines in C-locale key order."""
    with open(path, "w", encoding="utf-8") as f:
        for key in c_sorted(table):
            f.write(f"{key} {table[key]}\n")


def spk2utt_from(utt2spk: Mapping[str, str]) -> Dict[str, str]:
    speakers: Dict[str, list] = {}
    for utt in c_sorted(utt2spk):
        speakers.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in speakers.items()}


def write_datadir(out_dir, files: Mapping[str, Mapping[str, object]]) -> None:
    """Write a complete data directory, replacing any previous one as a whole.

    ``files`` maps file names (``wav.scp``, ``utt2spk``, ``utt2emo`` …) to
    ``{utt: value}``; ``spk2utt`` is derived from ``utt2spk``. Everything is
    written to ``<out_dir>.tmp`` first and swapped in by renames, so an
    interrupted run never leaves a directory that looks finished.
    """
    if "utt2spk" not in files:
        raise ValueError(f"{out_dir}: a data directory needs utt2spk")
    with replacing_dir(out_dir) as tmp:
        for name, table in files.items():
            write_kv(tmp / name, table)
        write_kv(tmp / "spk2utt", spk2utt_from(files["utt2spk"]))
