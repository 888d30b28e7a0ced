"""Stage 5 decodes in length-sorted batches: ``Speech2Merit.batch`` gives each utterance
what one-at-a-time decoding gives, bit for bit, in the order of its input, and
merit_inference cuts a job's share into batches under ``--batch_seconds`` without
changing the job split or a byte of what it writes.

The padding is masked everywhere after the frontend, the SE head's BLSTM runs every
utterance on the same rows alone or in a batch (``batch_invariant_lstm``), and the SER
head classifies each utterance over its own frames. Before that, the same utterance
came out up to 1.2e-7 apart.
"""
from pathlib import Path

import numpy as np
import pytest

from merit.batching import consecutive_batches, length_batches
from merit.bin import merit_inference
from merit.data.audio_io import SAMPLE_RATE, read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.models.frontend import load_dumped
from merit.utils.job_parts import job_utterances


@pytest.fixture(scope="module")
def speech2merit(tiny_model):
    return Speech2Merit(tiny_model)


@pytest.fixture(scope="module")
def utterances(tiny_data):
    """(ids, {id: noisy}, {id: dumped feats}): six dev utterances of different lengths,
    with a 0.3 s cut of one and three of them joined into one several times longer."""
    wav = read_kv(tiny_data / "data" / "dev_noisy" / "wav.scp")
    feats = read_kv(tiny_data / "dump" / "dev_noisy" / "feats.scp")
    utts = sorted(wav)[:6]
    noisy = {utt: read_audio(wav[utt]) for utt in utts}
    dumped = {utt: load_dumped(feats[utt]) for utt in utts}
    noisy["short"] = noisy[utts[0]][:int(0.3 * SAMPLE_RATE)]
    noisy["long"] = np.concatenate([noisy[utt] for utt in utts[1:4]])
    assert len(noisy["long"]) > 8 * len(noisy["short"])
    return utts + ["short", "long"], noisy, dumped


def assert_same(batched, single):
    """Two MeritResults of one utterance are the same bits."""
    assert batched.enhanced.tobytes() == single.enhanced.tobytes()
    assert batched.posteriors.tobytes() == single.posteriors.tobytes()
    assert batched.expert_usage.keys() == single.expert_usage.keys()
    for task, usage in single.expert_usage.items():
        assert batched.expert_usage[task].tobytes() == usage.tobytes()


def test_a_batch_gives_each_utterance_its_one_at_a_time_result(speech2merit, utterances):
    utts, noisy, _ = utterances
    single = {utt: speech2merit(noisy[utt]) for utt in utts}
    results = speech2merit.batch([noisy[utt] for utt in utts])  # very different lengths
    assert len(results) == len(utts)
    for utt, result in zip(utts, results):
        assert_same(result, single[utt])
    assert speech2merit.batch([noisy["long"]])[0].enhanced.tobytes() == \
        single["long"].enhanced.tobytes()  # __call__ is a batch of one


def test_a_batch_with_dumped_feats_gives_what_online_features_give(speech2merit, utterances):
    """The same batch from the dumped features and from audio alone: equal bit for bit,
    since the online features are rounded to the dump's float16 as dump_ssl did."""
    utts, noisy, dumped = utterances
    ids = [utt for utt in utts if utt in dumped]
    from_dump = speech2merit.batch([noisy[utt] for utt in ids], [dumped[utt] for utt in ids])
    online = speech2merit.batch([noisy[utt] for utt in ids])
    for a, b in zip(from_dump, online):
        assert_same(a, b)


def test_results_follow_the_input_order(speech2merit, utterances):
    utts, noisy, _ = utterances
    order = ["long", utts[2], "short", utts[0]]  # neither sorted nor reverse-sorted
    single = {utt: speech2merit(noisy[utt]) for utt in order}
    for utt, result in zip(order, speech2merit.batch([noisy[utt] for utt in order])):
        assert_same(result, single[utt])


def test_length_batches_keep_the_bound_and_every_utterance_once():
    lengths = {f"u{i:02d}": n for i, n in enumerate([5, 40, 7, 7, 12, 100, 3, 33, 8, 61])}
    batches = length_batches(lengths, max_samples=60)
    assert sorted(utt for batch in batches for utt in batch) == sorted(lengths)
    flat = [lengths[utt] for batch in batches for utt in batch]
    assert flat == sorted(flat, reverse=True)  # longest first
    for batch in batches:
        padded = len(batch) * max(lengths[utt] for utt in batch)
        assert padded <= 60 or len(batch) == 1
    assert [len(b) for b in batches] == [1, 1, 1, 1, 5, 1]  # 12 x 5 = 60 fits, 12 x 6 not
    assert length_batches(lengths, 0) == [[utt] for batch in batches
                                                          for utt in batch]
    assert length_batches({"b": 4, "a": 4, "c": 4}, 8) == [["a", "b"], ["c"]]


def test_consecutive_batches_keep_the_order_and_the_bound():
    lengths = [5, 20, 7, 7, 12, 100, 3, 33, 8, 61]
    batches = consecutive_batches(lengths, max_samples=60)
    assert [i for batch in batches for i in batch] == list(range(10))  # the input order
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= 60 or len(batch) == 1
    # 5, 20, 7: 3 x 20 fits, a second 7 would make 4 x 20; 7, 12: 2 x 12; 100 alone;
    # 3, 33: 2 x 33 does not fit, nor 33, 8; 61 alone
    assert batches == [[0, 1, 2], [3, 4], [5], [6], [7], [8], [9]]
    assert consecutive_batches(lengths, 0) == [[i] for i in range(10)]


def decode_set(tiny_model, data_dir, out, *options):
    assert merit_inference.main(["--model_dir", str(tiny_model), "--data_dir", str(data_dir),
                                 "--out_dir", str(out), *options]) == 0


def test_merit_inference_batched_matches_one_at_a_time_and_keeps_the_job_split(
        tiny_model, tiny_data, tmp_path):
    dev = tiny_data / "data" / "dev_noisy"
    decode_set(tiny_model, dev, tmp_path / "single", "--batch_seconds", "0")
    for job in (1, 2):
        decode_set(tiny_model, dev, tmp_path / "batched", "--batch_seconds", "5",
                   "--num_jobs", "2", "--job", str(job))
    wav = read_kv(dev / "wav.scp")
    for job in (1, 2):  # each part decodes the utterances the job split gives it
        part = read_kv(tmp_path / "batched" / f"job{job}of2" / "utt2emo_hyp")
        assert sorted(part) == sorted(job_utterances(wav, job, 2))
    decode_set(tiny_model, dev, tmp_path / "batched", "--num_jobs", "2", "--merge", "true")
    single, batched = tmp_path / "single", tmp_path / "batched"
    for name in ("utt2emo_hyp", "utt2expert_usage_se", "utt2expert_usage_ser", "classes"):
        assert (batched / name).read_text() == (single / name).read_text()
    for name in ("utt2posteriors", "enhanced.scp"):
        assert (batched / name).read_text().replace(str(batched), str(single)) == \
            (single / name).read_text()
    for utt, path in read_kv(single / "enhanced.scp").items():
        assert (batched / "enhanced" / f"{utt}.wav").read_bytes() == Path(path).read_bytes()


def test_a_negative_batch_bound_is_refused(tiny_model, tiny_data, tmp_path, capsys):
    assert merit_inference.main(["--model_dir", str(tiny_model), "--data_dir",
                                 str(tiny_data / "data" / "dev_noisy"), "--out_dir",
                                 str(tmp_path), "--batch_seconds", "-1"]) == 1
    assert "--batch_seconds must be 0" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sparse", "dense", "shared"])
def test_expert_usage_per_utterance_is_what_a_batch_of_one_gives(kind):
    """Each MoE variant's per-utterance usage in a padded batch equals its
    ``expert_fraction`` for the utterance alone."""
    import torch

    from merit.inference import expert_usage
    from merit.models.moe import DenseMoE, SharedMLP, SparseMoE
    from merit.models.pad_mask import valid_mask

    torch.manual_seed(0)
    sizes = dict(tasks=("se", "ser"), hidden_size=8, output_size=4)
    moe = {"sparse": lambda: SparseMoE(6, num_experts=3, top_k=2, **sizes),
           "dense": lambda: DenseMoE(6, num_experts=3, **sizes),
           "shared": lambda: SharedMLP(6, **sizes)}[kind]().eval()
    lengths = torch.tensor([7, 2, 11])
    x = torch.randn(3, 11, 6) * valid_mask(lengths, 11)[..., None]
    with torch.no_grad():
        usage = expert_usage(moe(x, valid_mask(lengths, 11)), lengths)
        for b, n in enumerate(lengths.tolist()):
            alone = moe(x[b:b + 1, :n]).expert_fraction
            for task in ("se", "ser"):
                np.testing.assert_array_equal(usage[task][b], alone[task].numpy())
