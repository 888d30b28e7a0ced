"""Pictures of a system's decodes, written next to its scores (recipe stage 6).

    python -m merit.bin.plot_decodes exp/sparse_merit_fbank [--data_root data] [--num_utts 3]

* ``decode_<set>/spectrograms.png``: noisy / enhanced / clean log spectrograms of the
  first ``--num_utts`` utterances of each set (when the system enhances);
* ``expert_usage.png``: per task, the mean fraction of frames each expert received,
  one row per decoded set (SNR × condition).
"""
import argparse
import os
import re
import sys
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from merit.data.audio_io import SAMPLE_RATE, read_audio
from merit.data.datadir import c_sorted, read_kv


def save(fig: Figure, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.png")
    FigureCanvasAgg(fig).print_png(str(tmp))
    os.replace(tmp, path)


def log_spectrogram(wav: np.ndarray, n_fft: int = 400, hop: int = 160) -> np.ndarray:
    """(freq, frames) log10 power in dB, Hamming window."""
    frames = 1 + max(0, len(wav) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(wav[np.minimum(index, len(wav) - 1)] * np.hamming(n_fft), axis=1))
    return 20 * np.log10(spec.T + 1e-6)


def plot_spectrograms(data_dir: Path, decode_dir: Path, num_utts: int) -> bool:
    enhanced_scp = decode_dir / "enhanced.scp"
    if not enhanced_scp.is_file():
        return False
    enhanced, noisy, clean = (read_kv(enhanced_scp), read_kv(data_dir / "wav.scp"),
                              read_kv(data_dir / "spk1.scp"))
    utts = c_sorted(enhanced)[:num_utts]
    fig = Figure(figsize=(4 * len(utts), 7), constrained_layout=True)
    axes = fig.subplots(3, len(utts), squeeze=False)
    for col, utt in enumerate(utts):
        for row, (name, scp) in enumerate((("noisy", noisy), ("enhanced", enhanced), ("clean", clean))):
            spec = log_spectrogram(read_audio(scp[utt]))
            ax = axes[row][col]
            ax.imshow(spec, origin="lower", aspect="auto", vmin=spec.max() - 80, vmax=spec.max(),
                      extent=(0, spec.shape[1] * 0.01, 0, SAMPLE_RATE / 2000), cmap="magma")
            ax.set_title(f"{name}: {utt}", fontsize=8)
            ax.set_xlabel("s", fontsize=7)
            ax.set_ylabel("kHz", fontsize=7)
    save(fig, decode_dir / "spectrograms.png")
    return True


def condition_then_snr(decode_dir: Path):
    """Sort key: test sets named <test>_snr<S>_<condition> by condition, then SNR ascending."""
    match = re.match(r"decode_(.*)_snr(-?[0-9.]+)_(\w+)$", decode_dir.name)
    if match is None:
        return (decode_dir.name, "", 0.0)
    return (match.group(1), match.group(3), float(match.group(2)))


def plot_expert_usage(exp_dir: Path) -> Optional[Path]:
    """Write expert_usage.png; None when no decode has expert usage (no gated experts)."""
    decodes = sorted((p for p in exp_dir.glob("decode_*") if p.is_dir()), key=condition_then_snr)
    tasks = sorted({f.name[len("utt2expert_usage_"):] for d in decodes
                    for f in d.glob("utt2expert_usage_*")})
    if not tasks:
        return None
    fig = Figure(figsize=(3 + 2.5 * len(tasks), 1 + 0.35 * len(decodes)), constrained_layout=True)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        rows, names = [], []
        for d in decodes:
            path = d / f"utt2expert_usage_{task}"
            if path.is_file():
                usage = np.array([[float(x) for x in v.split()] for v in read_kv(path).values()])
                rows.append(usage.mean(axis=0))
                names.append(d.name[len("decode_"):])
        matrix = np.array(rows)
        ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.5 else "black")
        ax.set_xticks(range(matrix.shape[1]), [f"expert {j}" for j in range(matrix.shape[1])], fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{task}: fraction of frames", fontsize=9)
    out = exp_dir / "expert_usage.png"
    save(fig, out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir")
    parser.add_argument("--data_root", default="data", help="where data/<set> directories are")
    parser.add_argument("--num_utts", type=int, default=3)
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    try:
        for decode_dir in sorted(exp_dir.glob("decode_*")):
            data_dir = Path(args.data_root) / decode_dir.name[len("decode_"):]
            if data_dir.is_dir() and plot_spectrograms(data_dir, decode_dir, args.num_utts):
                print(f"plot_decodes: wrote {decode_dir / 'spectrograms.png'}", file=sys.stderr)
        usage_png = plot_expert_usage(exp_dir)
        print(f"plot_decodes: wrote {usage_png}" if usage_png else
              f"plot_decodes: {exp_dir}: no decode_*/utt2expert_usage_* (no gated experts); "
              "no expert_usage.png", file=sys.stderr)
    except ValueError as err:
        print(f"plot_decodes: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
