"""Time the CPU stages of a recipe that scale with the corpus: noise simulation (stage 2)
and SE scoring (stage 6), as seconds of work per second of audio in one process.

    python -m merit.bin.bench_audio_stages [--utt_seconds 6] [--out bench_audio.json]

The audio is real speech: the shipped mini_emo recordings of each speaker joined into
utterances of about ``--utt_seconds``, mixed with the shipped noise. Both stages run
through their own command-line entry points, files and all:

* stage 2: ``merit.bin.simulate_noise`` in one process (``--num_jobs`` splits it in a
  recipe);
* stage 6, first system of a test set: ``merit.bin.score --nj 1`` computes the default
  SE metrics (``merit.metrics.se.DEFAULT_SE_METRICS``) of the noisy input and of the
  "enhanced" output (the mixture again, which costs the metrics the same) and fills the
  noisy-input cache;
* stage 6, each further system: the same with the cache, so only the enhanced half;
* each SE metric of ``SE_METRICS`` on its own (``metric_<name>_rtf``), in this process,
  over the noisy input against the clean reference after a warm-up, and the
  sums ``metrics_default_rtf`` (what scoring one signal costs), ``metrics_composite_rtf``
  (LLR, WSS and the CSIG, CBAK, COVL derived from them) and ``metrics_dnsmos_rtf``. A
  metric computed with another is charged to the first: ESTOI reuses STOI's resampled
  signals, DNSMOS's BAK and OVRL come from SIG's run of the model.

A real-time factor of 0.1 means an hour of audio takes 6 minutes of one core.

Measured on the 2-core development machine (shared with other jobs: ±20 % between
runs), 42 utterances of about 7 s (293 s of audio), in seconds per second of audio:

=================================  ===========  ============================
measure                            before [1]   after
=================================  ===========  ============================
stage 6, first system              0.087        0.085, 0.086 (0.99×)
stage 6, further system            0.046        0.051, 0.050 (1.09×)
default SE metrics of one signal   0.035 [2]    0.040 (1.13×)
  of which LLR, WSS                --           0.0019, 0.0028
  of which CSIG, CBAK, COVL        --           0.00001 (derived)
DNSMOS SIG+BAK+OVRL of one signal  --           0.297 (7.4× the default set)
=================================  ===========  ============================

[1] commit c78a688 (ssnr, pesq, stoi, estoi, si_sdr, lsd), run right before the
"after" runs. [2] the sum of those six metrics in the "after" run (same code). PESQ
(0.019) and STOI + ESTOI (0.015) dominate; a stage-6 run also pays about 5 s to start
its process pool. DNSMOS scores three signals of an utterance (noisy, clean reference,
enhanced), so the first system with it would cost about 0.040·2 + 0.297·3 ≈ 0.97 s per
second of audio, 11× today: it is opt-in (``merit.bin.score --extra_metrics``).
"""
import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from merit.bin import score, simulate_noise
from merit.data.audio_io import SAMPLE_RATE, list_audio, read_audio, write_audio
from merit.data.datadir import c_sorted, read_kv, write_datadir, write_kv
from merit.metrics.se import SE_METRICS
from merit.utils.measure_table import MeasureTable

DOWNLOADS = Path(__file__).resolve().parents[2] / "egs" / "mini_emo" / "merit" / "downloads"


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utt_seconds", type=float, default=6.0,
                        help="join each speaker's recordings into utterances of about this length")
    parser.add_argument("--max_utts", type=int, default=0, help="use at most this many (0: all)")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    return parser


def make_clean_set(out_dir: Path, audio_dir: Path, utt_seconds: float, max_utts: int):
    """A clean data dir of the shipped speech joined per speaker; returns its number of
    utterances and its seconds."""
    by_speaker = defaultdict(list)
    for path in list_audio(DOWNLOADS / "speech"):
        by_speaker[path.parent.name].append(path)
    wav_scp, utt2spk, total = {}, {}, 0
    for speaker, paths in sorted(by_speaker.items()):
        pieces = []
        for path in paths:
            pieces.append(read_audio(path))
            if sum(p.size for p in pieces) >= utt_seconds * SAMPLE_RATE:
                utt = f"{speaker}_{len(utt2spk):04d}"
                wav_scp[utt] = audio_dir / f"{utt}.wav"
                write_audio(wav_scp[utt], np.concatenate(pieces))
                utt2spk[utt] = speaker
                total += sum(p.size for p in pieces)
                pieces = []
            if max_utts and len(utt2spk) == max_utts:
                break
    write_datadir(out_dir, {"wav.scp": wav_scp, "utt2spk": utt2spk})
    return len(utt2spk), total / SAMPLE_RATE


def timed(main, argv) -> float:
    """Wall seconds of ``main(argv)``; an error if it fails (it has said why)."""
    start = time.perf_counter()
    if main(argv):
        raise RuntimeError(f"{main.__module__} failed")
    return time.perf_counter() - start


def fake_decode(decode_dir: Path, noisy_dir: Path) -> None:
    """A decode dir whose "enhanced" audio is the noisy input (same cost to score)."""
    wav_scp = read_kv(noisy_dir / "wav.scp")
    decode_dir.mkdir(parents=True)
    write_kv(decode_dir / "enhanced.scp", wav_scp)


def metric_rtfs(noisy_dir: Path) -> dict:
    """{name: seconds per second of audio} of each metric of ``SE_METRICS`` over the set's
    noisy input against its clean reference, in this process, after a warm-up (imports,
    the DNSMOS session) on the first utterance at half its level: a signal of its own,
    so that nothing remembered for it (DNSMOS's scores) serves the timed ones."""
    noisy, clean = read_kv(noisy_dir / "wav.scp"), read_kv(noisy_dir / "spk1.scp")
    pairs = [(read_audio(clean[utt]).astype(np.float64), read_audio(noisy[utt]).astype(np.float64))
             for utt in c_sorted(noisy)]
    warm_up = {}
    for metric in SE_METRICS:
        warm_up[metric.name] = metric.score(pairs[0][0], 0.5 * pairs[0][1], SAMPLE_RATE, warm_up)
    spent = {metric.name: 0.0 for metric in SE_METRICS}
    for reference, estimate in pairs:
        scored = {}
        for metric in SE_METRICS:
            start = time.perf_counter()
            scored[metric.name] = metric.score(reference, estimate, SAMPLE_RATE, scored)
            spent[metric.name] += time.perf_counter() - start
    audio_seconds = sum(reference.size for reference, _ in pairs) / SAMPLE_RATE
    return {name: seconds / audio_seconds for name, seconds in spent.items()}


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        utts, seconds = make_clean_set(work / "clean", work / "audio" / "clean",
                                       args.utt_seconds, args.max_utts)
        table = MeasureTable()
        table.record("utterances", utts)
        table.record("audio_seconds", round(seconds, 1))
        noise = {p.stem: p for p in list_audio(DOWNLOADS / "noise" / "train")}
        write_kv(work / "noise.scp", noise)
        stage2 = timed(simulate_noise.main, [
            "--clean_dir", str(work / "clean"), "--noise", str(work / "noise.scp"),
            "--category", "seen", "--snrs", "-5 0 5 10", "--out_dir", str(work / "noisy"),
            "--audio_dir", str(work / "audio" / "noisy")])
        table.record("stage2_simulate_rtf", stage2 / seconds)
        cache = work / "noisy" / "noisy_se_scores.tsv"
        for system in ("first", "further"):
            fake_decode(work / system, work / "noisy")
            scoring = timed(score.main, ["--data_dir", str(work / "noisy"), "--decode_dir",
                                         str(work / system), "--nj", "1",
                                         "--noisy_cache", str(cache)])
            table.record(f"stage6_score_{system}_system_rtf", scoring / seconds)
        rtfs = metric_rtfs(work / "noisy")
        for name, rtf in rtfs.items():
            table.record(f"metric_{name}_rtf", rtf)
        groups = {"default": [m.name for m in SE_METRICS if m.default],
                  "composite": ["llr", "wss", "csig", "cbak", "covl"],
                  "dnsmos": [m.name for m in SE_METRICS if m.name.startswith("dnsmos_")]}
        for group, names in groups.items():
            table.record(f"metrics_{group}_rtf", sum(rtfs[name] for name in names))
    if args.out:
        table.write_json(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
