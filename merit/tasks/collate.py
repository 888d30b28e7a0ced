"""Batches of the joint task: utterances padded to the longest, with their lengths.

ESPnet's ``CommonCollateFn`` does the same, but its module imports ESPnet's text
front-ends (g2p_en, nltk, and with it an attempted nltk download): about 7 s of every
training start on 2 CPU cores, for nothing the joint task uses.
"""
from typing import Collection, Dict, List, Sequence, Tuple

import numpy as np
import torch


class PadCollate:
    """``[(utt, {name: array (length, ...)}), …]`` → ``(utts, {name: (B, max_length, ...),
    name_lengths: (B,)})``, as ESPnet's trainer expects.

    Float arrays are padded with ``float_pad``, integer arrays with ``int_pad``; the
    names in ``not_sequence`` (one value per utterance, e.g. a class label) get no
    ``_lengths``. A class, not a closure, so that DataLoader workers can pickle it.
    """

    def __init__(self, float_pad: float = 0.0, int_pad: int = -1,
                 not_sequence: Collection[str] = ()):
        self.float_pad, self.int_pad = float_pad, int_pad
        self.not_sequence = set(not_sequence)

    def __call__(self, items: Sequence[Tuple[str, Dict[str, np.ndarray]]]
                 ) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        utts = [utt for utt, _ in items]
        names = list(items[0][1])
        for utt, data in items:
            if set(data) != set(names):
                raise ValueError(f"utterance {utt} has data {sorted(data)}, "
                                 f"{utts[0]} has {sorted(names)}")
        batch = {}
        for name in names:
            arrays = [data[name] for _, data in items]
            pad = self.int_pad if arrays[0].dtype.kind == "i" else self.float_pad
            lengths = [a.shape[0] for a in arrays]
            padded = torch.full((len(arrays), max(lengths), *arrays[0].shape[1:]), pad,
                                dtype=torch.from_numpy(arrays[0][:0]).dtype)
            for i, array in enumerate(arrays):
                padded[i, :lengths[i]] = torch.from_numpy(array)
            batch[name] = padded
            if name not in self.not_sequence:
                batch[f"{name}_lengths"] = torch.tensor(lengths, dtype=torch.long)
        return utts, batch
