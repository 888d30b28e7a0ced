"""Fingerprints of what a recipe step consumed, for its done-marker.

    python -m merit.utils.fingerprint data/train_noisy dump/fbank/train_noisy
    data/train_noisy 3f0c1e...
    dump/fbank/train_noisy 9a77d2...

A directory's fingerprint (a data dir, a feature dump) covers

- the content of each file directly in it (``wav.scp``, ``utt2emo``, ``feats.scp`` …),
  except the step markers (``*.done``) and caches that later steps write there
  (``noisy_se_scores.tsv``, ``oracle_se_scores_<hash>.tsv``): writing them must not make
  the directory look changed;
- for every path that a ``*.scp`` file lists, its size and modification time.

Listed files are stat-ed, not read: hashing the audio or the features of a 100k-utterance
corpus would cost about as much as the step it guards, while a stat costs microseconds
(100,000 files: about a second on a local disk). What this misses is a listed file
rewritten with the same size and an mtime set back by hand; what it over-reports is a
file rewritten with identical bytes (the step is redone, which is safe). A directory
or file that does not exist has the fingerprint ``absent``; a single file (a noise pool's
scp) is fingerprinted like a file of a directory.
"""
import fnmatch
import hashlib
import os
import sys
from pathlib import Path

#: Names (glob patterns) of the files of a directory that are not inputs of the steps
#: that read it: the SE-score caches of merit.bin.score.
NOT_INPUTS = ("*_se_scores*.tsv",)


def stat_line(value: str) -> str:
    """``<path> <size> <mtime>`` of the file behind an scp value (a path, or
    ``path.ark:offset``), ``<path> missing``, or '' for a pipe command. One stat when
    the value is a path, as it nearly always is."""
    value = value.strip()
    if value.endswith("|"):
        return ""
    candidates = [value] + ([value.rsplit(":", 1)[0]] if ":" in value else [])
    for path in candidates:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        return f"{path} {stat.st_size} {stat.st_mtime_ns}"
    return f"{value} missing"


def file_digest(path: Path, digest) -> None:
    """Add the file's bytes and, for an scp file, the stats of what it lists."""
    data = path.read_bytes()
    digest.update(f"{path.name} {len(data)}\n".encode())
    digest.update(data)
    if path.suffix != ".scp":
        return
    for line in data.decode("utf-8", errors="replace").splitlines():
        parts = line.split(maxsplit=1)
        stat = stat_line(parts[1]) if len(parts) == 2 else ""
        if stat:
            digest.update((stat + "\n").encode())


def fingerprint(path) -> str:
    """16 hex digits that change when what a step reads from ``path`` changes: a
    directory (its files, as above) or one file (an scp file with what it lists)."""
    path = Path(path)
    digest = hashlib.sha1()
    if path.is_file():
        file_digest(path, digest)
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if (child.is_file() and not child.name.endswith(".done")
                    and not any(fnmatch.fnmatchcase(child.name, p) for p in NOT_INPUTS)):
                file_digest(child, digest)
    else:
        return "absent"
    return digest.hexdigest()[:16]


def missing_listed(path) -> list:
    """The files that the ``*.scp`` files of ``path`` (a directory, or one scp file)
    list and that do not exist; an absent ``path`` lists nothing."""
    path = Path(path)
    scps = [path] if path.is_file() else sorted(path.glob("*.scp")) if path.is_dir() else []
    missing = []
    for scp in scps:
        if scp.suffix != ".scp":
            continue
        for line in scp.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2 and stat_line(parts[1]).endswith(" missing"):
                missing.append(f"{scp}: {parts[1].strip()}")
    return missing


def main(argv=None) -> int:
    """Print each PATH's fingerprint; with ``--missing``, print the files its scp files
    list that do not exist instead, and exit 1 if there are any."""
    paths = sys.argv[1:] if argv is None else list(argv)
    check = bool(paths) and paths[0] == "--missing"
    paths = paths[1:] if check else paths
    if not paths:
        print("usage: python -m merit.utils.fingerprint [--missing] PATH...", file=sys.stderr)
        return 2
    if check:
        missing = [m for path in paths for m in missing_listed(path)]
        for line in missing[:5]:
            print(f"missing: {line}")
        if len(missing) > 5:
            print(f"missing: ... {len(missing) - 5} more")
        return 1 if missing else 0
    for path in paths:
        print(path, fingerprint(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
