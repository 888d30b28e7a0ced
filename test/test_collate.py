"""merit.tasks.collate.PadCollate: padded batches with lengths, as ESPnet's trainer expects."""
import numpy as np
import pytest
import torch

from merit.tasks.collate import PadCollate


def test_pads_to_the_longest_and_keeps_dtypes():
    items = [
        ("utt1", {"speech": np.array([1.0, 2.0, 3.0], dtype=np.float32),
                  "feats": np.ones((2, 3, 4), dtype=np.float16),
                  "emotion": np.array([2], dtype=np.int64)}),
        ("utt2", {"speech": np.array([4.0, 5.0, 6.0, 7.0, 8.0], dtype=np.float32),
                  "feats": np.full((1, 3, 4), 2, dtype=np.float16),
                  "emotion": np.array([0], dtype=np.int64)}),
    ]
    utts, batch = PadCollate(float_pad=0.0, int_pad=-1, not_sequence=["emotion"])(items)
    assert utts == ["utt1", "utt2"]
    assert set(batch) == {"speech", "speech_lengths", "feats", "feats_lengths", "emotion"}
    assert batch["speech"].tolist() == [[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]
    assert batch["speech_lengths"].tolist() == [3, 5]
    assert batch["speech_lengths"].dtype == torch.long
    assert batch["feats"].shape == (2, 2, 3, 4) and batch["feats"].dtype == torch.float16
    assert batch["feats"][1, 0].eq(2).all() and batch["feats"][1, 1].eq(0).all()
    assert batch["feats_lengths"].tolist() == [2, 1]
    assert batch["emotion"].tolist() == [[2], [0]] and batch["emotion"].dtype == torch.int64


def test_integer_sequences_are_padded_with_int_pad():
    items = [("a", {"tokens": np.array([5, 6], dtype=np.int64)}),
             ("b", {"tokens": np.array([7], dtype=np.int64)})]
    _, batch = PadCollate(int_pad=-1)(items)
    assert batch["tokens"].tolist() == [[5, 6], [7, -1]]


def test_utterances_with_other_data_are_named():
    items = [("a", {"speech": np.zeros(2, dtype=np.float32)}),
             ("b", {"speech": np.zeros(2, dtype=np.float32), "emotion": np.array([1])})]
    with pytest.raises(ValueError, match="utterance b has data"):
        PadCollate()(items)
