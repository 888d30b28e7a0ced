"""Stage 1 at MSP-Podcast's size: a release-layout tree with 100,000 label rows goes
through the data prep, 20,000 noise files through the noise-pool listing, each in
bounded time and memory; the job split of stages 2, 3 and 5 deals 100,000 utterances
to 32 jobs, each once, evenly.

The audio stays small: the 100,000 FileNames are hard links to 200 short WAVs (the
prep reads headers only, so links cost what files would), and the noise files hold
20 ms of distinct noise each (the listing decodes every file and compares their
samples, so they must differ). The bounds are those stated in
egs/msp_podcast/merit/README.md ("Planning a full run"), with headroom over what the
2-core development machine measured (printed by this test: pytest -s).
"""
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import EMO_CODES, SPLITS, speechlike, write_labels
from recipe_tree import REPO
from merit.data.datadir import read_kv
from merit.utils.job_parts import check_job, job_utterances
from merit.utils.peak_memory import run_measured

ROWS = 100_000
NOISE_FILES = 20_000
PER_SPEAKER = 60
# README "Planning a full run": seconds and peak resident memory of each step
PREP_BOUNDS = (60.0, 1 << 30)
NOISE_BOUNDS = (30.0, 1 << 30)


def make_large_msp_tree(root: Path, rows: int = ROWS, sources: int = 200) -> None:
    """A release tree of ``rows`` label rows (every EmoClass code and Split_Set, 60
    utterances per speaker, speakers split-disjoint) whose audio files are hard links
    to ``sources`` WAVs of 0.55-0.74 s."""
    audio = root / "Audios"
    audio.mkdir(parents=True)
    (root / "Labels").mkdir()
    originals = []
    for i in range(sources):
        path = root / f"source_{i:03d}.wav"
        sf.write(str(path), speechlike(0.55 + 0.01 * (i % 20), 100 + i, i), 16000, subtype="PCM_16")
        originals.append(path)
    labels = []
    for k in range(rows):
        spk = k // PER_SPEAKER + 1
        name = f"MSP-PODCAST_{spk:04d}_{k % PER_SPEAKER:04d}.wav"
        os.link(originals[k % sources], audio / name)
        labels.append({"FileName": name, "EmoClass": EMO_CODES[k % len(EMO_CODES)],
                       "EmoAct": "4.0", "EmoVal": "4.0", "EmoDom": "4.0", "SpkrID": str(spk),
                       "Gender": "Female" if spk % 2 else "Male",
                       "Split_Set": SPLITS[spk % len(SPLITS)]})
    write_labels(root, labels)


def make_noise_folders(root: Path, files: int = NOISE_FILES) -> None:
    """``files`` WAVs of 20 ms of distinct noise, 10 per recording folder, four fifths
    under seen/ and one fifth under unseen/ (written as bytes: soundfile per file
    would take most of the test's time)."""
    samples = 320
    header = (b"RIFF" + struct.pack("<I", 36 + 2 * samples) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
              + b"data" + struct.pack("<I", 2 * samples))
    noise = (np.random.default_rng(0).standard_normal((files, samples)) * 3000).astype("<i2")
    for k in range(files):
        folder = root / ("seen" if k % 5 else "unseen") / f"rec{k // 10:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"clip{k:06d}.wav").write_bytes(header + noise[k].tobytes())


def measured(args, cwd):
    """Run ``python -m ...`` args; (exit status, output, wall seconds, peak RSS bytes)."""
    run = run_measured(args[1], args[2:], cwd=cwd)
    return run.status, run.output, run.seconds, run.peak_bytes


def test_msp_podcast_size_prep_noise_listing_and_job_split(tmp_path):
    corpus = tmp_path / "MSP-Podcast"
    start = time.perf_counter()
    make_large_msp_tree(corpus)
    make_noise_folders(tmp_path / "noise")
    print(f"\nfixture: {ROWS} label rows, {NOISE_FILES} noise files in "
          f"{time.perf_counter() - start:.1f} s")

    # every row kept (all ten classes): a header read for each of the 100,000 files
    status, output, seconds, rss = measured(
        ["-m", "merit.bin.prep_msp_podcast", "--corpus", corpus, "--out", tmp_path / "data",
         "--classes", ",".join(EMO_CODES)], cwd=tmp_path)
    print(f"prep_msp_podcast, {ROWS} rows: {seconds:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    assert status == 0, output[-2000:]
    sets = sorted(p for p in (tmp_path / "data").iterdir() if p.name != "local")
    assert [p.name for p in sets] == ["dev", "test1", "test2", "test3", "train"]
    utts = [utt for data in sets for utt in read_kv(data / "wav.scp")]
    assert len(utts) == len(set(utts)) == ROWS
    assert seconds < PREP_BOUNDS[0] and rss < PREP_BOUNDS[1]

    status, output, seconds, rss = measured(
        ["-m", "merit.bin.prep_noise", "--seen", f"crss=folder:{tmp_path / 'noise' / 'seen'}",
         "--unseen", f"dns=folder:{tmp_path / 'noise' / 'unseen'}", "--min_noise_seconds", "0.01",
         "--recording_regex", "crss=^(.*)/", "--nj", "2", "--out", tmp_path / "data" / "noise"],
        cwd=tmp_path)
    print(f"prep_noise, {NOISE_FILES} files: {seconds:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    assert status == 0, output[-2000:]
    pools = {name: read_kv(tmp_path / "data" / "noise" / f"{name}.scp")
             for name in ("train", "dev", "test_seen", "test_unseen")}
    assert sum(len(pool) for pool in pools.values()) == NOISE_FILES
    assert len(pools["test_unseen"]) == NOISE_FILES // 5
    assert seconds < NOISE_BOUNDS[0] and rss < NOISE_BOUNDS[1]

    # the job split of simulate_noise, dump_ssl and merit_inference: 32 jobs
    jobs = [job_utterances(utts, job, 32) for job in range(1, 33)]
    dealt = [utt for share in jobs for utt in share]
    assert len(dealt) == len(set(dealt)) == ROWS and set(dealt) == set(utts)
    sizes = [len(share) for share in jobs]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == ROWS
    assert all(share == sorted(share, key=lambda u: u.encode()) for share in jobs)
    for bad in (0, 33):
        with pytest.raises(ValueError, match=r"--job must be in 1\.\.32"):
            check_job(bad, 32)


def test_the_readme_states_these_bounds():
    text = " ".join((REPO / "egs" / "msp_podcast" / "merit" / "README.md").read_text().split())
    assert (f"prep under {PREP_BOUNDS[0]:.0f} s and {PREP_BOUNDS[1] >> 30} GiB peak resident "
            f"memory, noise listing under {NOISE_BOUNDS[0]:.0f} s and "
            f"{NOISE_BOUNDS[1] >> 30} GiB") in text.replace("**", "")
