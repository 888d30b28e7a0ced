"""Recordings of any length through a MERIT model in overlapping windows, with memory
bounded by one window.

    result = process_file("talk.flac", speech2merit, speech2merit.classes,
                          enhanced_out="out/talk.wav", progress=bar.update)
    result.emotion, result.posteriors, result.expert_usage, result.segments

A file is cut into windows of ``segment`` seconds every ``hop`` seconds, the last one
ending at the file's end (``plan_windows``); a file no longer than ``segment`` is one
window, the whole file, so it gets exactly the whole-file result. Each window is read
on its own from the file (``LongAudioReader``: 16 kHz mono float32, resampled like
``read_audio``), run through the model, and then:

* **SE**: the enhanced windows are stitched by overlap-add with a raised-cosine
  cross-fade across each overlap (the earlier window fades out, the later fades in;
  the two weights sum to 1), so a window's edges, where its BLSTM lacked context,
  carry little weight. Samples no later window touches are written at once to
  ``enhanced_out``: memory holds a window and the previous one's fade, never the file.
* **SER**: each window is a segment row (start, end, emotion, probabilities;
  ``segments_csv_header`` / ``segments_csv_rows``). The file's posteriors are the
  segments' averaged with weights equal to the share of the file each segment
  *owns* (from the midpoint of its overlap with the previous window to the midpoint
  of its overlap with the next): every second of audio counts once, whatever the
  overlap, and the last window, pulled back to end at the file's end, is not counted
  twice. The file's emotion is their argmax; expert usage per task is averaged
  with the same weights.

Windowed SE against whole-file SE (``Speech2Merit(model)(whole)``) on 60 s of mini_emo
speech in its test noise at 5 dB; max |err| and SNR of the windowed output against the
whole-file one over the interior (1 s away from either end):

    segment/hop s    tiny test model        mini recipe model (fbank)
                     max|err|  SNR dB       max|err|  SNR dB
       2 / 1         1.1e-4    68.5         1.6e-2    34.2
       6 / 3         1.2e-4    70.3         1.2e-2    36.7
      10 / 5         9.6e-5    71.4         1.1e-2    37.8
      20 / 10        8.9e-5    74.2         1.0e-2    39.7
      30 / 15        8.7e-5    75.3         6.8e-3    49.7
      30 / 20        8.7e-5    75.4         8.7e-3    48.5

(Whole-file output peaks at 0.18 and 0.31.) Most of the difference is not at the
window edges: a window's output drifts from the whole file's only in its first and
last 50 ms (STFT padding, the BLSTM's start), elsewhere by a window-wide amount,
because features are normalised per input (s3prl's fbank applies utterance CMVN;
WavLM with ``normalize``, as Large, layer-norms the waveform), so a longer window
sees statistics closer to the whole file's. Hence long default windows;
``SE_TOLERANCE_DB`` is what windowed SE kept on the interior for every pair above,
and what test_long_audio asserts.
"""
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import soundfile as sf

from merit.data.audio_io import SAMPLE_RATE, AudioFileError, audio_info

#: Seconds per window. 30 s: windowed SE within ~48 dB of whole-file SE (table above)
#: and a file-level emotion close to the whole file's; a file up to 30 s (any
#: MSP-Podcast utterance, most clips) is one window, exactly today's whole-file
#: result; one window of WavLM Large at 30 s (1500 frames) is well within memory.
DEFAULT_SEGMENT = 30.0
#: Seconds between window starts. 20 s: a 10 s cross-fade, as accurate as 15 s
#: (48.5 against 49.7 dB) for 1.5x the audio through the model instead of 2x; the
#: SER timeline then has a row every 20 s (``--hop`` for finer ones).
DEFAULT_HOP = 20.0
#: Least SNR (dB) of windowed against whole-file SE on the interior, for the pairs
#: measured above (worst: 34.2 dB at 2 s windows).
SE_TOLERANCE_DB = 30.0


@dataclass(frozen=True)
class Window:
    """One window of a plan, in samples at 16 kHz.

    ``[start, end)`` is what the model sees. ``[own_start, own_end)`` is the part of
    the file it owns (midpoint to midpoint of its overlaps; the owned parts of a plan
    tile the file): its weight in the file-level SER. ``[fade_start, fade_end)`` is
    the cross-fade into the next window (empty for the last window).
    """

    start: int
    end: int
    own_start: int
    own_end: int
    fade_start: int
    fade_end: int

    @property
    def seconds(self) -> tuple:
        """(start, end) in seconds."""
        return self.start / SAMPLE_RATE, self.end / SAMPLE_RATE


def plan_windows(num_samples: int, segment: float = DEFAULT_SEGMENT,
                 hop: float = DEFAULT_HOP) -> List[Window]:
    """Windows of ``segment`` seconds every ``hop`` seconds over a file of
    ``num_samples`` samples at 16 kHz, the last one ending at the file's end (so it
    may overlap its predecessor by more than ``segment - hop``); a file no longer than
    ``segment`` is one window, the whole file.

    Each window's cross-fade into the next lies where both are valid and is
    centred on the midpoint of their overlap: it spans the whole overlap when
    ``hop >= segment / 2``; with more overlap it is cut at the midpoints towards
    the neighbouring fades, so no sample mixes more than two windows.

    Raises ValueError for ``hop <= 0``, ``hop > segment`` (gaps no window sees), a
    ``segment`` shorter than the shortest input a model judges, or an empty file.
    """
    # merit.inference is where the minimum lives; imported here because it loads torch
    from merit.inference import MIN_INPUT_SECONDS

    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop} s")
    if hop > segment:
        raise ValueError(f"hop ({hop} s) is longer than segment ({segment} s): the audio "
                         "between windows would never be seen; use hop <= segment")
    if segment < MIN_INPUT_SECONDS:
        raise ValueError(f"segment ({segment} s) is shorter than the {MIN_INPUT_SECONDS} s a "
                         "model needs to judge an emotion from; use a longer segment")
    if num_samples < 1:
        raise ValueError(f"no windows in a file of {num_samples} samples")
    length = round(segment * SAMPLE_RATE)
    step = max(1, round(hop * SAMPLE_RATE))
    if num_samples <= length:
        return [Window(0, num_samples, 0, num_samples, num_samples, num_samples)]
    starts = list(range(0, num_samples - length, step)) + [num_samples - length]
    ends = [s + length for s in starts]
    # cut[i]: midpoint of the overlap of windows i and i + 1, where ownership passes
    cuts = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(len(starts) - 1)] + [num_samples]
    windows = []
    for i, (start, end) in enumerate(zip(starts, ends)):
        if i + 1 < len(starts):
            left, here, right = cuts[i], cuts[i + 1], cuts[i + 2]
            fade_start = max(starts[i + 1], (left + here) // 2)
            fade_end = min(end, (here + right) // 2)
        else:
            fade_start = fade_end = end
        windows.append(Window(start, end, cuts[i], cuts[i + 1], fade_start, fade_end))
    return windows


class LongAudioReader:
    """An audio file opened for reading one span at a time, as 16 kHz mono float32.

    ``read(start, end)`` decodes only ``[start, end)`` (16 kHz sample indices) plus, for
    another rate, a margin, so memory follows the span, never the file. Channels are
    averaged, then other rates go through ``scipy.signal.resample_poly`` as in
    ``read_audio``: the span is read from a sample where the resampler's phase is the
    whole file's (a multiple of ``down``), with a margin wider than its filter on
    both sides, so each output sample sees the same input samples and filter taps as
    in whole-file resampling. 16 kHz input is bit-exact to ``read_audio``; so, as
    measured, are 48, 44.1, 22.05 and 8 kHz, mono and stereo (test_long_audio allows
    48 kHz stereo 1e-6, room for another scipy's summation order).

    Raises AudioFileError naming the file when it is missing, unreadable, empty,
    truncated, or gives fewer samples than its header promised.
    """

    def __init__(self, path):
        self.path = str(path)
        info = audio_info(path)
        self.rate, self.frames = info.samplerate, info.frames
        gcd = math.gcd(self.rate, SAMPLE_RATE)
        self._up, self._down = SAMPLE_RATE // gcd, self.rate // gcd
        #: length at 16 kHz, as resample_poly gives it: ceil(frames * up / down)
        self.num_samples = -(-self.frames * self._up // self._down)
        # resample_poly's filter reaches 10 * max(up, down) samples of the upsampled
        # signal each way (scipy's half_len): in source samples, plus rounding
        self._margin = 10 * max(self._up, self._down) // self._up + 2
        self._file = sf.SoundFile(self.path)

    @property
    def duration(self) -> float:
        """Seconds of audio at 16 kHz."""
        return self.num_samples / SAMPLE_RATE

    def _read_source(self, first: int, last: int) -> np.ndarray:
        """Source samples [first, last), channels averaged (float32, as read_audio)."""
        self._file.seek(first)
        block = self._file.read(last - first, dtype="float32", always_2d=True)
        if block.shape[0] != last - first:
            raise AudioFileError(self.path, "truncated",
                                 f"decoding gave {block.shape[0]} of the {last - first} samples "
                                 f"from sample {first} (its header declares {self.frames}); "
                                 "the file is damaged, copy or export it again")
        return block.mean(axis=1)

    def read(self, start: int, end: int) -> np.ndarray:
        """(end - start,) float32: samples [start, end) of the file at 16 kHz mono."""
        if not 0 <= start < end <= self.num_samples:
            raise ValueError(f"{self.path}: span [{start}, {end}) outside its "
                             f"{self.num_samples} samples")
        if self.rate == SAMPLE_RATE:
            return self._read_source(start, end)
        from scipy.signal import resample_poly  # costs ~1.2 s of start-up; see read_audio

        up, down = self._up, self._down
        # first block (``down`` source samples = ``up`` output samples) whose filter
        # input starts at or before the margin ahead of ``start``
        first_block = max(0, (start * down // up - self._margin) // down)
        first = first_block * down
        last = min(self.frames, -(-end * down // up) + self._margin)
        wav = resample_poly(self._read_source(first, last), up, down).astype(np.float32)
        offset = start - first_block * up
        return wav[offset:offset + end - start]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "LongAudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Stitcher:
    """Overlap-add of the enhanced windows of a plan, given in order; ``add`` returns
    the samples that are final once a window is in (no later window touches them)."""

    def __init__(self, windows: Sequence[Window], name: str):
        self.windows, self.name = windows, name
        self._tail = None  # the previous window's output over its fade

    def add(self, index: int, enhanced: np.ndarray) -> np.ndarray:
        window = self.windows[index]
        if enhanced.shape != (window.end - window.start,):
            raise ValueError(f"{self.name}: the model gave enhanced audio of shape "
                             f"{enhanced.shape} for a window of {window.end - window.start} "
                             "samples; it must give one sample per input sample")
        pieces = []
        own_from = window.start
        if index > 0:
            before = self.windows[index - 1]
            fade = before.fade_end - before.fade_start
            later = enhanced[before.fade_start - window.start:before.fade_end - window.start]
            # raised cosine, 0 -> 1 for the later window; a + w (b - a) keeps a sample
            # both windows agree on exactly
            weight = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
            pieces.append((self._tail + weight * (later - self._tail)).astype(np.float32))
            own_from = before.fade_end
        pieces.append(enhanced[own_from - window.start:window.fade_start - window.start])
        self._tail = enhanced[window.fade_start - window.start:
                              window.fade_end - window.start].astype(np.float64)
        return np.concatenate(pieces)


@dataclass
class Segment:
    """The model's judgement of one window (seconds; ``posteriors`` None without an
    SER head, ``emotion`` then None too)."""

    start: float
    end: float
    owned: float  # seconds of the file this window owns: its weight in the file's result
    posteriors: Optional[np.ndarray]
    emotion: Optional[str]
    expert_usage: Dict[str, np.ndarray]


@dataclass
class FileResult:
    """One file's result: ``posteriors``/``emotion`` aggregated over ``segments`` by
    owned seconds (None without an SER head), ``expert_usage`` likewise."""

    duration: float
    posteriors: Optional[np.ndarray]
    emotion: Optional[str]
    expert_usage: Dict[str, np.ndarray]
    segments: List[Segment] = field(default_factory=list)


def _weighted(values: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """sum_i weights[i] * values[i] in float64, back to the values' dtype (a single
    value with weight 1 comes back unchanged)."""
    total = sum(w * np.asarray(v, dtype=np.float64) for w, v in zip(weights, values))
    return total.astype(np.asarray(values[0]).dtype)


class _EnhancedWriter:
    """16-bit PCM 16 kHz wav written piece by piece under ``<name>.part``, renamed
    into place by ``finish`` (so a half-written file never has the final name)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".part")
        self._file = sf.SoundFile(str(self._tmp), "w", samplerate=SAMPLE_RATE, channels=1,
                                  subtype="PCM_16", format="WAV")

    def write(self, samples: np.ndarray) -> None:
        self._file.write(samples)

    def finish(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def abandon(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def process_file(path, infer: Callable[[np.ndarray], object], classes: Sequence[str],
                 segment: float = DEFAULT_SEGMENT, hop: float = DEFAULT_HOP,
                 enhanced_out=None,
                 progress: Optional[Callable[[float], None]] = None) -> FileResult:
    """Run ``infer`` over ``path`` window by window (``plan_windows``).

    Args:
        path: an audio file soundfile reads, any rate and channel count.
        infer: (samples,) float32 at 16 kHz -> an object with ``enhanced``,
            ``posteriors`` and ``expert_usage`` as ``Speech2Merit.__call__`` returns.
        classes: the emotion class codes, in the order of the posteriors.
        segment, hop: window length and step in seconds.
        enhanced_out: where to write the stitched enhanced audio (16-bit PCM, 16 kHz,
            the file's length at 16 kHz); None writes nothing.
        progress: called after each window with the seconds of the file that window
            owns (they sum to the duration), e.g. a tqdm bar's ``update``.

    Returns the file's FileResult. A file shorter than the model's minimum is for the
    caller to refuse first (``merit.inference.MIN_INPUT_SECONDS``; merit-infer checks
    every file's header before it loads the model). Raises AudioFileError naming an unusable file, ValueError
    naming it when ``enhanced_out`` is given to a model without an SE head; a failure
    leaves no enhanced file behind.
    """
    with LongAudioReader(path) as reader:
        windows = plan_windows(reader.num_samples, segment, hop)
        stitcher = _Stitcher(windows, str(path))
        writer = None
        segments = []
        try:
            for index, window in enumerate(windows):
                result = infer(reader.read(window.start, window.end))
                if enhanced_out is not None:
                    if result.enhanced is None:
                        raise ValueError(f"{path}: the model has no SE head, so there is no "
                                         f"enhanced audio for {enhanced_out}; do not ask for it")
                    if writer is None:
                        writer = _EnhancedWriter(enhanced_out)
                    writer.write(stitcher.add(index, np.asarray(result.enhanced)))
                posteriors = result.posteriors
                start, end = window.seconds
                segments.append(Segment(
                    start, end, (window.own_end - window.own_start) / SAMPLE_RATE,
                    None if posteriors is None else np.asarray(posteriors),
                    None if posteriors is None else classes[int(np.argmax(posteriors))],
                    dict(result.expert_usage)))
                if progress is not None:
                    progress((window.own_end - window.own_start) / SAMPLE_RATE)
            if writer is not None:
                writer.finish()
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
    weights = np.array([s.owned for s in segments]) * SAMPLE_RATE / reader.num_samples
    posteriors = None
    if segments[0].posteriors is not None:
        posteriors = _weighted([s.posteriors for s in segments], weights)
    usage = {task: _weighted([s.expert_usage[task] for s in segments], weights)
             for task in segments[0].expert_usage}
    return FileResult(duration=reader.duration, posteriors=posteriors,
                      emotion=None if posteriors is None else classes[int(np.argmax(posteriors))],
                      expert_usage=usage, segments=segments)


def segments_csv_header(classes: Sequence[str]) -> List[str]:
    """Columns of ``segments.csv``: file, start, end, emotion, then one per class."""
    return ["file", "start", "end", "emotion", *classes]


def segments_csv_rows(file: str, result: FileResult) -> Iterator[List[str]]:
    """``segments.csv`` rows of one file (``file`` as the caller names it), in time
    order: start and end in seconds (exact: sample / 16000), the emotion and each
    class probability (4 decimals; empty without an SER head)."""
    for seg in result.segments:
        probs = [] if seg.posteriors is None else [f"{p:.4f}" for p in seg.posteriors]
        yield [file, repr(seg.start), repr(seg.end), seg.emotion or "", *probs]
