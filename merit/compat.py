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

**A hub that imports one family.** ``s3prl.hub`` star-imports the ``hubconf`` of every
upstream family, and one of them (``espnet_hubert``) imports ESPnet's training task,
with ``inflect``, ``transformers`` and g2p_en: about 12 s before the first feature, for
any upstream, even ``fbank``. ``s3prl.hub`` is therefore loaded lazily: looking up an
entry (``getattr(hub, "fbank")``, as ``S3PRLUpstream("fbank")`` does) imports only the
hubconf module that binds that name last in the hub's own order, which is the object
the real hub would hold. Which module binds what is read from the sources' syntax
trees (top-level ``def``, ``class``, assignments and imports), not by importing them.
Anything else (``hub.options()``, which lists every entry; a name bound by the hub
itself; a name whose binding did not happen at run time) runs the real hub module
first, so the answer is always the real hub's. A name no source binds is an
AttributeError without importing anything.

``install()`` runs when ``merit`` is imported. It imports none of these packages
itself (torchaudio alone would cost every data tool the ~3 s import of torch): a module
already loaded is handled at once where that still helps (torchaudio is patched), and
an import hook wraps the loading of the others, each the first time anything imports
it. ``apply()`` patches torchaudio directly and is idempotent.
"""
import ast
import contextlib
import importlib
import importlib.abc
import logging
import sys
import types
from pathlib import Path
from typing import Dict, Optional, Tuple

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


# ---- lazy s3prl.hub ---------------------------------------------------------------------

#: What the hub's entry lookups fall back to: run the real hub module.
_RUN_HUB = ("", "")


def _top_level_statements(body):
    """Statements run at import, descending into top-level ``if``/``try``/``with``."""
    for node in body:
        yield node
        for block in ("body", "orelse", "finalbody"):
            yield from _top_level_statements(getattr(node, block, None) or [])
        for handler in getattr(node, "handlers", None) or []:
            yield from _top_level_statements(handler.body)


def _module_source(package_dir: Path, module: str) -> Path:
    """The file of ``module`` (``s3prl.upstream.wavlm.hubconf``) under ``package_dir``,
    the directory of its top-level package (s3prl/), found without importing it."""
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _bindings(path: Path, module: str, package_dir: Path, public_of) -> Dict[str, Tuple[str, str]]:
    """name -> (module, attribute) for every name the top level of ``path`` binds, in
    order, later bindings winning; a ``from M import *`` binds ``public_of(M)``; a name
    defined in the file itself is (``module``, name)."""
    bound: Dict[str, Tuple[str, str]] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _top_level_statements(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] = (module, node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = (module, name.id)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                bound[name] = (module, name)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    bound.update(public_of(node.module))
                else:
                    bound[alias.asname or alias.name] = (module, alias.asname or alias.name)
    return bound


def _hub_entries(hub_file: Path) -> Dict[str, Tuple[str, str]]:
    """name -> (module, attribute) that ``s3prl.hub`` holds under that name, read from
    the sources; a name the hub binds itself maps to ``_RUN_HUB``. A star import inside
    a star-imported module makes every name of the latter ``_RUN_HUB`` (not followed)."""
    package_dir = hub_file.parent

    def public_of(module: str) -> Dict[str, Tuple[str, str]]:
        def nested_star(_):
            raise _NestedStar

        try:
            names = _bindings(_module_source(package_dir, module), module, package_dir, nested_star)
        except _NestedStar:
            return {}
        return {name: source for name, source in names.items() if not name.startswith("_")}

    entries = _bindings(hub_file, "s3prl.hub", package_dir, public_of)
    return {name: (_RUN_HUB if module == "s3prl.hub" else (module, attr))
            for name, (module, attr) in entries.items()}


class _NestedStar(Exception):
    """A star-imported module star-imports another: its names are left to the real hub."""


def _exec_hub_lazily(exec_module, module) -> None:
    """Make ``module`` (s3prl.hub) resolve entries on first lookup (module docstring)."""
    entries: Optional[Dict[str, Tuple[str, str]]] = None
    ran = []

    def run_hub() -> None:
        if not ran:
            ran.append(True)
            exec_module(module)  # the real hub: defines every entry, and options()

    def lookup(name: str):
        nonlocal entries
        if not ran:
            if entries is None:
                entries = _hub_entries(Path(module.__spec__.origin))
            source = entries.get(name)
            if source is None:
                raise AttributeError(f"module 's3prl.hub' has no attribute {name!r}")
            if source != _RUN_HUB:
                value = getattr(importlib.import_module(source[0]), source[1], None)
                if value is not None:
                    setattr(module, name, value)
                    return value
            run_hub()
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 's3prl.hub' has no attribute {name!r}") from None

    def options(only_registered_ckpt: bool = False):
        run_hub()
        return module.options(only_registered_ckpt)  # the real one, defined by the hub

    module.__getattr__ = lookup
    module.options = options


def _exec_then_patch_torchaudio(exec_module, module) -> None:
    exec_module(module)
    apply()


#: Module name -> how to run its loader's ``exec_module(module)``.
_WRAPPED_IMPORTS = {
    "torchaudio": _exec_then_patch_torchaudio,
    "espnet.nets.pytorch_backend.transformer.attention": _exec_without_flash_notice,
    "g2p_en": _exec_without_downloads,
    "s3prl.hub": _exec_hub_lazily,
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
