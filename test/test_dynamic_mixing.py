"""Dynamic mixing (merit.data.dynamic_mixing, MeritTask's ``dynamic_mixing``): exact
SNRs, the anti-clipping gain on clean and noisy alike, the train noise pool only, new
mixtures every epoch and the same ones for the same seed, with or without DataLoader
workers, and validation left alone."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import RATE, speechlike
from merit.data import dynamic_mixing
from merit.data.dynamic_mixing import DynamicMixer
from merit.data.noise_mixing import PEAK_LIMIT, power

SNRS = [-5.0, 0.0, 5.0, 10.0]
# (utterance, seconds, peak): the loud one clips at low SNRs
UTTS = [("spk1_a", 0.6, 0.4), ("spk1_b", 0.9, 0.5), ("spk2_a", 0.7, 0.3), ("spk2_loud", 0.8, 0.95)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Clean speech (``clean``: {utt: samples}), a stand-in for stage 2's noisy wav.scp
    and the four noise pools; dev and test pools list files that are no audio."""
    root = tmp_path_factory.mktemp("dynamic_mixing")
    clean, noisy = {}, {}
    for i, (utt, seconds, peak) in enumerate(UTTS):
        clean[utt] = speechlike(seconds, 110 + 30 * i, i, peak=peak)
        for name, wav in (("clean", clean[utt]), ("noisy", 0.5 * clean[utt])):
            (root / name).mkdir(exist_ok=True)
            sf.write(str(root / name / f"{utt}.wav"), wav, RATE, subtype="FLOAT")
        noisy[utt] = 0.5 * clean[utt]
    rng = np.random.default_rng(5)
    pools = root / "noise"
    pools.mkdir()
    train = []
    for i in range(3):
        path = pools / f"train{i}.wav"
        noise = 0.1 * rng.standard_normal(int((1.1 + 0.3 * i) * RATE))
        sf.write(str(path), noise.astype(np.float32), RATE, subtype="FLOAT")
        train.append(f"train_noise{i} {path}")
    (pools / "train.scp").write_text("\n".join(train) + "\n")
    for pool in ("dev", "test_seen", "test_unseen"):
        path = pools / f"{pool}0.wav"
        path.write_bytes(b"not audio: a mixer that opens this fails")
        (pools / f"{pool}.scp").write_text(f"{pool}_noise0 {path}\n")
    data = root / "data"
    data.mkdir()
    for name, folder in (("wav.scp", "noisy"), ("spk1.scp", "clean")):
        (data / name).write_text("".join(f"{u} {root / folder / u}.wav\n" for u, _, _ in UTTS))
    (data / "utt2emo").write_text("".join(f"{u} {'ASHN'[i]}\n" for i, (u, _, _) in enumerate(UTTS)))
    (data / "utt2num_samples").write_text("".join(f"{u} {clean[u].size}\n" for u in clean))
    return {"root": root, "clean": clean, "noisy": noisy, "data": data,
            "train_pool": pools / "train.scp"}


def mixer(corpus, seed=1, snrs=SNRS):
    return DynamicMixer.from_conf({"noise_scp": str(corpus["train_pool"]), "snrs": snrs}, seed)


def mix_all(mix, corpus, epoch, order=None):
    """{utt: (noisy, clean)} of ``mix`` for ``epoch``, utterances in ``order``."""
    mix.set_epoch(epoch)
    out = {}
    for utt in order or list(corpus["clean"]):
        data = mix(utt, {"speech": corpus["noisy"][utt].copy(),
                         "speech_ref1": corpus["clean"][utt].copy()})
        out[utt] = (data["speech"], data["speech_ref1"])
    return out


def snr_of(noisy, clean):
    """Whole-utterance SNR (dB) of a returned pair: noise = noisy - clean."""
    noisy, clean = np.asarray(noisy, np.float64), np.asarray(clean, np.float64)
    return 10 * np.log10(power(clean) / power(noisy - clean))


def assert_drawn_snrs(pairs, snrs=SNRS):
    """Each pair is at one of ``snrs`` within 0.05 dB; returns the SNRs found."""
    found = []
    for utt, (noisy, clean) in pairs.items():
        snr = snr_of(noisy, clean)
        nearest = min(snrs, key=lambda s: abs(s - snr))
        assert abs(snr - nearest) < 0.05, f"{utt}: {snr:.3f} dB is none of {snrs}"
        found.append(nearest)
    return found


def test_mixtures_are_at_exact_drawn_snrs(corpus):
    mix = mixer(corpus)
    found = []
    for epoch in (1, 2, 3):
        found += assert_drawn_snrs(mix_all(mix, corpus, epoch))
    assert len(set(found)) >= 3  # the SNR is drawn, not fixed


def test_anti_clipping_gain_scales_clean_and_noisy_alike(corpus):
    mix = mixer(corpus, snrs=[-5.0])
    loud = corpus["clean"]["spk2_loud"]
    noisy, clean = mix_all(mix, corpus, 1)["spk2_loud"]
    gain = float(np.dot(clean, loud) / np.dot(loud, loud))
    assert gain < 0.9  # white noise 5 dB above a 0.95 peak: scaled down
    np.testing.assert_allclose(clean, gain * loud, atol=1e-6)
    assert np.max(np.abs(noisy)) == pytest.approx(PEAK_LIMIT, rel=1e-5)
    assert snr_of(noisy, clean) == pytest.approx(-5.0, abs=0.05)
    _, quiet_clean = mix_all(mixer(corpus, snrs=[10.0]), corpus, 1)["spk1_a"]
    np.testing.assert_array_equal(quiet_clean, corpus["clean"]["spk1_a"])  # no clipping: gain 1


def test_same_seed_same_mixtures_other_epoch_or_seed_others(corpus):
    utts = list(corpus["clean"])
    first = mix_all(mixer(corpus, seed=1), corpus, 1)
    again = mix_all(mixer(corpus, seed=1), corpus, 1, order=utts[::-1])  # any order
    for utt in utts:
        np.testing.assert_array_equal(first[utt][0], again[utt][0])
        np.testing.assert_array_equal(first[utt][1], again[utt][1])
    epoch2 = mix_all(mixer(corpus, seed=1), corpus, 2)
    seed2 = mix_all(mixer(corpus, seed=2), corpus, 1)
    for other in (epoch2, seed2):
        for utt in utts:
            assert not np.array_equal(first[utt][0], other[utt][0]), utt


def test_only_the_train_pool_is_read(corpus, monkeypatch):
    opened = []

    def recording_read(path, resample=False):
        opened.append(Path(path))
        return real_read(path, resample=resample)

    real_read = dynamic_mixing.read_audio
    monkeypatch.setattr(dynamic_mixing, "read_audio", recording_read)
    mix = mixer(corpus)
    for epoch in range(1, 6):
        mix_all(mix, corpus, epoch)
    train_files = {Path(line.split()[1]) for line in corpus["train_pool"].read_text().splitlines()}
    assert set(opened) == train_files  # every train noise drawn in 20 mixtures, nothing else


def test_noise_cache_is_bounded(corpus, monkeypatch):
    reads = []
    real_read = dynamic_mixing.read_audio
    monkeypatch.setattr(dynamic_mixing, "read_audio", lambda path, resample=False:
                        reads.append(path) or real_read(path, resample))
    paths = [line.split()[1] for line in corpus["train_pool"].read_text().splitlines()]
    cache = dynamic_mixing.NoiseCache(max_bytes=int(2.5 * RATE * 4))  # room for about two
    for path in paths + paths[-1:]:
        cache(path)
    assert reads == paths  # the last one came from the cache
    assert sum(w.nbytes for w in cache._wavs.values()) <= cache.max_bytes
    assert len(cache._wavs) < len(paths)


def test_conf_errors_name_what_is_missing(corpus):
    with pytest.raises(ValueError, match="missing snrs.*unknown key.*snr"):
        DynamicMixer.from_conf({"noise_scp": str(corpus["train_pool"]), "snr": [0]}, 1)
    with pytest.raises(ValueError, match="noise pool not found"):
        DynamicMixer.from_conf({"noise_scp": str(corpus["root"] / "nope.scp"), "snrs": [0]}, 1)
    unset = mixer(corpus)
    with pytest.raises(RuntimeError, match="no epoch set"):
        unset("spk1_a", {"speech": corpus["noisy"]["spk1_a"],
                         "speech_ref1": corpus["clean"]["spk1_a"]})


# ---- through MeritTask, the way ESPnet builds and runs the data loaders ----

def task_args(corpus, *extra):
    from merit.tasks.merit_task import MeritTask

    args = ["--batch_type", "unsorted", "--batch_size", "2", "--seed", "3",
            "--frontend", "s3prl", "--frontend_conf", "upstream=fbank",
            "--dynamic_mixing", "true",
            "--dynamic_mixing_conf", f"noise_scp={corpus['train_pool']}",
            "--dynamic_mixing_conf", "snrs=[-5,0,5,10]"]
    data = corpus["data"]
    for mode in ("train", "valid"):
        args += [f"--{mode}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                 f"--{mode}_data_path_and_name_and_type", f"{data}/spk1.scp,speech_ref1,sound",
                 f"--{mode}_data_path_and_name_and_type", f"{data}/utt2emo,emotion,text",
                 f"--{mode}_shape_file", f"{data}/utt2num_samples"]
    return MeritTask.get_parser().parse_args(args + list(extra))


def loaded(factory, epoch):
    """{utt: (speech, speech_ref1)} of one epoch of an ESPnet iterator factory."""
    out = {}
    for utts, batch in factory.build_iter(epoch):
        for i, utt in enumerate(utts):
            n = int(batch["speech_lengths"][i])
            out[utt] = (batch["speech"][i, :n].numpy(), batch["speech_ref1"][i, :n].numpy())
    return out


def test_train_iterator_remixes_each_epoch_the_same_with_or_without_workers(corpus):
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
    from espnet2.train.distributed_utils import DistributedOption

    from merit.tasks.merit_task import MeritTask

    epochs = {}
    for workers in (0, 2):
        args = task_args(corpus, "--num_workers", str(workers))
        train = MeritTask.build_iter_factory(args, DistributedOption(), "train")
        for epoch in (1, 2):
            set_all_random_seed(args.seed + epoch + 100 * workers)  # global RNGs play no part
            epochs[workers, epoch] = loaded(train, epoch)
    utts = set(corpus["clean"])
    for key, pairs in epochs.items():
        assert set(pairs) == utts, key
        assert_drawn_snrs(pairs)
        for utt in utts:  # the stage-2 audio of wav.scp is replaced
            assert not np.allclose(pairs[utt][0], corpus["noisy"][utt], atol=1e-3), (key, utt)
    for utt in utts:
        for epoch in (1, 2):
            np.testing.assert_array_equal(epochs[0, epoch][utt][0], epochs[2, epoch][utt][0])
            np.testing.assert_array_equal(epochs[0, epoch][utt][1], epochs[2, epoch][utt][1])
        assert not np.array_equal(epochs[0, 1][utt][0], epochs[0, 2][utt][0])
    valid = loaded(MeritTask.build_iter_factory(args, DistributedOption(), "valid"), 1)
    for utt in utts:  # validation: the fixed mixtures, as read
        np.testing.assert_array_equal(valid[utt][0], corpus["noisy"][utt])
        np.testing.assert_array_equal(valid[utt][1], corpus["clean"][utt])


def test_valid_preprocess_leaves_speech_untouched(corpus):
    from merit.tasks.merit_task import EmotionPreprocessor, MeritTask, MixingPreprocessor

    args = task_args(corpus)
    speech = corpus["noisy"]["spk1_a"].copy()
    data = {"speech": speech, "speech_ref1": corpus["clean"]["spk1_a"].copy(),
            "emotion": "S"}
    valid = MeritTask.build_preprocess_fn(args, train=False)
    assert isinstance(valid, EmotionPreprocessor)
    out = valid("spk1_a", data)
    np.testing.assert_array_equal(out["speech"], corpus["noisy"]["spk1_a"])
    assert out["emotion"].tolist() == [1]
    assert isinstance(MeritTask.build_preprocess_fn(args, train=True), MixingPreprocessor)
    off = task_args(corpus, "--dynamic_mixing", "false")
    assert isinstance(MeritTask.build_preprocess_fn(off, train=True), EmotionPreprocessor)


def test_dumped_frontend_and_data_cache_are_refused(corpus):
    from merit.tasks.merit_task import MeritTask

    dumped = task_args(corpus, "--frontend", "dumped", "--output_dir", "unused")
    for build in (MeritTask.build_model, lambda a: MeritTask.build_preprocess_fn(a, train=True)):
        with pytest.raises(ValueError, match=r"dumped features.*--ssl_mode online"):
            build(dumped)
    with pytest.raises(SystemExit, match="dynamic_mixing: true cannot train on dumped"):
        MeritTask.check_required_command_args(dumped)
    cached = task_args(corpus, "--max_cache_size", "10MB")
    with pytest.raises(ValueError, match="set max_cache_size: 0"):
        MeritTask.build_preprocess_fn(cached, train=True)
