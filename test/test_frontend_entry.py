"""A named s3prl upstream with a checkpoint loads that checkpoint, not s3prl's download."""
import pytest
import torch

from merit.models.frontend import HubEntries, S3PRLFrontend, s3prl_entry
from tiny_wavlm import make_tiny_wavlm


@pytest.fixture(scope="module", params=["lazy", "listed"])
def available(request):
    """The hub's entries as S3PRLFrontend asks for them, and as s3prl lists them."""
    if request.param == "lazy":
        return HubEntries()
    from s3prl.nn import S3PRLUpstream

    return S3PRLUpstream.available_names()


@pytest.mark.parametrize("upstream, ckpt, entry", [
    ("wavlm_large", "/data/wavlm_large.pt", "wavlm_local"),
    ("wavlm_base_plus", "https://example.org/wavlm.pt", "wavlm_url"),
    ("hubert_large_ll60k", "/data/hubert.pt", "hubert_local"),
    ("unispeech_sat_large", "/data/usat.pt", "unispeech_sat_local"),  # the longest family
    ("wavlm_local", "/data/wavlm_large.pt", "wavlm_local"),
    ("hubert_custom", "/data/hubert.pt", "hubert_custom"),
    ("wavlm_large", None, "wavlm_large"),
    ("fbank", None, "fbank"),
])
def test_entry_for_upstream_and_checkpoint(upstream, ckpt, entry, available):
    assert s3prl_entry(upstream, ckpt, available) == entry


def test_an_upstream_without_a_checkpoint_loader_is_an_error(available):
    with pytest.raises(ValueError, match="upstream fbank takes no checkpoint .*/data/x.pt.*fbank_local"):
        s3prl_entry("fbank", "/data/x.pt", available)


def test_wavlm_large_with_a_local_file_loads_the_file(tmp_path):
    ckpt = str(make_tiny_wavlm(tmp_path / "tiny.pt"))
    named = S3PRLFrontend("wavlm_large", path_or_url=ckpt).eval()
    local = S3PRLFrontend("wavlm_local", path_or_url=ckpt).eval()
    assert named.num_layers == 3 and named.hidden_size == 32  # the tiny model, not Large
    wav = torch.randn(1, 8000) * 0.1
    lengths = torch.tensor([8000])
    with torch.no_grad():
        assert torch.equal(named(wav, lengths)[0], local(wav, lengths)[0])
