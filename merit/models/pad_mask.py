"""The padding mask of a batch of sequences, shared by every module of the model."""
import torch


def valid_mask(lengths: torch.Tensor, max_len: int, device=None) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True at positions t < lengths[b].

    Like ESPnet's ``make_pad_mask`` negated: True marks the valid frames, not the
    padding. ``device`` defaults to the device of ``lengths``.
    """
    device = lengths.device if device is None else device
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]
