"""Compatibility shim: lets s3prl 0.4.18 import on torchaudio 2.9 and later.

torchaudio 2.9 removed ``torchaudio.set_audio_backend`` and the
``torchaudio.sox_effects`` module. s3prl calls the former at import time
(``s3prl.dataio.dataset.load_audio``) and imports the latter in some upstream
experts, so ``import s3prl.hub`` fails without them. merit reads audio with
soundfile and never uses either, so the shim only restores importability:

* ``set_audio_backend(name)`` becomes a no-op (there is no backend to choose);
* ``torchaudio.sox_effects`` becomes a module whose functions raise
  ``NotImplementedError`` saying why, so any real use fails loudly.

On torchaudio versions that still have them, nothing is changed. ``apply()`` is
idempotent and runs when ``merit`` is imported, before anything imports s3prl.
"""
import importlib
import sys
import types

import torchaudio

_SOX_REMOVED = (
    "torchaudio.{name} is not available: torchaudio {version} removed sox effects. "
    "merit reads audio with soundfile and does not use them; this stub exists only "
    "so that s3prl can be imported (see merit/compat.py)."
)


def _set_audio_backend(backend=None):
    """Accept and ignore a backend name: torchaudio >= 2.9 has no backends to choose."""


def _removed_sox_function(name):
    def raise_removed(*args, **kwargs):
        raise NotImplementedError(_SOX_REMOVED.format(name=name, version=torchaudio.__version__))

    raise_removed.__name__ = name.rsplit(".", 1)[-1]
    return raise_removed


def _sox_effects_stub():
    module = types.ModuleType("torchaudio.sox_effects")
    module.__doc__ = "Placeholder installed by merit.compat; every function raises."
    module.merit_placeholder = True
    for name in ("apply_effects_tensor", "apply_effects_file", "effect_names",
                 "init_sox_effects", "shutdown_sox_effects"):
        setattr(module, name, _removed_sox_function(f"sox_effects.{name}"))
    return module


def _has_sox_effects():
    try:
        importlib.import_module("torchaudio.sox_effects")
    except ImportError:
        return False
    return True


def apply():
    """Patch torchaudio in place where needed. Safe to call more than once."""
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
    if not _has_sox_effects():
        stub = _sox_effects_stub()
        sys.modules["torchaudio.sox_effects"] = stub
        torchaudio.sox_effects = stub
