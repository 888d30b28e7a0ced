"""A bidirectional LSTM whose output for a sequence does not depend on the batch it
runs in: decoding an utterance alone or among others gives the same bits.

``torch.nn.LSTM`` over a packed batch multiplies, at each step, as many rows as
sequences still running, and CPU matrix products sum in an order that depends on the
number of rows: with torch 2.9.1's MKL 2024.2 (AVX2), products of 1, of 2-3 and of 4 or
more rows are three different kernels, while a row of a product of 4 or more rows is
the same whatever their number (measured, on an AMD EPYC too; ``test_batch_invariant_lstm``
checks this LSTM at three sizes and ``test_batched_decoding`` the whole decode, bit for
bit). So an utterance decoded alone (one row per step) came out up to 1.2e-7 away from
the same utterance in a batch.

Here each direction of each layer runs as a one-direction LSTM over the padded batch,
every step on the same rows (a sequence's frames past its length are computed and
thrown away, as they never feed a valid frame: the backward direction reads each
sequence reversed within its own length), and the batch is topped up with zero rows to
``MIN_ROWS``. An utterance alone thus costs ``MIN_ROWS`` rows per step instead of one.
Measured on one CPU thread, eval mode, against the packed ``nn.LSTM``: the paper's SE
head (256 units, 2 layers) decodes 2 s utterances alone at 14.1 instead of 19.1 utt/s
and in a batch of 30 of similar length at 51.6 instead of 48.2 utt/s; the mini
recipe's model (64 units) decodes its test set faster both ways (60.5 instead of 36.0
utt/s alone, 109 instead of 100 in 60 s batches), the packing costing more there than
the extra rows.

The result is the packed ``nn.LSTM``'s up to rounding; ``MaskSEHead`` trains with the
packed one (fused, cuDNN's on a GPU) and runs this one in eval mode (decoding, and
validation in training). GPU kernels were not
measured here: there, batches may still differ from one-at-a-time in the last bit.
"""
import torch

from merit.models.pad_mask import valid_mask

#: Rows of every matrix product a step makes (see the module's docstring).
MIN_ROWS = 4


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, F) with each sequence's first ``lengths[b]`` frames in reverse order and
    its padding left in place; its own inverse."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return torch.gather(x, 1, source[:, :, None].expand_as(x))


def one_direction(lstm: torch.nn.LSTM, x: torch.Tensor, layer: int, backward: bool) -> torch.Tensor:
    """(B, T, hidden) outputs of one direction of one layer of ``lstm`` over ``x``
    (B, T, F), from zero states, every sequence stepped through all T frames."""
    suffix = f"l{layer}{'_reverse' if backward else ''}"
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if lstm.bias else [])
    weights = [getattr(lstm, f"{name}_{suffix}") for name in names]
    zeros = x.new_zeros(1, x.size(0), lstm.hidden_size)
    output, _, _ = torch.lstm(x, (zeros, zeros), weights, lstm.bias, 1, 0.0, False, False, True)
    return output


def batch_invariant_blstm(lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """What ``lstm`` (bidirectional, batch_first, no projection, eval mode) gives for
    the padded batch ``x`` (B, T, F) with ``lengths`` (B,) valid frames: (B, T, 2H),
    zero at padded frames, each sequence's frames independent of the rest of the batch.
    """
    if not (lstm.bidirectional and lstm.batch_first) or lstm.proj_size or lstm.training:
        raise ValueError("batch_invariant_blstm needs a bidirectional, batch_first LSTM "
                         "without projection, in eval mode")
    batch, num_frames, _ = x.shape
    lengths = lengths.to(x.device).long()
    filler = max(0, MIN_ROWS - batch)
    if filler:
        x = torch.cat([x, x.new_zeros(filler, num_frames, x.size(2))])
        lengths = torch.cat([lengths, lengths.new_ones(filler)])
    for layer in range(lstm.num_layers):
        forward = one_direction(lstm, x, layer, backward=False)
        backward = reverse_within(one_direction(lstm, reverse_within(x, lengths), layer,
                                                backward=True), lengths)
        x = torch.cat([forward, backward], dim=-1)
    padding = ~valid_mask(lengths, num_frames, x.device)
    return x.masked_fill(padding[:, :, None], 0.0)[:batch]
