"""Compatibility shim: lets s3prl 0.4.18 import on torchaudio 2.9 and later.

torchaudio 2.9 removed ``torchaudio.set_audio_backend`` and the
``torchaudio.sox_effects`` module. s3prl calls the former at import time
(``s3prl.dataio.dataset.load_audio``) and imports the latter in some upstream
experts, so ``import s3prl.hub`` fails without them. merit reads audio with
soundfile and never uses either, so the shim only restores importability:

* ``set_audio_backend(name)`` becomes a no-op (there is no backend to choose);
* ``torchaudio.sox_effects`` becomes a module whose functions raise
  ``NotImplementedError`` saying why, so any real use fails loudly.

On torchaudio versions that still have them, nothing is changed.

``install()`` runs when ``merit`` is imported. It does not import torchaudio
itself (that would cost every data tool the ~3 s import of torch): if torchaudio
is already loaded it is patched at once, otherwise an import hook patches it the
moment anything (s3prl included) imports it. ``apply()`` patches directly and is
idempotent.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import types

_SOX_REMOVED = (
    "torchaudio.{name} is not available: torchaudio {version} removed sox effects. "
    "merit reads audio with soundfile and does not use them; this stub exists only "
    "so that s3prl can be imported (see merit/compat.py)."
)


def _set_audio_backend(backend=None):
    """Accept and ignore a backend name: torchaudio >= 2.9 has no backends to choose."""


def _removed_sox_function(name):
    def raise_removed(*args, **kwargs):
        version = sys.modules["torchaudio"].__version__
        raise NotImplementedError(_SOX_REMOVED.format(name=name, version=version))

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
    import torchaudio

    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
    if not _has_sox_effects():
        stub = _sox_effects_stub()
        sys.modules["torchaudio.sox_effects"] = stub
        torchaudio.sox_effects = stub


class _PatchingLoader(importlib.abc.Loader):
    """Runs torchaudio's own loader, then ``apply()``."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        apply()

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.inner, name)


class _TorchaudioHook(importlib.abc.MetaPathFinder):
    """Finds torchaudio with the normal finders and wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "torchaudio":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install():
    """Make sure torchaudio is patched before anyone uses it (see the module docstring)."""
    if "torchaudio" in sys.modules:
        apply()
    elif not any(isinstance(f, _TorchaudioHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchaudioHook())
