"""merit.long_audio: long recordings in overlapping windows. The plan covers the file,
the reader gives read_audio's samples one span at a time, the stitched SE matches
whole-file SE within the stated tolerance, and the file-level emotion follows the
owned-seconds rule."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from merit import long_audio
from merit.data.audio_io import read_audio, write_audio
from merit.long_audio import LongAudioReader, plan_windows, process_file

SR = 16000
MINI_EMO = Path(__file__).resolve().parent.parent / "egs/mini_emo/merit/downloads"

PLANS = [  # (samples, segment s, hop s): even fit, pulled-back last window, hop < segment / 2
    (40 * SR, 10, 5), (17 * SR + 3, 10, 6), (95 * SR + 7, 10, 2), (30 * SR, 8, 8)]


@pytest.mark.parametrize("samples, segment, hop", PLANS)
def test_plan_covers_the_file(samples, segment, hop):
    windows = plan_windows(samples, segment, hop)
    assert windows[0].start == 0 and windows[-1].end == samples
    assert all(w.end - w.start == segment * SR for w in windows)
    step = hop * SR
    assert [w.start for w in windows[:-1]] == list(range(0, step * (len(windows) - 1), step))
    assert windows[-2].start < windows[-1].start <= windows[-2].start + hop * SR
    for before, after in zip(windows, windows[1:]):
        assert after.start <= before.end  # no gap
        # the fade lies where both windows hold audio; owned shares tile the file
        assert after.start <= before.fade_start <= before.fade_end <= before.end
        assert before.own_end == after.own_start
    assert windows[0].own_start == 0 and windows[-1].own_end == samples


def test_fade_spans_the_whole_overlap_when_hop_is_at_least_half_the_segment():
    windows = plan_windows(60 * SR, 10, 6)
    for before, after in zip(windows[:-2], windows[1:-1]):
        assert (before.fade_start, before.fade_end) == (after.start, before.end)


def test_short_file_is_one_window_the_whole_file():
    assert [(w.start, w.end) for w in plan_windows(5 * SR, 10, 5)] == [(0, 5 * SR)]
    assert [(w.start, w.end) for w in plan_windows(10 * SR, 10, 5)] == [(0, 10 * SR)]


@pytest.mark.parametrize("segment, hop, message", [
    (10, 0, "hop must be positive"), (10, -1, "hop must be positive"),
    (10, 12, r"hop \(12 s\) is longer than segment \(10 s\)"),
    (0.1, 0.1, r"segment \(0.1 s\) is shorter than the 0.25 s")])
def test_bad_plans_are_refused(segment, hop, message):
    with pytest.raises(ValueError, match=message):
        plan_windows(60 * SR, segment, hop)


def _noise_file(path, rate, channels, seconds, subtype="PCM_16"):
    rng = np.random.default_rng(rate + channels)
    sf.write(str(path), 0.3 * rng.standard_normal((int(seconds * rate) + 11, channels)),
             rate, subtype=subtype)
    return path


@pytest.mark.parametrize("rate, channels, tolerance", [
    (16000, 1, 0.0),   # bit-exact
    (48000, 2, 1e-6),  # measured: bit-exact too (0.0); 1e-6 leaves room for scipy versions
])
def test_reader_gives_read_audio_samples_span_by_span(tmp_path, monkeypatch, rate, channels,
                                                      tolerance):
    path = _noise_file(tmp_path / f"x_{rate}_{channels}.flac", rate, channels, 23)
    whole = read_audio(path, resample=True)
    requested = []
    read = sf.SoundFile.read
    def spy(self, frames=-1, **kwargs):
        requested.append(frames)
        return read(self, frames, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    with LongAudioReader(path) as reader:
        assert reader.num_samples == len(whole)
        spans = [(w.start, w.end) for w in plan_windows(reader.num_samples, 4, 3)]
        spans += [(0, 1), (5, 333), (len(whole) - 7, len(whole)), (123457, 180001)]
        for start, end in spans:
            np.testing.assert_allclose(reader.read(start, end), whole[start:end], rtol=0,
                                       atol=tolerance)
    # memory per window: never more than a window (in source samples) plus a margin
    assert 0 < max(requested) <= 4 * rate + 200


def _identity(noisy):
    return SimpleNamespace(enhanced=noisy, posteriors=np.array([1.0], np.float32),
                           expert_usage={})


@pytest.mark.parametrize("samples, segment, hop", PLANS)
def test_identity_model_gives_back_the_input_exactly(tmp_path, samples, segment, hop):
    """The cross-fade weights sum to 1: a model that changes nothing changes nothing."""
    path = tmp_path / "in.wav"
    sf.write(str(path), 0.3 * np.random.default_rng(0).standard_normal(samples), SR,
             subtype="PCM_16")
    process_file(path, _identity, ["N"], segment, hop, enhanced_out=tmp_path / "out.wav")
    write_audio(tmp_path / "whole.wav", read_audio(path))
    assert np.array_equal(sf.read(str(tmp_path / "out.wav"), dtype="int16")[0],
                          sf.read(str(tmp_path / "whole.wav"), dtype="int16")[0])


def test_windows_cross_fade_with_a_raised_cosine(tmp_path):
    """Each window returns its own constant: across an overlap the output goes from the
    earlier to the later along 0.5 - 0.5 cos, and is either one's value outside it."""
    path = _noise_file(tmp_path / "in.wav", SR, 1, 20)
    levels = iter([0.1, 0.5, -0.3, 0.2, 0.4])

    def constant(noisy):
        return SimpleNamespace(enhanced=np.full(len(noisy), next(levels), np.float32),
                               posteriors=None, expert_usage={})

    process_file(path, constant, ["N"], 8, 5, enhanced_out=tmp_path / "out.wav")
    out = sf.read(str(tmp_path / "out.wav"))[0]
    windows = plan_windows(len(out), 8, 5)
    values = [0.1, 0.5, -0.3, 0.2]
    assert len(windows) == 4
    for i, before in enumerate(windows[:-1]):
        a, b = values[i], values[i + 1]
        fade = out[before.fade_start:before.fade_end]
        weight = 0.5 - 0.5 * np.cos(np.pi * (np.arange(len(fade)) + 0.5) / len(fade))
        np.testing.assert_allclose(fade, a + weight * (b - a), atol=1e-4)
        assert before.fade_end - before.fade_start >= 3 * SR  # the overlap, 3 s or more
    np.testing.assert_allclose(out[:windows[0].fade_start], 0.1, atol=1e-4)
    np.testing.assert_allclose(out[windows[-2].fade_end:], 0.2, atol=1e-4)


def test_segments_cover_the_file_and_the_file_emotion_weighs_owned_seconds(tmp_path):
    """17 s in windows of 10 s every 6 s: [0, 10), [6, 16), [7, 17). The last window,
    pulled back, owns 17 - 11.5 = 5.5 s; the middle one 11.5 - 8 = 3.5 s; the first 8 s.
    A plain mean of the three (or one weighted by window length) says C; owned seconds
    say A."""
    path = tmp_path / "in.flac"
    sf.write(str(path), np.zeros(17 * SR), SR)
    duration = 17.0
    posteriors = iter(np.array([[0.7, 0.0, 0.3], [0.0, 0.0, 1.0], [0.7, 0.0, 0.3]], np.float32))
    usages = iter(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32))

    def known(noisy):
        return SimpleNamespace(enhanced=None, posteriors=next(posteriors),
                               expert_usage={"ser": next(usages)})

    done = []
    result = process_file(path, known, ["A", "B", "C"], 10, 6, progress=done.append)
    owned = np.array([8.0, 3.5, 5.5])
    np.testing.assert_allclose([s.owned for s in result.segments], owned, atol=1e-4)
    expected = owned @ np.array([[0.7, 0.0, 0.3], [0.0, 0.0, 1.0], [0.7, 0.0, 0.3]]) / duration
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-5)
    assert result.emotion == "A" and [s.emotion for s in result.segments] == ["A", "C", "A"]
    np.testing.assert_allclose(result.expert_usage["ser"],
                               owned @ np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]) / duration,
                               atol=1e-5)
    assert sum(done) == pytest.approx(duration) and result.duration == duration

    rows = list(long_audio.segments_csv_rows("talk.flac", result))
    assert long_audio.segments_csv_header(["A", "B", "C"]) == \
        ["file", "start", "end", "emotion", "A", "B", "C"]
    assert rows[0][:4] == ["talk.flac", "0.0", "10.0", "A"] and rows[1][4:] == \
        ["0.0000", "0.0000", "1.0000"]
    assert float(rows[-1][2]) == duration
    assert all(float(after[1]) <= float(before[2]) for before, after in zip(rows, rows[1:]))


def test_enhanced_file_has_the_input_length_at_16k(tmp_path):
    path = _noise_file(tmp_path / "stereo48k.flac", 48000, 2, 7.3)
    out = tmp_path / "deep" / "out.wav"
    result = process_file(path, _identity, ["N"], 3, 2, enhanced_out=out)
    info = sf.info(str(out))
    assert (info.frames, info.samplerate, info.channels, info.subtype) == \
        (len(read_audio(path, resample=True)), SR, 1, "PCM_16")
    assert result.duration == info.frames / SR and not (out.parent / "out.wav.part").exists()


def test_a_failure_leaves_no_enhanced_file(tmp_path):
    path = _noise_file(tmp_path / "in.wav", SR, 1, 20)
    calls = []

    def fails_on_the_second(noisy):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return _identity(noisy)

    with pytest.raises(RuntimeError):
        process_file(path, fails_on_the_second, ["N"], 8, 5, enhanced_out=tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == [path]
    no_se = SimpleNamespace(enhanced=None, posteriors=np.ones(1), expert_usage={})
    with pytest.raises(ValueError, match=f"{path}: the model has no SE head"):
        process_file(path, lambda noisy: no_se, ["N"], 8, 5, enhanced_out=tmp_path / "out.wav")


def _speech_in_noise(seconds: float) -> np.ndarray:
    """mini_emo speech with short pauses in its test noise at 5 dB (real audio: windowed
    SE is checked where it matters, not on white noise)."""
    rng = np.random.default_rng(0)
    files = sorted((MINI_EMO / "speech").glob("*/*.flac"))
    parts, total = [], 0
    for i in rng.permutation(len(files)):
        parts += [read_audio(files[i]), np.zeros(int(rng.uniform(0.1, 0.6) * SR), np.float32)]
        total += len(parts[-2]) + len(parts[-1])
        if total > seconds * SR:
            break
    clean = np.concatenate(parts)[:int(seconds * SR)]
    noise_files = sorted((MINI_EMO / "noise/test").glob("*.flac"))
    noise = np.concatenate([read_audio(f) for f in noise_files])
    noise = np.resize(noise, len(clean))
    noise *= np.sqrt((clean ** 2).mean() / (noise ** 2).mean() / 10 ** 0.5)
    noisy = clean + noise
    return (0.5 * noisy / np.abs(noisy).max()).astype(np.float32)


def test_windowed_se_matches_whole_file_se_on_the_interior(tiny_model, tmp_path):
    from merit.inference import Speech2Merit

    model = Speech2Merit(tiny_model)
    path = tmp_path / "noisy.wav"
    sf.write(str(path), _speech_in_noise(30), SR, subtype="FLOAT")
    noisy = read_audio(path)
    whole = model(noisy).enhanced
    result = process_file(path, model, model.classes, 8, 5, enhanced_out=tmp_path / "out.wav")
    assert len(result.segments) == 6
    windowed = sf.read(str(tmp_path / "out.wav"), dtype="float32")[0]
    interior = slice(SR, len(noisy) - SR)
    error = windowed[interior] - whole[interior]
    snr = 10 * np.log10(np.sum(whole[interior] ** 2) / np.sum(error ** 2))
    assert snr >= long_audio.SE_TOLERANCE_DB, f"windowed SE {snr:.1f} dB from whole-file SE"

    # a file no longer than a segment: exactly the whole-file result
    short = tmp_path / "short.wav"
    sf.write(str(short), noisy[:5 * SR], SR, subtype="FLOAT")
    once = model(noisy[:5 * SR])
    result = process_file(short, model, model.classes, 8, 5,
                          enhanced_out=tmp_path / "short_out.wav")
    write_audio(tmp_path / "short_whole.wav", once.enhanced)
    assert np.array_equal(result.posteriors, once.posteriors)
    assert result.expert_usage.keys() == once.expert_usage.keys()
    for task, usage in once.expert_usage.items():
        assert np.array_equal(result.expert_usage[task], usage)
    assert np.array_equal(sf.read(str(tmp_path / "short_out.wav"), dtype="int16")[0],
                          sf.read(str(tmp_path / "short_whole.wav"), dtype="int16")[0])
