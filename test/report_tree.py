"""Decoded and scored runs of the tiny model, laid out as stage 6 leaves them, for the
report tests.

Two test sets (the tiny experiment's dev set split by SNR: ``dev_snr0_seen``,
``dev_snr5_seen``) and four runs under ``exp/``:

* ``tiny_seed2``: the tiny model decoded (``merit.bin.merit_inference``), scored
  (``merit.bin.score``) and plotted (``merit.bin.plot_decodes``);
* ``tiny_seed10``: a copy of it whose every prediction is the next class, so a page
  showing it did not take the first seed (lowest N, not first in name order);
* ``ser_only_seed1``: its decodes without SE output, as a system without an SE head;
* ``cascade_seed1``: its SER output with ``enhanced.scp`` naming tiny_seed2's files,
  as a cascade's decode dirs do (``components`` beside them).
"""
import shutil
from pathlib import Path

from merit.bin import merit_inference, plot_decodes, score
from merit.data.datadir import c_sorted, read_kv, write_kv

SETS = {"dev_snr0_seen": "0", "dev_snr5_seen": "5"}
UTTS_PER_SET = 3


def make_sets(tiny_data: Path, data_root: Path) -> None:
    """``data_root/<set>``: the first utterances of the tiny dev set at each SNR."""
    dev = tiny_data / "data" / "dev_noisy"
    snrs = read_kv(dev / "utt2snr")
    for name, snr in SETS.items():
        utts = [u for u in c_sorted(snrs) if snrs[u] == snr][:UTTS_PER_SET]
        for field in ("wav.scp", "spk1.scp", "utt2emo", "utt2snr", "utt2category"):
            table = read_kv(dev / field)
            (data_root / name).mkdir(parents=True, exist_ok=True)
            write_kv(data_root / name / field, {u: table[u] for u in utts})


def score_run(exp: Path, data_root: Path) -> None:
    for name in SETS:
        assert score.main(["--data_dir", str(data_root / name), "--nj", "1",
                           "--decode_dir", str(exp / f"decode_{name}")]) == 0
    assert plot_decodes.main([str(exp), "--data_root", str(data_root)]) == 0


def make_runs(tiny_data: Path, tiny_model: Path, root: Path) -> Path:
    """The data sets under ``root/data`` and the runs under ``root/exp``; returns
    ``root/exp``."""
    data_root, exp_root = root / "data", root / "exp"
    make_sets(tiny_data, data_root)
    tiny = exp_root / "tiny_seed2"
    argv = ["--model_dir", str(tiny_model)]
    for name in SETS:
        argv += ["--data_dir", str(data_root / name), "--out_dir", str(tiny / f"decode_{name}"),
                 "--feats_dir", str(tiny_data / "dump" / "dev_noisy")]
    assert merit_inference.main(argv) == 0
    score_run(tiny, data_root)

    other = exp_root / "tiny_seed10"
    shutil.copytree(tiny, other)
    for name in SETS:
        hyp = other / f"decode_{name}" / "utt2emo_hyp"
        classes = (other / f"decode_{name}" / "classes").read_text().split()
        write_kv(hyp, {utt: classes[(classes.index(emo) + 1) % len(classes)]
                       for utt, emo in read_kv(hyp).items()})

    ser_only = exp_root / "ser_only_seed1"
    for name in SETS:
        decode = ser_only / f"decode_{name}"
        decode.mkdir(parents=True)
        for field in ("classes", "utt2emo_hyp", "utt2posteriors", "utt2expert_usage_ser"):
            shutil.copy(tiny / f"decode_{name}" / field, decode / field)
    score_run(ser_only, data_root)

    cascade = exp_root / "cascade_seed1"
    cascade.mkdir()
    (cascade / "components").write_text(f"enhancer: {tiny}\nclassifier: {ser_only}\n")
    for name in SETS:
        decode = cascade / f"decode_{name}"
        decode.mkdir()
        for field in ("classes", "utt2emo_hyp", "utt2posteriors", "enhanced.scp"):
            shutil.copy(tiny / f"decode_{name}" / field, decode / field)
    score_run(cascade, data_root)
    return exp_root
