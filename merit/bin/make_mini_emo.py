"""Render the shipped mini corpus in four emotion styles, in MSP-Podcast's layout.

    python -m merit.bin.make_mini_emo --downloads downloads --out data/local/mini_emo \\
        --dev_speakers "fr_f1" --test_speakers "it_m1 en_f1" --seed 1 --nj 2
"""
import argparse
import sys
import time

from tqdm import tqdm

from merit.data import mini_emo


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", required=True, help="egs/mini_emo/merit/downloads")
    parser.add_argument("--out", required=True, help="corpus root to write")
    parser.add_argument("--dev_speakers", required=True, help="space-separated speaker ids")
    parser.add_argument("--test_speakers", required=True, help="space-separated speaker ids")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start = time.time()
    bars = []  # made at the first rendered utterance: an up-to-date corpus shows none

    def progress(done):
        if not bars:
            bars.append(tqdm(desc="rendering emotion styles", unit="utt", mininterval=2.0))
        bars[0].update(done - bars[0].n)

    try:
        count, rendered = mini_emo.build(args.downloads, args.out, args.dev_speakers.split(),
                                         args.test_speakers.split(), args.seed, args.nj,
                                         progress=progress)
    except ValueError as err:
        print(f"make_mini_emo: error: {err}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
    if rendered:
        print(f"make_mini_emo: wrote {count} utterances to {args.out} in {time.time() - start:.1f} s",
              file=sys.stderr)
    else:
        print(f"make_mini_emo: {args.out} is up to date ({count} utterances rendered from the "
              "same speech, settings and renderer): kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
