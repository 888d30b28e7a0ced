"""Small generated corpora for tests: an MSP-Podcast release tree and noise files."""
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
EMO_CODES = ("A", "S", "H", "U", "F", "D", "C", "N", "O", "X")
SPLITS = ("Train", "Development", "Test1", "Test2", "Test3")


def speechlike(seconds: float, f0: float, seed: int, rate: int = RATE, peak: float = 0.5):
    """A harmonic tone with a syllable-rate envelope: deterministic, never silent."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    wav = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 6))
    wav *= 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (peak * wav / np.max(np.abs(wav))).astype(np.float32)


def make_msp_tree(root: Path, n_speakers: int = 6, per_speaker: int = 10):
    """A release-layout tree. Returns the label rows (dicts) written.

    Every EmoClass code and every Split_Set appear; speakers are split-disjoint;
    a few utterances have SpkrID "Unknown".
    """
    audio = root / "Audios"
    audio.mkdir(parents=True)
    (root / "Labels").mkdir()
    rows = []
    for spk in range(1, n_speakers + 1):
        split = SPLITS[(spk - 1) % len(SPLITS)]
        for i in range(per_speaker):
            name = f"MSP-PODCAST_{spk:04d}_{i:04d}.wav"
            sf.write(str(audio / name), speechlike(0.5 + 0.05 * i, 100 + 20 * spk, spk * 100 + i),
                     RATE, subtype="PCM_16")
            rows.append({"FileName": name, "EmoClass": EMO_CODES[(spk + i) % len(EMO_CODES)],
                         "EmoAct": "4.0", "EmoVal": "4.0", "EmoDom": "4.0",
                         "SpkrID": "Unknown" if i == 0 else str(spk),
                         "Gender": "Female" if spk % 2 else "Male", "Split_Set": split})
    write_labels(root, rows)
    return rows


def write_labels(root: Path, rows):
    with open(root / "Labels" / "labels_consensus.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def make_noise_dir(directory: Path, n_files: int = 3, seconds: float = 1.3, seed: int = 7):
    """White-ish and tonal noise files of different lengths."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        wav = rng.standard_normal(int((seconds + 0.4 * i) * RATE)).astype(np.float32) * 0.1
        path = directory / f"noise{i}.wav"
        sf.write(str(path), wav, RATE, subtype="PCM_16")
        paths.append(path)
    return paths
