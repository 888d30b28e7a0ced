"""merit.compat: s3prl imports and runs on torchaudio >= 2.9; the stdout filter behind
the quiet imports (the imports themselves: test_quiet_imports.py); the lazy s3prl.hub."""
import importlib
import io
import json
import subprocess
import sys

import pytest
import torch
import torchaudio

import merit
from merit import compat


def test_s3prl_imports_after_merit():
    s3prl_hub = importlib.import_module("s3prl.hub")
    from s3prl.nn import S3PRLUpstream

    assert "fbank" in S3PRLUpstream.available_names()
    assert hasattr(s3prl_hub, "wavlm_local")


def test_set_audio_backend_accepts_any_name():
    removed = tuple(int(n) for n in torchaudio.__version__.split(".")[:2]) >= (2, 9)
    # the shim stands in only where torchaudio removed the function
    assert (torchaudio.set_audio_backend is compat._set_audio_backend) == removed
    if removed:
        assert torchaudio.set_audio_backend("sox_io") is None
        assert torchaudio.set_audio_backend("soundfile") is None


def test_sox_effects_importable_and_fails_loudly_when_removed():
    from torchaudio.sox_effects import apply_effects_tensor

    if not getattr(torchaudio.sox_effects, "merit_placeholder", False):
        assert callable(apply_effects_tensor)  # a torchaudio that still has sox effects
        return
    with pytest.raises(NotImplementedError, match="merit/compat.py"):
        apply_effects_tensor(torch.zeros(1, 160), 16000, [["gain", "-n"]])


@pytest.mark.parametrize("code", [
    # merit first: the import hook patches torchaudio when it is loaded
    "import sys, merit; assert 'torch' not in sys.modules; import torchaudio",
    # torchaudio first: importing merit patches it at once
    "import torchaudio, merit",
    # asking whether torchaudio exists (transformers does, at import) is not importing it
    "import importlib.util, merit; importlib.util.find_spec('torchaudio'); import torchaudio",
])
def test_patched_whichever_import_comes_first(code):
    check = code + "; assert callable(torchaudio.set_audio_backend); import torchaudio.sox_effects"
    res = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_apply_is_idempotent():
    before = (torchaudio.set_audio_backend, torchaudio.sox_effects)
    compat.apply()
    compat.apply()
    assert (torchaudio.set_audio_backend, torchaudio.sox_effects) == before


def test_real_s3prl_upstream_runs():
    """fbank needs no download: a real S3PRLUpstream forward pass through the shim."""
    from s3prl.nn import S3PRLUpstream

    upstream = S3PRLUpstream("fbank").eval()
    wavs = torch.randn(2, 16000)
    wavs_len = torch.tensor([16000, 8000])
    with torch.no_grad():
        hidden_states, hidden_lens = upstream(wavs, wavs_len)
    assert len(hidden_states) == upstream.num_layers
    assert hidden_states[0].shape[0] == 2
    assert hidden_states[0].shape[-1] == upstream.hidden_sizes[0]
    assert hidden_lens[0][0] > hidden_lens[0][1]
    assert merit.__version__


def test_line_filter_keeps_back_only_the_notice():
    out = io.StringIO()
    quiet = compat._LineFilter(out, compat.FLASH_NOTICE)
    print("before", file=quiet)
    print(compat.FLASH_NOTICE, "No module named 'flash_attn'", file=quiet)
    print("Failed to import something else", file=quiet)
    quiet.write("no newline yet")
    assert out.getvalue() == "before\nFailed to import something else\n"
    quiet.finish()
    assert out.getvalue().endswith("else\nno newline yet")
    assert quiet.getvalue == out.getvalue  # anything else is the real stream's


HUB_PROGRAM = r'''
import json, sys
import merit, s3prl.hub as hub
mode = sys.argv[1]
if mode == "fbank":
    entry = hub.fbank
    print(json.dumps([f"{entry.__module__}.{entry.__qualname__}",
                      sorted(m for m in sys.modules if m.endswith(".hubconf")),
                      [m for m in ("g2p_en", "espnet2.tasks.abs_task") if m in sys.modules]]))
elif mode == "listed":  # the real hub, run in full
    print(json.dumps({n: f"{getattr(hub, n).__module__}.{getattr(hub, n).__qualname__}"
                      for n in hub.options()}))
else:  # the same names, each looked up lazily before anything lists them
    names = json.loads(sys.stdin.read())
    print(json.dumps({n: f"{getattr(hub, n).__module__}.{getattr(hub, n).__qualname__}"
                      for n in names}))
'''


def _hub(mode, stdin=None):
    res = subprocess.run([sys.executable, "-c", HUB_PROGRAM, mode], input=stdin,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_lazy_hub_imports_only_the_family_of_the_entry():
    """``hub.fbank`` imports the baseline family alone: not ESPnet's training task (the
    12 s the hub cost every s3prl front-end), not tera's hubconf, which also names fbank."""
    entry, hubconfs, heavy = _hub("fbank")
    assert entry == "s3prl.upstream.baseline.hubconf.fbank"
    assert hubconfs == ["s3prl.upstream.baseline.hubconf"]
    assert heavy == []


def test_lazy_hub_holds_what_the_real_hub_holds():
    """Every entry s3prl lists, looked up one by one in a fresh interpreter, is the same
    function as in the real hub (the binding the hub's star imports leave last)."""
    listed = _hub("listed")
    assert len(listed) > 150
    assert _hub("lazy", json.dumps(sorted(listed))) == listed
