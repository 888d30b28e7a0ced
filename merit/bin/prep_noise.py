"""Build the noise pools data/noise/{train,dev,test_seen,test_unseen}.scp from noise corpora.

    python -m merit.bin.prep_noise --seen crss=folder:/data/CRSS-noise \\
        --seen freesound=fsd50k:/data/FSD50K --unseen dns=dns:/data/DNS-Challenge --out data/noise

    python -m merit.bin.prep_noise --listed mini_emo=downloads/noise/noise.tsv \\
        --listed_root downloads --out data/noise

Seen corpora are split into train/dev/test_seen by a hash of each file's source
recording: its relative path unless --recording_regex (or a DNS chunk name) says
otherwise (see merit/data/noise_pools.py for the rules and the layouts); unseen
corpora go to test_unseen only. Every file is decoded once (--check_audio): an
unreadable, silent or too short one stops the run before anything is written, naming
it, or with --skip_bad true is left out and listed in skipped.tsv. A clip found in
two pools (same decoded samples, or same Freesound id in the names) is kept in the
earliest of train, dev, test_seen, test_unseen only and listed in duplicates.tsv.
Layouts: dns, musan, fsd50k, folder (alias crss, freesound).
A listed corpus is a table (tab-separated, with a header) that gives each file's
pool: columns file, split (train, dev, test) and category (seen, unseen; test noise
goes to test_seen or test_unseen by it); its noise ids are the file names without
extension.
"""
import argparse
import logging
import os
import sys

from espnet2.utils.types import str2bool

from merit.data import noise_pools


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seen", action="append", default=[], metavar="NAME=LAYOUT:PATH",
                        help="a corpus split into train/dev/test_seen (repeatable)")
    parser.add_argument("--unseen", action="append", default=[], metavar="NAME=LAYOUT:PATH",
                        help="a corpus used only in test_unseen (repeatable)")
    parser.add_argument("--listed", action="append", default=[], metavar="NAME=TABLE",
                        help="a corpus whose table gives each file's pool (repeatable)")
    parser.add_argument("--listed_root", default=None, metavar="DIR",
                        help="folder the relative paths of the --listed tables start from "
                             "(default: each table's folder)")
    parser.add_argument("--out", default="data/noise", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the hash split (default: %(default)s)")
    parser.add_argument("--fractions", default="0.8,0.1,0.1",
                        help="train,dev,test_seen shares of each seen corpus "
                             "(default: %(default)s)")
    parser.add_argument("--check_audio", type=str2bool, default=True,
                        help="decode every file: refuse unusable ones, measure hours and "
                             "find copies by their samples (default: %(default)s)")
    parser.add_argument("--skip_bad", type=str2bool, default=False,
                        help="with --check_audio, leave out (count and list) unreadable, "
                             "silent and too short files instead of stopping "
                             "(default: %(default)s)")
    parser.add_argument("--min_noise_seconds", type=float,
                        default=noise_pools.MIN_NOISE_SECONDS,
                        help="with --check_audio, a shorter noise file is unusable "
                             "(default: %(default)s)")
    parser.add_argument("--silence_dbfs", type=float, default=noise_pools.SILENCE_DBFS,
                        help="with --check_audio, a noise file whose RMS lies below this is "
                             "silent, hence unusable; all-zero files always are "
                             "(default: %(default)s)")
    parser.add_argument("--recording_regex", action="append", default=[],
                        metavar="NAME=REGEX",
                        help="seen corpus NAME: the regular expression whose first group "
                             "(searched in a file's relative path) is the file's source "
                             "recording, kept in one pool, e.g. 'crss=^(.*)_[0-9]+\\.wav$' "
                             "or 'crss=^(.*)/' for one folder per recording (repeatable)")
    parser.add_argument("--nj", type=int, default=min(8, os.cpu_count() or 1),
                        help="threads decoding the audio (default: %(default)s)")
    return parser


def parse_regexes(entries) -> dict:
    """``["NAME=REGEX", ...]`` → {NAME: REGEX}."""
    regexes = {}
    for entry in entries:
        name, eq, regex = entry.partition("=")
        if not (eq and name and regex):
            raise ValueError(f"--recording_regex {entry!r}: expected NAME=REGEX, e.g. "
                             f"crss=^(.*)/ for one folder per recording")
        if name in regexes:
            raise ValueError(f"--recording_regex: corpus {name} is given twice")
        regexes[name] = regex
    return regexes


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s prep_noise: %(message)s")
    try:
        seen = [noise_pools.CorpusSpec.parse(text) for text in args.seen]
        unseen = [noise_pools.CorpusSpec.parse(text) for text in args.unseen]
        listed = [noise_pools.ListedSpec.parse(text, args.listed_root) for text in args.listed]
        noise_pools.prepare(seen, unseen, args.out, args.seed, args.fractions,
                            args.check_audio, args.skip_bad, listed, args.min_noise_seconds,
                            args.silence_dbfs, parse_regexes(args.recording_regex), args.nj)
    except (ValueError, OSError) as err:  # OSError: a folder that cannot be listed
        print(f"prep_noise: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
