"""batch_invariant_blstm: the packed nn.LSTM's output up to rounding, zero at padding,
and each sequence's frames the same bits alone as in any batch."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from merit.models.batch_invariant_lstm import batch_invariant_blstm, reverse_within

LENGTHS = [37, 5, 80, 1, 64, 80, 12]


def make_lstm(input_size, hidden_size, layers=2, bias=True):
    torch.manual_seed(0)
    return torch.nn.LSTM(input_size, hidden_size, num_layers=layers, bias=bias,
                         batch_first=True, bidirectional=True).eval()


def sequences(input_size, lengths=LENGTHS):
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(n, input_size, generator=gen) for n in lengths]


def run(lstm, seqs):
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        return batch_invariant_blstm(lstm, pad_sequence(seqs, batch_first=True), lengths)


def packed(lstm, seqs):
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        out, _ = lstm(pack_padded_sequence(pad_sequence(seqs, batch_first=True), lengths,
                                           batch_first=True, enforce_sorted=False))
    return pad_packed_sequence(out, batch_first=True)[0]


@pytest.mark.parametrize("layers,bias", [(2, True), (1, False)])
def test_it_computes_what_the_packed_lstm_computes(layers, bias):
    lstm = make_lstm(6, 10, layers, bias)
    seqs = sequences(6)
    out, ref = run(lstm, seqs), packed(lstm, seqs)
    assert out.shape == ref.shape == (len(seqs), max(LENGTHS), 20)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    for b, n in enumerate(LENGTHS):
        assert not out[b, n:].any()  # padding is zero, as pad_packed_sequence leaves it


@pytest.mark.parametrize("input_size,hidden_size", [(16, 16), (80, 64), (40, 256)])
def test_each_sequence_is_the_same_bits_alone_and_in_any_batch(input_size, hidden_size):
    """The tiny model's, the mini recipe's and the paper's BLSTM sizes; batches of 2
    and 3 (topped up with zero rows), 7 and 7 in another order."""
    lstm = make_lstm(input_size, hidden_size)
    seqs = sequences(input_size)
    alone = [run(lstm, [s])[0] for s in seqs]
    for order in ([0, 1], [2, 3, 4], list(range(7)), [6, 2, 5, 0, 3, 1, 4]):
        out = run(lstm, [seqs[i] for i in order])
        for row, i in enumerate(order):
            assert torch.equal(out[row, :LENGTHS[i]], alone[i]), (order, i)


def test_reverse_within_keeps_padding_in_place_and_undoes_itself():
    x = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([3, 5])
    assert reverse_within(x, lengths)[:, :, 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_within(reverse_within(x, lengths), lengths), x)


def test_training_mode_and_one_direction_are_refused():
    x, lengths = torch.zeros(1, 3, 4), torch.tensor([3])
    with pytest.raises(ValueError, match="eval mode"):
        batch_invariant_blstm(make_lstm(4, 4).train(), x, lengths)
    one_way = torch.nn.LSTM(4, 4, batch_first=True).eval()
    with pytest.raises(ValueError, match="bidirectional"):
        batch_invariant_blstm(one_way, x, lengths)
