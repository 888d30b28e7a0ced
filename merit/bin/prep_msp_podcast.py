"""Prepare Kaldi-style data directories from an MSP-Podcast release.

    python -m merit.bin.prep_msp_podcast --corpus /data/MSP-Podcast --out data
"""
import argparse
import logging
import sys

from espnet2.utils.types import str2bool

from merit.data import msp_podcast


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="release root (Audios/, Labels/)")
    parser.add_argument("--out", required=True, help="where data/<set>/ directories go")
    parser.add_argument("--classes", default="A,S,H,N",
                        help="comma-separated EmoClass codes to keep (default: %(default)s)")
    parser.add_argument("--skip_missing", type=str2bool, default=False,
                        help="skip (and count) listed files that are missing, unreadable, empty or "
                             "truncated instead of stopping (default: %(default)s)")
    parser.add_argument("--min_duration", type=float, default=msp_podcast.MIN_DURATION,
                        help="seconds; shorter utterances are out of bounds (default: %(default)s)")
    parser.add_argument("--max_duration", type=float, default=msp_podcast.MAX_DURATION,
                        help="seconds; longer utterances are out of bounds (default: %(default)s)")
    parser.add_argument("--duration_action", choices=msp_podcast.DURATION_ACTIONS, default="stop",
                        help="what utterances out of bounds do: stop the prep naming them, "
                             "skip them (counted), or warn and keep them (default: %(default)s)")
    parser.add_argument("--suffix", default="",
                        help="appended to the set names, e.g. _8class: train_8class, ...")
    parser.add_argument("--resample_dir", default=None,
                        help="where 16 kHz mono copies of other audio go "
                             "(default: <out>/local/audio_16k)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s prep_msp_podcast: %(message)s")
    try:
        classes = msp_podcast.parse_classes(args.classes)
        msp_podcast.prepare(args.corpus, args.out, classes, args.skip_missing, args.resample_dir,
                            args.suffix, min_duration=args.min_duration,
                            max_duration=args.max_duration, duration_action=args.duration_action)
    except (msp_podcast.CorpusError, ValueError) as err:
        print(f"prep_msp_podcast: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
