"""Compatibility shims for the third-party packages merit imports (the one place for them).

**torchaudio >= 2.9** removed ``torchaudio.set_audio_backend`` and the
``torchaudio.sox_effects`` module. s3prl 0.4.18 calls the former at import time
(``s3prl.dataio.dataset.load_audio``) and imports the latter in some upstream
experts, so ``import s3prl.hub`` fails without them. merit reads audio with
soundfile and never uses either, so the shim only restores importability:

* ``set_audio_backend(name)`` becomes a no-op (there is no backend to choose);
* ``torchaudio.sox_effects`` becomes a module whose functions raise
  ``NotImplementedError`` saying why, so any real use fails loudly.

On torchaudio versions that still have them, nothing is changed.

**Quiet, offline imports.** Two modules that merit's commands import indirectly speak
at import time, in words a user cannot tell from real errors:

* ESPnet's ``espnet.nets.pytorch_backend.transformer.attention`` (imported by ESPnet's
  trainer) prints ``Failed to import Flash Attention, using ESPnet default: No module
  named 'flash_attn'`` to stdout when flash_attn is not installed. merit never asks for
  flash attention. While that module is imported, exactly that line is kept from
  stdout and logged at debug level; any other output passes through.
* ``g2p_en`` (imported by ``s3prl.hub`` through ESPnet's HuBERT task and its phoneme
  tokenizer) calls ``nltk.download`` at import when its NLTK data is missing: a
  network attempt on every start, and on an offline machine eight ``[nltk_data] Error
  loading …`` lines. While g2p_en is imported, ``nltk.download`` is a stand-in that
  downloads nothing, logs at debug level and returns False (what nltk returns when a
  download fails); the real function is restored afterwards. merit never uses g2p_en;
  code that does needs the data installed beforehand (``python -m nltk.downloader
  cmudict averaged_perceptron_tagger_eng``), or gets nltk's LookupError naming the
  missing resource when it builds ``g2p_en.G2p``.

``install()`` runs when ``merit`` is imported. It imports none of these packages
itself (torchaudio alone would cost every data tool the ~3 s import of torch): a module
already loaded is handled at once where that still helps (torchaudio is patched), and
an import hook wraps the loading of the others, each the first time anything imports
it. ``apply()`` patches torchaudio directly and is idempotent.
"""
import contextlib
import importlib
import importlib.abc
import logging
import sys
import types

log = logging.getLogger(__name__)

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


# ---- quiet imports -------------------------------------------------------------------

#: What ESPnet's attention module prints when flash_attn is missing (the line's start).
FLASH_NOTICE = "Failed to import Flash Attention, using ESPnet default:"


class _LineFilter:
    """Stands in for a text stream: complete lines starting with ``prefix`` are logged
    at debug level instead; everything else goes to ``target``. Other attributes
    (``encoding``, ``isatty`` …) are the target's."""

    def __init__(self, target, prefix: str):
        self.target, self.prefix, self.pending = target, prefix, ""

    def write(self, text: str) -> int:
        # print() writes the text and its "\n" separately: decide per complete line
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._emit(line + "\n")
        return len(text)

    def _emit(self, line: str) -> None:
        if line.startswith(self.prefix):
            log.debug("kept from stdout: %s", line.rstrip("\n"))
        else:
            self.target.write(line)

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        """Pass on a last line that has no newline (yet)."""
        if self.pending:
            self._emit(self.pending)
            self.pending = ""

    def __getattr__(self, name):
        return getattr(self.target, name)


def _exec_without_flash_notice(exec_module, module) -> None:
    """Import ESPnet's attention module with its flash_attn notice kept from stdout."""
    if sys.stdout is None:
        exec_module(module)
        return
    quiet = _LineFilter(sys.stdout, FLASH_NOTICE)
    try:
        with contextlib.redirect_stdout(quiet):
            exec_module(module)
    finally:
        quiet.finish()


def _exec_without_downloads(exec_module, module) -> None:
    """Import g2p_en with ``nltk.download`` a stand-in that downloads nothing."""
    try:
        import nltk
    except ImportError:  # g2p_en's own import will say so
        exec_module(module)
        return
    real_download = nltk.download

    def no_download(info_or_id=None, *args, **kwargs):
        log.debug("%s asked to download NLTK data %r at import: not downloaded "
                  "(merit.compat; install it with python -m nltk.downloader if needed)",
                  module.__name__, info_or_id)
        return False

    nltk.download = no_download
    try:
        exec_module(module)
    finally:
        if nltk.download is no_download:  # unless the module replaced it itself
            nltk.download = real_download


def _exec_then_patch_torchaudio(exec_module, module) -> None:
    exec_module(module)
    apply()


#: Module name -> how to run its loader's ``exec_module(module)``.
_WRAPPED_IMPORTS = {
    "torchaudio": _exec_then_patch_torchaudio,
    "espnet.nets.pytorch_backend.transformer.attention": _exec_without_flash_notice,
    "g2p_en": _exec_without_downloads,
}


class _WrappingLoader(importlib.abc.Loader):
    """Runs the real loader's ``exec_module`` through the hook's wrapper of the module."""

    def __init__(self, inner, hook):
        self.inner, self.hook = inner, hook

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        wrapper = self.hook.take(module.__name__)
        if wrapper is None:  # already done once (e.g. a reload)
            self.inner.exec_module(module)
        else:
            wrapper(self.inner.exec_module, module)

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.inner, name)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds the modules of ``pending`` with the other finders and wraps their loaders.

    A module counts as done when it is executed, not when it is found: code that only
    asks whether a package exists (``importlib.util.find_spec``) must not use up the
    wrapping. The hook leaves ``sys.meta_path`` once every module is done.
    """

    def __init__(self, pending):
        self.pending = dict(pending)

    def take(self, name):
        """The wrapper of ``name``, now done; None if it was done before."""
        wrapper = self.pending.pop(name, None)
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)
        return wrapper

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is not None and spec.loader is not None:
            spec.loader = _WrappingLoader(spec.loader, self)
        return spec


def install():
    """Patch torchaudio if it is loaded, and hook the imports of the modules above that
    are not (see the module docstring). Safe to call more than once."""
    if "torchaudio" in sys.modules:
        apply()
    if any(isinstance(finder, _ImportHook) for finder in sys.meta_path):
        return
    pending = {name: wrapper for name, wrapper in _WRAPPED_IMPORTS.items()
               if name not in sys.modules}
    if pending:
        sys.meta_path.insert(0, _ImportHook(pending))
