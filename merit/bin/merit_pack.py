"""Pack a trained model into one zip to share: config, checkpoint, classes, upstream
record, model card (README.md) and meta.yaml, in the layout of ESPnet's packed models.

    merit-pack exp/sparse_merit_fbank_seed1 model.zip
    merit-pack exp/sparse_merit_wavlm_local model.zip --include_upstream

The checkpoint is the one kept for the config's first best_model_criterion unless
``--checkpoint`` names another file of the exp dir. Load the pack with
``Speech2Merit.from_pretrained("model.zip")``. See ``merit.pack`` for the layout.
"""
import argparse
import sys
import zipfile

import yaml

from merit.pack import META, pack


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", help="a trained model dir (exp/<run>, with config.yaml)")
    parser.add_argument("out_zip", help="the pack to write (.zip)")
    parser.add_argument("--checkpoint", default=None,
                        help="a checkpoint file of exp_dir to pack (default: the one of the "
                             "config's first best_model_criterion, e.g. valid.macro_f1.best.pth)")
    parser.add_argument("--include_upstream", action="store_true",
                        help="pack the local upstream checkpoint (frontend_conf.path_or_url) "
                             "too; an error when the config names none (a hub upstream such as "
                             "wavlm_large or fbank: the model card says which one a user needs)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        out = pack(args.exp_dir, args.out_zip, checkpoint=args.checkpoint,
                   include_upstream=args.include_upstream)
    except (ValueError, FileNotFoundError) as err:
        print(f"merit-pack: error: {err}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(out) as archive:
        infos = archive.infolist()
        upstream = yaml.safe_load(archive.read(META))["upstream"]
    size = sum(info.file_size for info in infos) / 1e6
    print(f"merit-pack: wrote {out} ({len(infos)} files, {size:.1f} MB): "
          + ", ".join(info.filename for info in infos))
    print(f"merit-pack: the model needs {upstream['requires']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
