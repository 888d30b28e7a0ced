"""Dump SSL hidden states of a data directory's audio (recipe stage 3).

    python -m merit.bin.dump_ssl --data_dir data/train_noisy \\
        --out_dir dump/wavlm_large/train_noisy --upstream wavlm_large

``--data_dir``/``--out_dir`` may be repeated (pairs, in order): one process then
loads the upstream once for all the sets.

Each utterance's ``(T, L, D)`` array: T frames, L hidden states (all of the
upstream's, or ``--layers``), D dimensions, float16 by default. Each job part
appends them to one Kaldi ark, ``feats.ark``, as kaldiio's NPY records
(``write_function="numpy"``: a Kaldi matrix would be 2-D float32, twice the size
and without the layer axis), so a set is a few large files rather than one per
utterance, which cluster file systems handle badly. ``feats.scp`` lists
``<utt> <part>/feats.ark:<offset>`` (ESPnet data type ``kaldi_ark``; ESPnet's loader
returns the arrays as stored), ``feats_shape`` lists ``<utt> T,L,D`` and
``feats_info.yaml`` the upstream, layers, sizes and frame hop. Dumps made before
the shards list one ``.npy`` per utterance; ``merit.models.frontend.load_dumped``
and the recipe (data type ``npy``) still read them.

Split work: ``--num_jobs N --job J`` writes part J into ``job{J}of{N}/``;
``--merge true`` checks every part and writes the lists. A part that finished
with the same settings from the same audio (``merit.utils.fingerprint`` of the data
dir) is not redone, and inside an unfinished one the utterances already written
are kept, so a killed dump resumes where it stopped: an utterance enters the part's
``feats.scp`` only after its record is flushed to the ark, and a restart truncates
the ark after the last listed record that is whole (``complete_records``).
WavLM Large, 25 layers, float16: about 9.2 GB per hour of audio.
"""
import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import kaldiio
import numpy as np
import yaml
from espnet2.utils.types import str2bool
from tqdm import tqdm

from merit.data.audio_io import SAMPLE_RATE, read_audio
from merit.data.datadir import read_kv, write_kv
from merit.data.dump_dtypes import DUMP_DTYPES
from merit.utils.fingerprint import fingerprint
from merit.utils.job_parts import (check_job, finished_parts, is_done, job_utterances, mark_done,
                                   part_dir)

log = logging.getLogger("dump_ssl")
ARK, SCP = "feats.ark", "feats.scp"


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, action="append",
                        help="data directory with wav.scp (repeatable)")
    parser.add_argument("--out_dir", required=True, action="append",
                        help="dump/<upstream>/<set>, one per --data_dir")
    parser.add_argument("--upstream", default="fbank", help="s3prl upstream name")
    parser.add_argument("--upstream_ckpt", default=None,
                        help="checkpoint file or URL: for *_local upstreams, or loaded "
                        "instead of the download of a named one (wavlm_large)")
    parser.add_argument("--layers", default=None, help="comma-separated hidden states, default all")
    parser.add_argument("--dtype", default="float16", choices=DUMP_DTYPES)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first CUDA device")
    parser.add_argument("--num_jobs", type=int, default=0)
    parser.add_argument("--job", type=int, default=0)
    parser.add_argument("--merge", type=str2bool, default=False)
    return parser


def settings(args, data_dir) -> dict:
    """What the dumped numbers depend on, the audio included (its fingerprint), and the
    file format; a part made with other settings, from other audio or in another format
    (one ``.npy`` per utterance, before the ark shards) is redone."""
    return {"upstream": args.upstream, "upstream_ckpt": args.upstream_ckpt,
            "layers": args.layers, "dtype": args.dtype, "format": "ark",
            "data_dir": str(Path(data_dir).resolve()), "input": fingerprint(data_dir)}


def load_frontend(args):
    from merit.models.frontend import S3PRLFrontend

    device = "cuda" if args.ngpu > 0 else "cpu"
    layers = [int(i) for i in args.layers.split(",")] if args.layers else None
    return S3PRLFrontend(args.upstream, path_or_url=args.upstream_ckpt, freeze=True,
                         layers=layers).to(device).eval()


def read_record(fd, utt: str, start: int, size: int) -> Optional[Tuple[int, tuple]]:
    """(end, shape) of ``utt``'s record at byte ``start`` of an ark of ``size`` bytes
    (``<utt> NPY<length header><npy bytes>``, as ``kaldiio.save_ark`` writes with
    ``write_function="numpy"``), or None when the bytes there are not that whole record.
    Only the headers are read."""
    key = f"{utt} ".encode()
    fd.seek(start)
    head = fd.read(len(key) + 4)
    if len(head) < len(key) + 4 or head[:-1] != key + b"NPY":
        return None
    length_bytes = fd.read(head[-1])
    end = start + len(head) + len(length_bytes) + int.from_bytes(length_bytes, "little")
    if len(length_bytes) != head[-1] or end > size:
        return None
    try:
        version = np.lib.format.read_magic(fd)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(fd) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(fd))
    except ValueError:
        return None
    if fd.tell() + int(np.prod(shape)) * dtype.itemsize != end:
        return None
    return end, shape


def complete_records(part: Path) -> Dict[str, tuple]:
    """``{utt: shape}`` of the records a killed dump left whole in ``part/feats.ark``,
    in the order of the part's ``feats.scp``; the ark is truncated after the last of them
    and the scp rewritten to list just those, ready to be appended to.

    A dump killed while writing leaves at most a partial last scp line and a record
    (partial or whole) that no line lists yet; a listed record that is not whole (the
    machine, not the process, went down before the file system wrote it) ends the kept
    ones as well. Each kept record must start where the one before ended."""
    ark, scp = part / ARK, part / SCP
    lines = scp.read_text(encoding="utf-8").split("\n")[:-1] if scp.is_file() else []
    kept, offsets, end = {}, {}, 0
    if ark.is_file():
        size = ark.stat().st_size
        with open(ark, "rb") as fd:
            for line in lines:
                utt, _, where = line.partition(" ")
                offset = end + len(f"{utt} ".encode())
                if utt in kept or where.rpartition(":")[2] != str(offset):
                    break
                record = read_record(fd, utt, end, size)
                if record is None:
                    break
                end, kept[utt] = record
                offsets[utt] = offset
        os.truncate(ark, end)
    ark_path = ark.resolve()
    with open(scp.with_suffix(".tmp"), "w", encoding="utf-8") as f:
        f.writelines(f"{utt} {ark_path}:{offset}\n" for utt, offset in offsets.items())
    os.replace(scp.with_suffix(".tmp"), scp)
    return kept


def append_record(ark_fd, scp_fd, utt: str, feats: np.ndarray) -> None:
    """Append ``utt``'s record to the open ark, then its line to the open scp, so that the
    scp never lists a record whose bytes could still be lost."""
    offset = ark_fd.tell() + len(f"{utt} ".encode())
    kaldiio.save_ark(ark_fd, {utt: feats}, write_function="numpy")
    ark_fd.flush()
    os.fsync(ark_fd.fileno())
    scp_fd.write(f"{utt} {Path(ark_fd.name).resolve()}:{offset}\n")
    scp_fd.flush()


def dump_part(args, frontend, data_dir, utts, wav_scp, part: Path) -> None:
    import torch

    wanted = settings(args, data_dir)
    config = part / "settings.yaml"
    if config.is_file() and yaml.safe_load(config.read_text()) != wanted:
        log.info("%s was made with other settings, from other audio or in another format: "
                 "redoing it", part)
        for stale in part.iterdir():
            stale.unlink()
    if is_done(part):
        log.info("%s is complete: nothing to do", part)
        return
    part.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(wanted))
    device = "cuda" if args.ngpu > 0 else "cpu"
    dtype = np.dtype(args.dtype)
    shapes = complete_records(part)
    reused = len(shapes)
    audio_seconds, compute_seconds = 0.0, 0.0
    with open(part / ARK, "ab") as ark_fd, open(part / SCP, "a", encoding="utf-8") as scp_fd:
        for utt in tqdm(utts, desc=f"{part.parent.name} {part.name}", mininterval=5.0,
                        file=sys.stdout):
            if utt in shapes:
                continue
            wav = torch.from_numpy(read_audio(wav_scp[utt])).to(device)
            start = time.perf_counter()
            with torch.no_grad():
                hidden, lengths = frontend(wav[None], torch.tensor([wav.numel()], device=device))
            feats = hidden[0, : int(lengths[0])].cpu().numpy().astype(dtype)
            compute_seconds += time.perf_counter() - start
            audio_seconds += wav.numel() / SAMPLE_RATE
            append_record(ark_fd, scp_fd, utt, feats)
            shapes[utt] = feats.shape
    write_kv(part / "feats_shape", {utt: ",".join(str(n) for n in shapes[utt]) for utt in utts})
    info = {"upstream": args.upstream, "num_layers": frontend.num_layers,
            "hidden_size": frontend.hidden_size, "downsample_rate": frontend.downsample_rate,
            "frame_offset": frontend.frame_offset, "layers": frontend.layers, "dtype": args.dtype}
    (part / "feats_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    mark_done(part)
    rtf = compute_seconds / audio_seconds if audio_seconds else float("nan")
    log.info("%s: %d utterances (%d already there), %.1f s of audio, real-time factor %.4f",
             part, len(utts), reused, audio_seconds, rtf)


def merge(out_dir: Path, num_jobs: int) -> None:
    feats_scp, feats_shape, infos = {}, {}, []
    for part in finished_parts(out_dir, num_jobs):
        feats_scp.update(read_kv(part / "feats.scp"))
        feats_shape.update(read_kv(part / "feats_shape"))
        infos.append((part / "feats_info.yaml").read_text())
    if len(set(infos)) != 1:
        raise ValueError(f"{out_dir}: parts disagree on upstream settings; remove them and redo")
    for name, table in (("feats_shape", feats_shape), ("feats.scp", feats_scp)):
        write_kv(out_dir / f"{name}.tmp", table)
    (out_dir / "feats_info.yaml").write_text(infos[0])
    os.replace(out_dir / "feats_shape.tmp", out_dir / "feats_shape")
    os.replace(out_dir / "feats.scp.tmp", out_dir / "feats.scp")  # last: marks completion
    log.info("%s: %d utterances, %s", out_dir, len(feats_scp), infos[0].replace("\n", " "))


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dump_ssl: %(message)s")
    try:
        if len(args.data_dir) != len(args.out_dir):
            raise ValueError(f"{len(args.data_dir)} --data_dir but {len(args.out_dir)} --out_dir")
        if args.merge:
            for out_dir in args.out_dir:
                merge(Path(out_dir), args.num_jobs)
            return 0
        job, num_jobs = args.job or 1, args.num_jobs or 1
        check_job(job, num_jobs)
        frontend = load_frontend(args)
        for data_dir, out_dir in zip(args.data_dir, args.out_dir):
            wav_scp = read_kv(Path(data_dir) / "wav.scp")
            utts = job_utterances(wav_scp, job, num_jobs)
            part = part_dir(Path(out_dir), job, num_jobs)
            dump_part(args, frontend, data_dir, utts, wav_scp, part)
            if not args.num_jobs:
                merge(Path(out_dir), 1)
    except ValueError as err:
        print(f"dump_ssl: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
