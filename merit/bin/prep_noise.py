"""Build the noise pools data/noise/{train,dev,test_seen,test_unseen}.scp from noise corpora.

    python -m merit.bin.prep_noise --seen crss=folder:/data/CRSS-noise \\
        --seen freesound=fsd50k:/data/FSD50K --unseen dns=dns:/data/DNS-Challenge --out data/noise

    python -m merit.bin.prep_noise --listed mini_emo=downloads/noise/noise.tsv \\
        --listed_root downloads --out data/noise

Seen corpora are split into train/dev/test_seen by a hash of each file's relative
path (see merit/data/noise_pools.py for the rule and the layouts); unseen corpora
go to test_unseen only. Layouts: dns, musan, fsd50k, folder (alias crss, freesound).
A listed corpus is a table (tab-separated, with a header) that gives each file's
pool: columns file, split (train, dev, test) and category (seen, unseen; test noise
goes to test_seen or test_unseen by it); its noise ids are the file names without
extension.
"""
import argparse
import logging
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
                        help="open every file with soundfile (and measure hours) "
                             "(default: %(default)s)")
    parser.add_argument("--skip_bad", type=str2bool, default=False,
                        help="with --check_audio, skip (and count) unreadable files instead "
                             "of stopping (default: %(default)s)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s prep_noise: %(message)s")
    try:
        seen = [noise_pools.CorpusSpec.parse(text) for text in args.seen]
        unseen = [noise_pools.CorpusSpec.parse(text) for text in args.unseen]
        listed = [noise_pools.ListedSpec.parse(text, args.listed_root) for text in args.listed]
        noise_pools.prepare(seen, unseen, args.out, args.seed, args.fractions,
                            args.check_audio, args.skip_bad, listed)
    except (ValueError, OSError) as err:  # OSError: a folder that cannot be listed
        print(f"prep_noise: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
