"""Enhance one file and recognise its emotion with a trained MERIT model.

    merit-infer --model_dir exp/sparse_merit_fbank noisy.wav --out enhanced.wav

Prints the emotion and the probability of each class.
"""
import argparse
import sys

from merit.data.audio_io import read_audio, write_audio


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", help="input audio (any rate; converted to 16 kHz mono)")
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="default: the config's first best_model_criterion, "
                             "e.g. valid.loss.best.pth (se_only, the mini default)")
    parser.add_argument("--out", default=None, help="where to write the enhanced audio")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min_duration", type=float, default=None,
                        help="shortest input accepted, in seconds (default: "
                             "merit.inference.MIN_INPUT_SECONDS, 0.25)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    from merit.inference import MIN_INPUT_SECONDS, Speech2Merit, check_input_length

    try:
        noisy = read_audio(args.audio, resample=True)
        # before the model is loaded: a too-short input is known at once
        check_input_length(noisy, MIN_INPUT_SECONDS if args.min_duration is None
                           else args.min_duration, name=args.audio)
        speech2merit = Speech2Merit(args.model_dir, args.checkpoint, device=args.device)
        result = speech2merit(noisy)
    except (ValueError, FileNotFoundError) as err:
        print(f"merit-infer: error: {err}", file=sys.stderr)
        return 1
    if result.posteriors is not None:
        best = int(result.posteriors.argmax())
        probs = " ".join(f"{c}={p:.3f}" for c, p in zip(speech2merit.classes, result.posteriors))
        print(f"{args.audio}: emotion {speech2merit.classes[best]} ({probs})")
    if result.enhanced is not None and args.out:
        write_audio(args.out, result.enhanced)
        print(f"{args.audio}: enhanced audio written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
