"""The SE head gives each STFT frame the SSL frame centred nearest to it, and its mask
domains and floor do what the config says.

An SSL frame t is centred at ``ssl_offset + t * ssl_hop`` samples, a centred STFT frame
n at ``n * hop_length``; before ``alignment: centres`` the head took frame n // 2 for
WavLM (about 12.5 ms off) and frame n for 10 ms features (200 samples off).
"""
import pytest
import torch

from merit.models.frontend import S3PRLFrontend
from merit.models.se_head import MaskSEHead

HOP = 160


def _head(alignment="centres", ssl_hop=320, ssl_offset=200, **conf):
    torch.manual_seed(0)
    return MaskSEHead(1, ssl_hop=ssl_hop, ssl_offset=ssl_offset, alignment=alignment,
                      linear_size=8, blstm_size=4, **conf).eval()


def _receivers(head, t0, num_in=40, num_frames=70):
    """STFT frames that receive a one-frame impulse at SSL frame t0."""
    feats = torch.zeros(1, num_in, 1)
    feats[0, t0, 0] = 1.0
    aligned = head.align_features(feats, torch.tensor([num_in]), num_frames)
    return torch.nonzero(aligned[0, :, 0]).flatten().tolist()


@pytest.mark.parametrize("ssl_hop, expected", [
    (320, lambda t0: [2 * t0 + 1, 2 * t0 + 2]),  # WavLM: centre 320 t0 + 200 lies at STFT frame 2 t0 + 1.25
    (160, lambda t0: [t0 + 1]),                  # fbank: centre 160 t0 + 200 lies at STFT frame t0 + 1.25
    (480, lambda t0: [3 * t0, 3 * t0 + 1, 3 * t0 + 2]),  # 30 ms frames: centre at STFT frame 3 t0 + 1.25
])
@pytest.mark.parametrize("t0", [3, 10, 17])
def test_impulse_reaches_the_stft_frames_centred_nearest_to_it(ssl_hop, expected, t0):
    head = _head(ssl_hop=ssl_hop)
    receivers = _receivers(head, t0)
    assert receivers == expected(t0)
    centre = 200 + t0 * ssl_hop
    assert all(abs(n * HOP - centre) <= ssl_hop / 2 for n in receivers)


def test_waveform_impulse_lands_on_its_own_stft_frame_through_real_fbank():
    """A click at sample 8000 through s3prl's fbank upstream: the aligned feature frame
    with the click's energy is the STFT frame centred on the click (8000 / 160 = 50)."""
    frontend = S3PRLFrontend("fbank", layers=[0])
    assert (frontend.downsample_rate, frontend.frame_offset) == (160, 200)
    wave = torch.zeros(1, 16000)
    wave[0, 8000] = 1.0
    with torch.no_grad():
        feats, lengths = frontend(wave, torch.tensor([16000]))
    mel = feats[:, :, 0, :80]  # the static log-mel part, before deltas
    energy_per_ssl = mel[0].exp().sum(-1)
    head = _head(ssl_hop=frontend.downsample_rate, ssl_offset=frontend.frame_offset)
    aligned = head.align_features(mel, lengths, 1 + 16000 // HOP)
    energy = aligned[0].exp().sum(-1)
    assert int(energy.argmax()) == 50
    assert int(energy_per_ssl.argmax()) == 49  # frame 49 covers samples 7840..8240


def test_repeat_alignment_is_kept_for_models_trained_before_the_fix():
    head = _head(alignment="repeat")
    assert _receivers(head, 5) == [10, 11]
    assert MaskSEHead(1).alignment == "repeat"  # a config without the key
    with pytest.raises(ValueError, match="alignment: centres"):
        MaskSEHead(1, ssl_hop=480, hop_length=320, alignment="repeat")


def _waves(seed=0, n=4000):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000.0
    clean = 0.3 * torch.sin(2 * torch.pi * 300 * t)[None]
    noise = 0.1 * torch.randn(1, n, generator=gen)
    return clean, clean + noise, torch.tensor([n])


@pytest.mark.parametrize("domain", ["log1p", "magnitude"])
def test_all_ones_mask_gives_back_the_noisy_input_in_either_domain(domain):
    head = _head(mask_domain=domain)
    with torch.no_grad():
        head.linear_out.weight.zero_()
        head.linear_out.bias.fill_(50.0)
        _, noisy, lengths = _waves()
        out = head(torch.zeros(1, 13, 1), torch.tensor([13]), noisy, lengths)
        torch.testing.assert_close(out.enhanced_logmag, out.noisy_logmag)
        torch.testing.assert_close(head.enhance(out), noisy, atol=1e-4, rtol=0)


def test_magnitude_domain_scales_the_linear_magnitude():
    head = _head(mask_domain="magnitude")
    logmag = torch.log1p(torch.tensor([[[3.0, 0.0, 10.0]]]))
    mask = torch.tensor([[[0.5, 0.5, 0.1]]])
    torch.testing.assert_close(torch.expm1(head.apply_mask(mask, logmag)),
                               torch.tensor([[[1.5, 0.0, 1.0]]]))
    log1p_head = _head(mask_domain="log1p")
    torch.testing.assert_close(log1p_head.apply_mask(mask, logmag), mask * logmag)


def test_mask_floor_bounds_the_predicted_and_the_ideal_mask():
    head = _head(mask_floor=0.2)
    with torch.no_grad():
        head.linear_out.weight.zero_()
        head.linear_out.bias.fill_(-50.0)
        _, noisy, lengths = _waves()
        out = head(torch.zeros(1, 13, 1), torch.tensor([13]), noisy, lengths)
    assert torch.allclose(out.mask, torch.full_like(out.mask, 0.2))
    spec = torch.tensor([[[1.0 + 0j, 2.0, 0.0]]])
    ideal = head.ideal_mask(spec, torch.tensor([[[0.0 + 0j, 4.0, 1.0]]]))
    torch.testing.assert_close(ideal, torch.tensor([[[0.2, 1.0, 0.2]]]))
    with pytest.raises(ValueError, match="mask_floor"):
        _head(mask_floor=1.0)


@pytest.mark.parametrize("domain", ["log1p", "magnitude"])
def test_oracles_of_a_clean_input_give_back_the_clean_input(domain):
    head = _head(mask_domain=domain)
    clean, _, lengths = _waves()
    out = head.oracle_outputs(clean, clean, lengths)
    for name in ("oracle_mask", "oracle_magnitude"):
        torch.testing.assert_close(out[name], clean, atol=1e-4, rtol=0)
