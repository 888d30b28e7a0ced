"""Disk preflight of recipe stages 2, 3 and 5, and of a cascade's feature dumps of
enhanced speech: the bytes a stage will write, against the free space where it writes
them, checked before it writes anything.

    python -m merit.bin.disk_preflight audio --target dump/audio \\
        data/train dump/audio/train_noisy data/test1 dump/audio/test1_snr-5_seen ...
    python -m merit.bin.disk_preflight feats --target dump/wavlm_large --upstream wavlm_large \\
        data/train_noisy dump/wavlm_large/train_noisy data/dev_noisy dump/wavlm_large/dev_noisy
    python -m merit.bin.disk_preflight enhanced --target exp/se_only_fbank_seed1 \\
        data/test1_snr-5_seen exp/se_only_fbank_seed1/decode_test1_snr-5_seen ...
    python -m merit.bin.disk_preflight enhanced_feats --target exp/se_only_fbank_seed1 \\
        exp/se_only_fbank_seed1/decode_train_noisy/data \\
        exp/se_only_fbank_seed1/decode_train_noisy/feats ...

The positional arguments are pairs ``<data dir> <output dir>``, one per set the stage
will write, exactly as merit.sh lists them (so the check follows whatever sets the
stage writes). It prints each set's utterances, hours and bytes, the total, and the
free space at ``--target``; it exits 1 with a message naming the target, the bytes
needed and the bytes free when they do not fit, unless ``--force true``.

Estimates, per utterance of n samples (16 kHz):

* ``audio`` (merit.bin.simulate_noise): a 16-bit PCM WAV of the mixture and one of
  the scaled noise, 44 + 2n bytes each; a mixture that would clip is scaled down with
  its clean reference, whose copy (44 + 2n more) is written too. Which ones clip is
  known only after mixing, so the stage needs at most three WAVs per utterance and
  at least two; the check takes the most.
* ``feats`` (merit.bin.dump_ssl): ceil(n / R) frames (s3prl's frame count: one frame
  per started hop of R samples) × L hidden states × D dimensions × 2 bytes (float16)
  or 4 (float32). L, D and R come from ``KNOWN_UPSTREAMS`` for the upstreams named
  there, otherwise from the upstream itself, loaded as the dump loads it. File
  headers and the lists (feats.scp, feats_shape) come on top: well under 1 % for
  utterances of a second or more.
* ``enhanced_feats``: the same, for the features a cascade dumps of its enhancer's
  output (the training and validation sets for a classifier trained on enhanced
  speech, in stage 4; the test sets with ``--dump_test_sets true``, in stage 5).
* ``enhanced`` (merit.bin.merit_inference, for a model with an SE head): a 16-bit PCM
  WAV of the enhanced speech, 44 + 2n bytes; the lists (posteriors, expert usage)
  come on top, a line per utterance.

n comes from the data dir's ``utt2num_samples``, else ``utt2dur`` (seconds), else the
audio headers of ``wav.scp`` (read without decoding). A set whose data dir or audio
cannot be read is left out of the estimate with a warning: the stage itself then
fails on it with its own message; this check is about disk only.

Bytes already under a set's output directory count as written: the stages rewrite
their files in place or keep them (a resumed dump), so a rerun of a finished stage
needs nothing more. The stage is let through when the bytes still to write plus
``MARGIN`` (5 %) of them fit in the free space of the file system holding
``--target`` (its nearest existing parent): the margin covers the headers and lists,
and leaves the file system short of completely full.

Test hook: the environment variable ``MERIT_FAKE_FREE_BYTES`` replaces the free space
measured (tests use it to make a small run not fit).
"""
import argparse
import logging
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from espnet2.utils.types import str2bool

from merit.data.audio_io import SAMPLE_RATE, AudioFileError, audio_info
from merit.data.datadir import read_kv
from merit.data.dump_dtypes import DUMP_DTYPES

log = logging.getLogger("disk_preflight")

MARGIN = 0.05
#: The recipe stage of each kind of output, and what else a user can do when it does
#: not fit (besides freeing space and --force true).
STAGES = {"audio": "stage 2 (noise simulation)", "feats": "stage 3 (SSL feature dumping)",
          "enhanced": "stage 5 (decoding)",
          "enhanced_feats": "the cascade's feature dump of enhanced speech (stage 4 or 5)"}
REMEDIES = {
    "audio": "point the stage elsewhere (--audio_dump) or write less (fewer --test_sets)",
    "feats": "point the stage elsewhere (--dumpdir) or write less (fewer --test_sets, "
             "--layers, or --ssl_mode online)",
    "enhanced": "point the experiments elsewhere (--expdir) or decode fewer sets "
                "(--test_sets)",
    "enhanced_feats": "point the experiments elsewhere (--expdir) or dump nothing "
                      "(--ssl_mode online)",
}
WAV_HEADER_BYTES = 44  # RIFF, fmt and data chunk headers of soundfile's PCM WAV
PCM16_BYTES = 2
FAKE_FREE_ENV = "MERIT_FAKE_FREE_BYTES"
#: (hidden states L, dimensions D, samples per frame R) of the upstreams planned for.
#: fbank: s3prl's kaldi-style extractor, 80 mel bins with deltas and delta-deltas every
#: 10 ms (test_disk_preflight checks it against the loaded upstream). WavLM / HuBERT:
#: the CNN encoder's output plus one state per Transformer layer (12 in Base, 24 in
#: Large), of 768 or 1024 dimensions, one frame per 320 samples (the CNN's strides
#: 5 × 2^6); the WavLM Large entry is checked against the architecture bench_stages
#: builds (merit.bin.bench_stages.WAVLM_LARGE).
KNOWN_UPSTREAMS = {
    "fbank": (1, 240, 160),
    "wavlm_base": (13, 768, 320),
    "wavlm_base_plus": (13, 768, 320),
    "wavlm_large": (25, 1024, 320),
    "hubert_base": (13, 768, 320),
    "hubert_large_ll60k": (25, 1024, 320),
}


@dataclass
class SetSize:
    """One set: its utterances' lengths in samples and what could not be counted."""

    data_dir: Path
    out_dir: Path
    samples: List[int] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


def read_lengths(data_dir: Path) -> Tuple[List[int], List[str]]:
    """Samples (at 16 kHz) of each utterance of ``data_dir``, and the problems met
    (files that could not be read; their utterances are not counted)."""
    lengths_file = data_dir / "utt2num_samples"
    if lengths_file.is_file():
        return [int(v) for v in read_kv(lengths_file).values()], []
    durations_file = data_dir / "utt2dur"
    if durations_file.is_file():
        return [round(float(v) * SAMPLE_RATE) for v in read_kv(durations_file).values()], []
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        return [], [f"{wav_scp} is missing"]
    lengths, problems = [], []
    for path in read_kv(wav_scp).values():
        try:
            info = audio_info(path)
        except AudioFileError as err:
            problems.append(str(err))
            continue
        lengths.append(round(info.frames * SAMPLE_RATE / info.samplerate))
    return lengths, problems


def audio_bytes(samples: Sequence[int], copies: int) -> int:
    """Bytes of ``copies`` 16-bit PCM WAVs of each utterance."""
    return copies * sum(WAV_HEADER_BYTES + PCM16_BYTES * n for n in samples)


def feature_bytes(samples: Sequence[int], layers: int, dims: int, rate: int, itemsize: int) -> int:
    """Bytes of the (T, L, D) features of each utterance, T = ceil(n / rate)."""
    return sum(math.ceil(n / rate) for n in samples) * layers * dims * itemsize


def bytes_under(directory: Path) -> int:
    """Apparent size of the files under ``directory`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
            except FileNotFoundError:  # removed meanwhile (a finished job's temporary file)
                pass
    return total


def free_bytes(target: Path) -> Tuple[int, Path]:
    """Free bytes of the file system that holds ``target`` (or its nearest existing
    parent), and that directory; ``MERIT_FAKE_FREE_BYTES`` replaces the measurement."""
    where = target.resolve()
    while not where.exists():
        where = where.parent
    fake = os.environ.get(FAKE_FREE_ENV)
    if fake:
        return int(fake), where
    return shutil.disk_usage(where).free, where


def human(n: float) -> str:
    """Decimal units, as disks are sold: 1 GB = 10^9 bytes."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000
        if abs(n) < 1000:
            break
    return f"{n:.1f} {unit}"


def feature_layout(upstream: str, upstream_ckpt: Optional[str], layers: Optional[str]):
    """(L, D, R, where the numbers come from) of the features dump_ssl writes."""
    if upstream in KNOWN_UPSTREAMS:
        num_layers, dims, rate = KNOWN_UPSTREAMS[upstream]
        source = "merit.bin.disk_preflight's table of known upstreams"
    else:
        from merit.models.frontend import S3PRLFrontend

        log.info("loading upstream %s to read its layers, size and frame rate", upstream)
        frontend = S3PRLFrontend(upstream, path_or_url=upstream_ckpt, freeze=True)
        num_layers, dims, rate = (frontend.upstream.num_layers, frontend.hidden_size,
                                  frontend.downsample_rate)
        source = f"the loaded upstream {upstream}"
    if layers:
        kept = [int(i) for i in layers.split(",")]
        bad = [i for i in kept if not 0 <= i < num_layers]
        if bad:
            raise ValueError(f"--layers {layers}: {upstream} has hidden states 0..{num_layers - 1}")
        num_layers = len(kept)
    return num_layers, dims, rate, source


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=tuple(STAGES),
                        help="audio: stage 2's noisy WAVs; feats: stage 3's dumped features; "
                             "enhanced: stage 5's enhanced WAVs; enhanced_feats: a cascade's "
                             "dumped features of enhanced speech")
    parser.add_argument("pairs", nargs="+", metavar="DIR",
                        help="<data dir> <output dir> of every set the stage writes")
    parser.add_argument("--target", required=True,
                        help="where the stage writes (--audio_dump or <dumpdir>/<upstream>)")
    parser.add_argument("--force", type=str2bool, default=False,
                        help="go on (exit 0) when the estimate does not fit")
    parser.add_argument("--upstream", default="fbank", help="(enhanced_)feats: the s3prl upstream")
    parser.add_argument("--upstream_ckpt", default=None,
                        help="(enhanced_)feats: its checkpoint, if any")
    parser.add_argument("--layers", default=None,
                        help="(enhanced_)feats: hidden states kept (default all)")
    parser.add_argument("--dtype", default="float16", choices=DUMP_DTYPES,
                        help="(enhanced_)feats: the dumped dtype")
    return parser


def check(args) -> int:
    """Print the estimate; 1 when it does not fit (and not --force), else 0."""
    if len(args.pairs) % 2:
        raise ValueError(f"expected <data dir> <output dir> pairs, got {len(args.pairs)} "
                         f"paths: {' '.join(args.pairs)}")
    sets = [SetSize(Path(d), Path(o)) for d, o in zip(args.pairs[::2], args.pairs[1::2])]
    lengths = {}  # a test set is mixed once per SNR and condition: its headers are read once
    for item in sets:
        if item.data_dir not in lengths:
            lengths[item.data_dir] = read_lengths(item.data_dir)
        item.samples, item.problems = lengths[item.data_dir]
    stage = STAGES[args.kind]
    if args.kind == "audio":
        log.info("%s writes per utterance a 16-bit WAV of the mixture and of the scaled noise, "
                 "and of the clean speech when the mixture is scaled down to avoid clipping",
                 stage)
        sizes = [audio_bytes(item.samples, 3) for item in sets]
    elif args.kind == "enhanced":
        log.info("%s writes per utterance a 16-bit WAV of the enhanced speech", stage)
        sizes = [audio_bytes(item.samples, 1) for item in sets]
    else:
        num_layers, dims, rate, source = feature_layout(args.upstream, args.upstream_ckpt,
                                                        args.layers)
        itemsize = 2 if args.dtype == "float16" else 4
        log.info("%s writes %s features of %d hidden states × %d dimensions × %d bytes (%s) per "
                 "frame of %d samples (from %s)", stage, args.upstream, num_layers, dims, itemsize,
                 args.dtype, rate, source)
        sizes = [feature_bytes(item.samples, num_layers, dims, rate, itemsize) for item in sets]
    total = there = to_write = 0
    for item, size in zip(sets, sizes):
        existing = bytes_under(item.out_dir)
        total, there, to_write = total + size, there + existing, to_write + max(0, size - existing)
        hours = sum(item.samples) / SAMPLE_RATE / 3600
        log.info("  %s -> %s: %d utterances, %.2f h, %s%s", item.data_dir, item.out_dir,
                 len(item.samples), hours, human(size),
                 f" ({human(existing)} already there)" if existing else "")
        if item.problems:
            log.warning("  %s: %d utterance(s) not counted: %s%s", item.data_dir,
                        len(item.problems), item.problems[0],
                        " ..." if len(item.problems) > 1 else "")
    needed = math.ceil(to_write * (1 + MARGIN))
    free, where = free_bytes(Path(args.target))
    if args.kind == "audio":
        log.info("%s writes at most %s (at least %s if no mixture is scaled down)", stage,
                 human(total), human(sum(audio_bytes(s.samples, 2) for s in sets)))
    log.info("%s: %s into %s for %d set(s), %s of it already there; needs %s with the %d %% "
             "margin; free at %s: %s", stage, human(total), args.target, len(sets), human(there),
             human(needed), round(MARGIN * 100), where, human(free))
    if needed <= free:
        return 0
    message = (f"{stage} needs {needed:,} bytes ({human(needed)}, {human(to_write)} to write + "
               f"{round(MARGIN * 100)} %) at {args.target}, but {free:,} bytes ({human(free)}) are "
               f"free there ({where})")
    if args.force:
        log.warning("%s; going on (--force true)", message)
        return 0
    print(f"disk_preflight: error: {message}. Free space there, {REMEDIES[args.kind]}, or "
          f"pass --force true to go on anyway", file=sys.stderr)
    return 1


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s disk_preflight: %(message)s")
    try:
        return check(args)
    except ValueError as err:
        print(f"disk_preflight: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
