"""SE head (MaskSEHead) and SER head (AttentiveStatsSERHead)."""
import math

import pytest
import torch

from merit.models.abs_se_head import AbsSEHead
from merit.models.abs_ser_head import AbsSERHead
from merit.models.se_head import MaskSEHead, SEOutput, masked_l1_loss
from merit.models.ser_head import AttentiveStatsSERHead

HOP, BINS = 160, 201


def _small_se(input_size=8, upsample=2, **kwargs):
    torch.manual_seed(0)
    conf = dict(linear_size=16, blstm_size=12)
    conf.update(kwargs)
    return MaskSEHead(input_size, ssl_hop=HOP * upsample, **conf).eval()


def _waves(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(lengths), max(lengths))
    for b, n in enumerate(lengths):
        t = torch.arange(n) / 16000.0
        wave[b, :n] = 0.3 * torch.sin(2 * math.pi * (220 + 50 * b) * t) + 0.05 * torch.randn(n, generator=gen)
    return wave, torch.tensor(lengths)


def _ones_mask(head):
    with torch.no_grad():
        head.linear_out.weight.zero_()
        head.linear_out.bias.fill_(50.0)  # sigmoid(50) == 1 in float32


# ---- SE head ----------------------------------------------------------------------


def test_abstract_bases_cannot_be_built():
    for base in (AbsSEHead, AbsSERHead):
        with pytest.raises(TypeError):
            base()
    assert issubclass(MaskSEHead, AbsSEHead) and issubclass(AttentiveStatsSERHead, AbsSERHead)


@pytest.mark.parametrize("upsample", [1, 2])
@pytest.mark.parametrize("delta", [-2, -1, 1, 2])
def test_se_shapes_with_misaligned_features(upsample, delta):
    head = _small_se(upsample=upsample)
    wave, lengths = _waves([4000, 3201])
    frames = 1 + lengths // HOP  # 26, 21
    num_in = math.ceil(int(frames[0]) / upsample) + delta
    feats = torch.randn(2, num_in, 8)
    feat_lengths = torch.tensor([num_in, math.ceil(int(frames[1]) / upsample) + delta])
    out = head(feats, feat_lengths.clamp(max=num_in), wave, lengths)
    assert isinstance(out, SEOutput)
    for name in ("mask", "noisy_logmag", "enhanced_logmag", "noisy_spec"):
        assert getattr(out, name).shape == (2, 26, BINS), name
    assert out.noisy_spec.is_complex()
    assert out.frame_lengths.tolist() == frames.tolist()
    assert torch.all(out.mask[1, 21:] == 0) and torch.all((out.mask[0] > 0) & (out.mask[0] < 1))
    assert head.enhance(out).shape == (2, 4000)


def test_se_paper_defaults():
    head = MaskSEHead(input_size=32)
    assert (head.n_fft, head.win_length, head.hop_length, head.window) == (400, 400, 160, "hamming")
    assert head.linear_in.out_features == 256 and head.linear_out.out_features == BINS
    assert head.blstm.hidden_size == 256 and head.blstm.num_layers == 2 and head.blstm.bidirectional
    wave, lengths = _waves([3200])
    out = head(torch.randn(1, 10, 32), torch.tensor([10]), wave, lengths)
    assert out.mask.shape == (1, 21, BINS)


def test_repeat_alignment_repeats_then_cuts_or_pads_with_last_valid_frame():
    head = _small_se(input_size=1, upsample=2)
    feats = torch.arange(6.0).view(1, 6, 1).repeat(2, 1, 1)
    aligned = head.align_features(feats, torch.tensor([6, 3]), 9)
    assert aligned[0, :, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert aligned[1, :, 0].tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 2]


def test_frame_lengths_and_stft_match_torch_stft():
    head = _small_se()
    samples = torch.tensor([201, 320, 479, 480, 481, 16000])
    assert head.stft_frames(samples).tolist() == (1 + samples // HOP).tolist()
    wave, lengths = _waves([4000, 2345, 1000])
    spec = head._stft(wave, lengths)
    assert spec.shape == (3, 1 + 4000 // HOP, BINS)
    window = torch.hamming_window(400)
    for b, n in enumerate(lengths.tolist()):
        ref = torch.stft(wave[b, :n], 400, HOP, 400, window, center=True, return_complex=True).T
        assert ref.shape[0] == 1 + n // HOP
        torch.testing.assert_close(spec[b, : ref.shape[0]], ref, atol=1e-4, rtol=1e-5)


def test_all_ones_mask_reconstructs_noisy_waveform():
    head = _small_se()
    _ones_mask(head)
    wave, lengths = _waves([4000, 2345])
    out = head(torch.randn(2, 13, 8), torch.tensor([13, 8]), wave, lengths)
    assert torch.all(out.mask[0] == 1)
    enhanced = head.enhance(out)
    assert enhanced.shape == wave.shape
    torch.testing.assert_close(enhanced[0, 400:-400], wave[0, 400:-400], atol=1e-4, rtol=0)
    torch.testing.assert_close(enhanced[1, 400:2345 - 400], wave[1, 400:2345 - 400], atol=1e-4, rtol=0)
    assert torch.all(enhanced[1, 2345:] == 0)
    # the resynthesis is torch.istft on each utterance's own frames
    for b, n in enumerate(lengths.tolist()):
        frames = int(out.frame_lengths[b])
        ref = torch.istft(
            out.noisy_spec[b, :frames].T, 400, HOP, 400, torch.hamming_window(400), length=n
        )
        torch.testing.assert_close(enhanced[b, :n], ref, atol=1e-4, rtol=0)
    assert head.enhance(out, 1000).shape == (2, 1000)


def test_masked_l1_loss_on_hand_made_tensors():
    est = torch.zeros(2, 3, 4)
    ref = torch.zeros(2, 3, 4)
    ref[0, 0] = 1.0  # 4 bins off by 1
    ref[0, 1, 0] = -2.0  # 1 bin off by 2
    ref[1, 0, :2] = 0.5  # 2 bins off by 0.5
    ref[0, 2] = 100.0  # padding of utterance 0 (length 2): ignored
    ref[1, 1:] = -7.0  # padding of utterance 1 (length 1): ignored
    loss = masked_l1_loss(est, ref, torch.tensor([2, 1]))
    # valid bins: (2 + 1) frames * 4 bins = 12; total error 4 + 2 + 1 = 7
    assert loss.item() == pytest.approx(7.0 / 12.0)
    assert masked_l1_loss(ref, ref, torch.tensor([3, 3])).item() == 0.0


def test_se_loss_is_zero_for_clean_equal_to_enhanced_and_ignores_padding():
    head = _small_se()
    _ones_mask(head)
    wave, lengths = _waves([4000, 2345])
    out = head(torch.randn(2, 13, 8), torch.tensor([13, 8]), wave, lengths)
    assert head.loss(out, wave, lengths).item() < 1e-6
    garbage = wave.clone()
    garbage[1, 2345:] = 5.0  # beyond the clean length: must not matter
    assert head.loss(out, garbage, lengths).item() < 1e-6
    assert head.loss(out, 0.5 * wave, lengths).item() > 1e-2


def test_padded_batch_matches_single_utterance():
    head = _small_se()
    wave, lengths = _waves([4000, 2345])
    feats = torch.randn(2, 13, 8)
    feat_lengths = torch.tensor([13, 8])
    wave[1, 2345:] = 0.7  # padding content must not leak
    feats[1, 8:] = 3.0
    batch = head(feats, feat_lengths, wave, lengths)
    alone = head(feats[1:, :8], feat_lengths[1:], wave[1:, :2345], lengths[1:])
    n = int(alone.frame_lengths[0])
    assert int(batch.frame_lengths[1]) == n
    for name in ("mask", "noisy_logmag", "enhanced_logmag"):
        torch.testing.assert_close(getattr(batch, name)[1, :n], getattr(alone, name)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(head.enhance(batch)[1, :2345], head.enhance(alone)[0], atol=1e-5, rtol=0)


def test_gradients_reach_features():
    head = _small_se().train()
    wave, lengths = _waves([4000, 2345])
    feats = torch.randn(2, 13, 8, requires_grad=True)
    out = head(feats, torch.tensor([13, 8]), wave, lengths)
    head.loss(out, 0.8 * wave, lengths).backward()
    assert feats.grad is not None and feats.grad[0].abs().sum() > 0 and feats.grad[1, :8].abs().sum() > 0
    assert torch.all(feats.grad[1, 8:] == 0)  # padded features are never used
    assert all(p.grad is not None for p in head.parameters())


# ---- SER head ---------------------------------------------------------------------


def test_ser_shapes_and_defaults():
    head = AttentiveStatsSERHead(input_size=10)
    assert head.num_classes == 4
    assert head.classifier[1].in_features == 20 and head.classifier[1].out_features == 1024
    assert head.attention[0].out_features == 128
    logits = head(torch.randn(3, 9, 10), torch.tensor([9, 4, 1]))
    assert logits.shape == (3, 4)
    assert AttentiveStatsSERHead(10, num_classes=7)(torch.randn(2, 5, 10), torch.tensor([5, 3])).shape == (2, 7)


def test_ser_padding_does_not_change_logits():
    torch.manual_seed(0)
    head = AttentiveStatsSERHead(input_size=10).eval()
    feats = torch.randn(2, 12, 10)
    lengths = torch.tensor([12, 5])
    feats[1, 5:] = float("nan")  # padding may hold anything
    batch = head(feats, lengths)
    alone = head(feats[1:, :5], lengths[1:])
    torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[0], head(feats[:1], lengths[:1])[0], atol=1e-5, rtol=0)


def test_ser_attention_weights_sum_to_one_over_valid_frames():
    torch.manual_seed(0)
    head = AttentiveStatsSERHead(input_size=6)
    feats = torch.randn(3, 8, 6)
    lengths = torch.tensor([8, 3, 1])
    weights = head.attention_weights(feats, lengths)
    assert weights.shape == (3, 8)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert torch.all(weights[1, 3:] == 0) and torch.all(weights[2, 1:] == 0)
    assert weights[2, 0].item() == pytest.approx(1.0)
    pooled, _ = head.pool(feats, lengths)
    assert pooled.shape == (3, 12)
    # one frame: the mean is the frame and the std is the floor sqrt(1e-6)
    torch.testing.assert_close(pooled[2, :6], feats[2, 0])
    torch.testing.assert_close(pooled[2, 6:], torch.full((6,), 1e-3))


def test_ser_overfits_small_set_with_dropout_active():
    """Trained in train mode (dropout 0.5 active); accuracy measured in eval mode."""
    torch.manual_seed(0)
    feats = torch.randn(8, 20, 16)
    lengths = torch.tensor([20, 17, 12, 9, 20, 5, 14, 11])
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    head = AttentiveStatsSERHead(input_size=16, num_classes=4)
    optim = torch.optim.Adam(head.parameters(), lr=1e-3)
    head.train()
    for step in range(200):
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(feats, lengths), labels)
        loss.backward()
        optim.step()
        with torch.no_grad():
            head.eval()
            accuracy = (head(feats, lengths).argmax(-1) == labels).float().mean().item()
            head.train()
        if accuracy == 1.0:
            break
    assert accuracy == 1.0, f"accuracy {accuracy} after {step + 1} steps"
