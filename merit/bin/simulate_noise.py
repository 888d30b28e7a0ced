"""Mix a clean data directory with noise at given SNRs → a noisy data directory.

    python -m merit.bin.simulate_noise --clean_dir data/train --noise data/noise/train.scp \\
        --category seen --snrs "-5 0 5 10" --out_dir data/train_noisy \\
        --audio_dir dump/audio/train_noisy --seed 1

Per utterance: one noise file drawn from the pool, a random circular shift, tiled
or cut to the utterance's length, scaled on whole-utterance power to an SNR drawn
from ``--snrs``. If the mixture would peak at 0.99 or more, mixture, clean and
noise are scaled down together and the gain is recorded in ``utt2gain``.

Every random choice comes from a generator seeded with (``--seed``, utterance id),
so the output does not depend on how the work is split: ``--num_jobs N --job J``
(J = 1..N) does every N-th utterance and writes a part, ``--merge true`` then
joins the N parts into ``--out_dir`` and prints a summary line. Without
``--num_jobs`` everything happens in one process.

Output data dir: ``wav.scp`` (noisy), ``spk1.scp`` (clean reference at the same
gain), ``noise1.scp`` (the scaled noise), ``utt2snr``, ``utt2noise`` (noise id),
``utt2category`` (seen|unseen), ``utt2gain``, ``utt2num_samples``, and
``utt2spk``/``spk2utt`` plus every other ``utt2*`` file of the clean dir.
"""
import argparse
import logging
import shutil
import sys
from collections import Counter
from pathlib import Path

from espnet2.utils.types import str2bool
from tqdm import tqdm

from merit.data.audio_io import (SAMPLE_RATE, AudioFileError, read_audio,
                                 read_audio_cached, write_audio)
from merit.data.datadir import read_kv, write_datadir, write_kv
from merit.data.noise_mixing import draw_mixture, load_pool, parse_snrs, utterance_rng
from merit.utils.job_parts import finished_parts, job_utterances, mark_done, part_dir

log = logging.getLogger("simulate_noise")
OWN_FILES = ("wav.scp", "spk1.scp", "noise1.scp", "utt2snr", "utt2noise", "utt2category",
             "utt2gain", "utt2num_samples")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean_dir", required=True, help="clean data directory (wav.scp, utt2spk)")
    parser.add_argument("--noise", required=True,
                        help="noise pool: an scp file (<noise-id> <path>) or a directory of audio")
    parser.add_argument("--category", required=True, choices=("seen", "unseen"),
                        help="written to utt2category")
    parser.add_argument("--snrs", required=True, help='SNRs in dB to draw from, e.g. "-5 0 5 10"')
    parser.add_argument("--out_dir", required=True, help="noisy data directory to write")
    parser.add_argument("--audio_dir", required=True, help="where noisy/noise/clean wavs go")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--num_jobs", type=int, default=0, help="split the work in N parts")
    parser.add_argument("--job", type=int, default=0, help="which part to do (1..N)")
    parser.add_argument("--merge", type=str2bool, default=False,
                        help="join the --num_jobs parts into --out_dir")
    return parser


def simulate(utts, wav_scp, pool, snrs, audio_dir: Path, seed: int, category: str, desc: str):
    """Mix each utterance; returns the per-utterance files of the noisy set."""
    noise_ids = sorted(pool)
    out = {name: {} for name in OWN_FILES}
    for utt in tqdm(utts, desc=desc, mininterval=2.0, file=sys.stdout):
        clean_path = wav_scp[utt]
        clean = read_audio(clean_path)
        try:
            draw = draw_mixture(utterance_rng(utt, seed), clean, noise_ids, pool, snrs,
                                read_audio_cached)
        except AudioFileError:
            raise  # a broken noise file: its path leads the message
        except ValueError as err:
            raise ValueError(f"utterance {utt} ({clean_path}) {err}") from err
        noise_id, snr, mix = draw.noise_id, draw.snr, draw.mixture
        noisy_path = audio_dir / "noisy" / f"{utt}.wav"
        noise_path = audio_dir / "noise" / f"{utt}.wav"
        write_audio(noisy_path, mix.noisy)
        write_audio(noise_path, mix.noise)
        if mix.gain != 1.0:
            clean_path = audio_dir / "clean" / f"{utt}.wav"
            write_audio(clean_path, mix.clean)
        out["wav.scp"][utt] = noisy_path.resolve()
        out["spk1.scp"][utt] = Path(clean_path).resolve()
        out["noise1.scp"][utt] = noise_path.resolve()
        out["utt2snr"][utt] = f"{snr:g}"
        out["utt2noise"][utt] = noise_id
        out["utt2category"][utt] = category
        out["utt2gain"][utt] = f"{mix.gain:.6f}"
        out["utt2num_samples"][utt] = clean.size
    return out


def parts_root(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".parts")


def summary(out_dir: Path, files: dict) -> str:
    hours = sum(int(n) for n in files["utt2num_samples"].values()) / SAMPLE_RATE / 3600
    snr_hist = Counter(float(s) for s in files["utt2snr"].values())
    scaled = sum(float(g) != 1.0 for g in files["utt2gain"].values())
    return (f"{out_dir}: {len(files['wav.scp'])} utterances, {hours:.3f} h, SNR dB "
            + " ".join(f"{s:g}:{snr_hist[s]}" for s in sorted(snr_hist))
            + f", {scaled} scaled down to avoid clipping")


def write_set(clean_dir: Path, out_dir: Path, own: dict) -> None:
    """The noisy set: its own files plus the clean dir's utt2* files for its utterances."""
    files = dict(own)
    for path in sorted(clean_dir.glob("utt2*")):
        if path.name not in files:
            table = read_kv(path)
            files[path.name] = {u: table[u] for u in own["wav.scp"]}
    write_datadir(out_dir, files)


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulate_noise: %(message)s")
    try:
        run(args)
    except ValueError as err:
        print(f"simulate_noise: error: {err}", file=sys.stderr)
        return 1
    return 0


def run(args):
    clean_dir, out_dir = Path(args.clean_dir), Path(args.out_dir)
    if args.merge:
        merged = {name: {} for name in OWN_FILES}
        for part in finished_parts(parts_root(out_dir), args.num_jobs):
            for name in OWN_FILES:
                merged[name].update(read_kv(part / name))
        write_set(clean_dir, out_dir, merged)
        shutil.rmtree(parts_root(out_dir))
        log.info(summary(out_dir, merged))
        return
    wav_scp = read_kv(clean_dir / "wav.scp")
    if not wav_scp:
        raise ValueError(f"{clean_dir / 'wav.scp'}: no utterances")
    utts = job_utterances(wav_scp, args.job or 1, args.num_jobs or 1)
    snrs, pool = parse_snrs(args.snrs), load_pool(args.noise)
    own = simulate(utts, wav_scp, pool, snrs, Path(args.audio_dir), args.seed, args.category,
                   desc=f"{out_dir.name}" + (f" part {args.job}/{args.num_jobs}" if args.num_jobs else ""))
    if args.num_jobs:
        part = part_dir(parts_root(out_dir), args.job, args.num_jobs)
        if part.exists():
            shutil.rmtree(part)
        part.mkdir(parents=True)
        for name, table in own.items():
            write_kv(part / name, table)
        mark_done(part)
        log.info("%s: part %d/%d: %d utterances", out_dir, args.job, args.num_jobs, len(utts))
    else:
        write_set(clean_dir, out_dir, own)
        log.info(summary(out_dir, own))


if __name__ == "__main__":
    sys.exit(main())
