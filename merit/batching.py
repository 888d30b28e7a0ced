"""How decoding cuts utterances into batches for ``Speech2Merit.batch``, which gives
each utterance the same bits at any batch size: only speed and memory depend on the
bound. The bound is in samples of padded audio: utterances x the longest."""
from typing import Dict, List, Sequence

from merit.data.datadir import c_sorted

#: Default bound, in seconds (merit_inference's ``--batch_seconds``, merit.sh's
#: ``--decode_batch_size``, merit-infer's ``--batch_seconds``). On one CPU thread
#: the mini recipe's model decodes its test set (160 utterances of about 2 s) at 60 utt/s
#: one at a time and 98-109 utt/s with batches of 30, 60 or 120 s (the SE head's BLSTM,
#: most of the time, steps through the frames once per batch instead of once per
#: utterance); 60 s also fills a GPU better and stays small there: a WavLM Large model's
#: batch holds 3000 frames of 25 x 1024 features, 300 MB in float32.
DEFAULT_BATCH_SECONDS = 60.0


def length_batches(lengths: Dict[str, int], max_samples: int) -> List[List[str]]:
    """The utterances of ``lengths`` (samples), longest first (ties in C order), cut into
    batches whose padded size (utterances x the longest) is at most ``max_samples``; an
    utterance longer than that is a batch of its own. Longest first, so that a batch too
    large for the device fails at once, not at the end of a job."""
    order = sorted(c_sorted(lengths), key=lambda utt: -lengths[utt])
    batches: List[List[str]] = []
    for utt in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_samples:
            batches[-1].append(utt)
        else:
            batches.append([utt])
    return batches


def consecutive_batches(lengths: Sequence[int], max_samples: int) -> List[List[int]]:
    """Indices of ``lengths`` (samples) in their order, cut into runs of consecutive
    items whose padded size (items x the longest) is at most ``max_samples``; an item
    longer than that is a run of its own. For outputs that follow the input order."""
    batches: List[List[int]] = []
    longest = 0
    for index, length in enumerate(lengths):
        if batches and (len(batches[-1]) + 1) * max(longest, length) <= max_samples:
            batches[-1].append(index)
            longest = max(longest, length)
        else:
            batches.append([index])
            longest = length
    return batches
