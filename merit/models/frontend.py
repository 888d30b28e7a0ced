"""SSL hidden states computed online by an s3prl upstream, or read from dumps.

``S3PRLFrontend`` runs any s3prl upstream (``wavlm_large``, ``fbank``, or a local
checkpoint through ``wavlm_local`` with ``path_or_url``), frozen or fine-tuned.
A named upstream with ``path_or_url`` (``wavlm_large`` + a file) loads that file
through its family's entry (``s3prl_entry``). ``DumpedFrontend`` passes through
hidden states written by ``merit.bin.dump_ssl``.
"""
import logging
from pathlib import Path
from typing import Container, List, Optional, Sequence, Tuple

import kaldiio
import numpy as np
import torch
import yaml

import merit  # noqa: F401  (installs the torchaudio shim before s3prl is imported)
from merit.data.dump_dtypes import DUMP_DTYPES
from merit.models.abs_frontend import AbsFrontend

log = logging.getLogger(__name__)


def read_feats_info(path) -> dict:
    """The ``feats_info.yaml`` that ``merit.bin.dump_ssl`` writes beside a dump."""
    try:
        info = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the dump's feats_info.yaml ({err})") from err
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a feats_info.yaml written by merit.bin.dump_ssl")
    return info


def load_dumped(entry: str) -> np.ndarray:
    """One utterance's hidden states, ``(T, L, D)`` as dumped, from its ``feats.scp``
    value: ``<part>/feats.ark:<offset>`` (``merit.bin.dump_ssl``'s ark shards) or a
    ``.npy`` file (dumps made before them, which the recipe still reads)."""
    if entry.endswith(".npy"):
        return np.load(entry)
    return kaldiio.load_mat(entry)


def select_layers(num_layers: int, layers: Optional[Sequence[int]]) -> List[int]:
    """Layer indices to keep: all when ``layers`` is None; checked against ``num_layers``."""
    if layers is None:
        return list(range(num_layers))
    layers = [int(i) for i in layers]
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad or not layers:
        raise ValueError(f"layers {layers}: the upstream has layers 0..{num_layers - 1}")
    return layers


CHECKPOINT_SUFFIXES = ("_local", "_url", "_custom")
#: Centre of frame 0 in samples for a dump whose feats_info.yaml predates
#: ``frame_offset``: every upstream merit dumped then (kaldi-style 25 ms windows,
#: wav2vec 2.0 / HuBERT / WavLM with a 400-sample receptive field) has it at 200.
LEGACY_FRAME_OFFSET = 200


def receptive_field_centre(upstream: torch.nn.Module) -> int:
    """Samples from the start of the input to the centre of an s3prl upstream's first
    frame: half the receptive field of its convolutional waveform encoder (wav2vec 2.0,
    HuBERT, WavLM: 400 samples -> 200), or half the analysis window of s3prl's
    kaldi-style extractors (fbank, mfcc: 25 ms -> 200).

    Raises ValueError for an upstream of neither kind.
    """
    for name, module in upstream.named_modules():
        window_ms = getattr(module, "kwargs", {}).get("frame_length") if name.endswith(
            "extracter.0") else None
        if window_ms is not None:
            return int(round(float(window_ms) * 16 / 2))
        if name.endswith("feature_extractor") and hasattr(module, "conv_layers"):
            field, jump = 1, 1
            for conv in module.conv_layers.modules():
                if isinstance(conv, torch.nn.Conv1d):
                    field += (conv.kernel_size[0] - 1) * jump
                    jump *= conv.stride[0]
            return field // 2
    raise ValueError(f"cannot tell where the frames of upstream {type(upstream).__name__} are "
                     f"centred (neither a kaldi-style extractor nor a convolutional waveform "
                     f"encoder); the SE head needs it to align frames")


class HubEntries:
    """The entries of ``s3prl.hub`` as a container: ``name in HubEntries()`` looks the
    name up, which imports only its family's module (merit.compat's lazy hub), where
    ``S3PRLUpstream.available_names()`` would import every family (about 12 s)."""

    def __contains__(self, name: str) -> bool:
        from s3prl import hub

        return hasattr(hub, name)


def s3prl_entry(upstream: str, path_or_url: Optional[str], available: Container[str]) -> str:
    """The s3prl hub entry that loads ``upstream`` from ``path_or_url``.

    s3prl's named entries (``wavlm_large``) ignore a given checkpoint and fetch their
    own, so with a checkpoint a named entry becomes its family's loader, the one the
    named entry itself calls with the file it downloads: ``wavlm_large`` + a file is
    ``wavlm_local``, + an http(s) URL ``wavlm_url``. Entries that take a checkpoint
    (``*_local``, ``*_url``, ``*_custom``) and calls without one are left as they are.
    """
    if path_or_url is None or upstream.endswith(CHECKPOINT_SUFFIXES):
        return upstream
    suffix = "_url" if str(path_or_url).startswith(("http://", "https://")) else "_local"
    parts = upstream.split("_")
    for end in range(len(parts), 0, -1):
        entry = "_".join(parts[:end]) + suffix
        if entry in available:
            return entry
    raise ValueError(f"upstream {upstream} takes no checkpoint ({path_or_url} given): "
                     f"s3prl has no {parts[0]}{suffix} entry to load it with")


class S3PRLFrontend(AbsFrontend):
    """An s3prl upstream; hidden states stacked over layers.

    Args:
        upstream: s3prl name (``wavlm_large``, ``fbank``, ``wavlm_local`` …).
        path_or_url: checkpoint: required by ``*_local`` / ``*_url`` upstreams; with a
            named one (``wavlm_large``) it is loaded instead of s3prl's download.
        freeze: no gradients into the upstream, run it in eval mode.
        layers: hidden-state indices to keep (default: all, 25 for WavLM Large).
    When fine-tuning (``freeze: false``) a CNN waveform encoder, if the upstream
    has one, stays frozen as in the paper.
    """

    def __init__(self, upstream: str = "fbank", path_or_url: Optional[str] = None,
                 freeze: bool = True, layers: Optional[Sequence[int]] = None):
        super().__init__()
        from s3prl.nn import S3PRLUpstream

        entry = s3prl_entry(upstream, path_or_url, HubEntries())
        if entry != upstream:
            log.info("upstream %s from %s: loading it through s3prl's %s", upstream, path_or_url, entry)
        self.upstream = S3PRLUpstream(entry, path_or_url=path_or_url)
        self.freeze = freeze
        self.layers = select_layers(self.upstream.num_layers, layers)
        sizes = {self.upstream.hidden_sizes[i] for i in self.layers}
        rates = {self.upstream.downsample_rates[i] for i in self.layers}
        if len(sizes) != 1 or len(rates) != 1:
            raise ValueError(f"upstream {upstream}: selected layers differ in size {sizes} "
                             f"or rate {rates}; choose layers of one kind")
        self._hidden_size, self._downsample_rate = sizes.pop(), rates.pop()
        self._frame_offset = receptive_field_centre(self.upstream)
        if freeze:
            self.upstream.requires_grad_(False)
        else:
            self._freeze_cnn()

    def _freeze_cnn(self):
        model = getattr(getattr(self.upstream, "upstream", None), "model", None)
        cnn = getattr(model, "feature_extractor", None)
        if cnn is not None:
            cnn.requires_grad_(False)
            log.info("fine-tuning the upstream with its CNN feature extractor frozen")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.upstream.eval()  # no dropout in a frozen upstream
        return self

    def forward(self, speech, speech_lengths, feats=None, feats_lengths=None):
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden_states, hidden_lens = self.upstream(speech, speech_lengths)
        stacked = torch.stack([hidden_states[i] for i in self.layers], dim=2)
        return stacked, hidden_lens[self.layers[0]]


#: Dump dtype of a trained config from before ``dtype`` was kept in it: float16, dump_ssl's
#: default since its first version and the recipes' (``--dump_dtype``). A model from a
#: float32 dump then gets online features rounded to float16 (relative error <= 2^-11),
#: where assuming float32 would feed every float16-trained model unrounded ones.
LEGACY_DUMP_DTYPE = "float16"


class DumpedFrontend(AbsFrontend):
    """Hidden states dumped by ``merit.bin.dump_ssl`` arrive in the batch as ``feats``.

    Args: ``feats_info``, the dump's ``feats_info.yaml``, gives the dump's
    ``num_layers``, ``hidden_size``, ``downsample_rate``, ``frame_offset`` (200 when
    the file predates it), ``upstream`` and ``dumped_layers`` (its ``layers``); each
    may also be given (or overridden)
    explicitly, as a trained model's config does (see ``explicit_conf``).
    ``layers`` selects among the dumped ones. ``upstream``, ``path_or_url``,
    ``dumped_layers`` and ``dtype`` record what made the dump, so that inference on new
    audio can compute the same features (``online_equivalent``) and round them as the
    dump did (``as_dumped``). ``dtype`` is the dump's (feats_info's ``dtype``); a config
    or feats_info without it gets ``LEGACY_DUMP_DTYPE``.
    """

    def __init__(self, feats_info: Optional[str] = None, num_layers: Optional[int] = None,
                 hidden_size: Optional[int] = None, downsample_rate: Optional[int] = None,
                 layers: Optional[Sequence[int]] = None, upstream: Optional[str] = None,
                 path_or_url: Optional[str] = None,
                 dumped_layers: Optional[Sequence[int]] = None,
                 frame_offset: Optional[int] = None, dtype: Optional[str] = None):
        super().__init__()
        info = read_feats_info(feats_info) if feats_info is not None else {}
        num_layers = info.get("num_layers") if num_layers is None else num_layers
        hidden_size = info.get("hidden_size") if hidden_size is None else hidden_size
        downsample_rate = info.get("downsample_rate") if downsample_rate is None else downsample_rate
        missing = [name for name, value in (("num_layers", num_layers), ("hidden_size", hidden_size),
                                            ("downsample_rate", downsample_rate)) if value is None]
        if missing:
            raise ValueError(f"DumpedFrontend needs feats_info (the dump's feats_info.yaml) "
                             f"or {', '.join(missing)}")
        self.upstream_name = info.get("upstream") if upstream is None else upstream
        self.path_or_url = path_or_url
        dumped_layers = info.get("layers") if dumped_layers is None else dumped_layers
        self.upstream_layers = None if dumped_layers is None else [int(i) for i in dumped_layers]
        self.dumped_layers = int(num_layers)
        self.layers = select_layers(self.dumped_layers, layers)
        self._selected = None if layers is None else list(self.layers)
        self._hidden_size, self._downsample_rate = int(hidden_size), int(downsample_rate)
        if frame_offset is None:
            frame_offset = info.get("frame_offset", LEGACY_FRAME_OFFSET)
        self._frame_offset = int(frame_offset)
        self.dtype = str(info.get("dtype", LEGACY_DUMP_DTYPE) if dtype is None else dtype)
        if self.dtype not in DUMP_DTYPES:
            raise ValueError(f"dump dtype {self.dtype!r}: merit.bin.dump_ssl writes one of "
                             f"{', '.join(DUMP_DTYPES)}")

    def explicit_conf(self) -> dict:
        """The arguments that rebuild this frontend without the dump's feats_info.yaml
        (what a trained model's config keeps, so it works on another machine)."""
        conf = dict(num_layers=self.dumped_layers, hidden_size=self._hidden_size,
                    downsample_rate=self._downsample_rate, layers=self._selected,
                    upstream=self.upstream_name, path_or_url=self.path_or_url,
                    dumped_layers=self.upstream_layers, frame_offset=self._frame_offset,
                    dtype=self.dtype)
        return {name: value for name, value in conf.items() if value is not None}

    def online_equivalent(self) -> S3PRLFrontend:
        """A frozen S3PRLFrontend computing these features from audio."""
        if self.upstream_name is None:
            raise ValueError("this model was trained on dumped features without a record of "
                             "their upstream: pass the dumped feats instead of audio only")
        layers = self.upstream_layers
        if layers is not None:
            layers = [layers[i] for i in self.layers]
        elif len(self.layers) != self.dumped_layers:
            layers = self.layers
        return S3PRLFrontend(self.upstream_name, path_or_url=self.path_or_url, freeze=True,
                             layers=layers)

    def as_dumped(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states computed online (by ``online_equivalent``) rounded to the dump's
        dtype, as dump_ssl stored them: the model then sees on new audio exactly the
        numbers it was trained and validated on (float16 keeps ~3 significant digits)."""
        return hidden.to(getattr(torch, self.dtype))

    def forward(self, speech, speech_lengths, feats=None, feats_lengths=None):
        if feats is None:
            raise ValueError("DumpedFrontend needs 'feats' in the batch: add the dump's "
                             "feats.scp as data name 'feats' (type kaldi_ark; npy for a dump "
                             "of one .npy per utterance)")
        if feats.dim() != 4 or feats.shape[2:] != (self.dumped_layers, self._hidden_size):
            raise ValueError(f"dumped feats have shape {tuple(feats.shape)}, expected "
                             f"(B, T, {self.dumped_layers}, {self._hidden_size})")
        if len(self.layers) != self.dumped_layers:
            feats = feats[:, :, self.layers]
        return feats.float(), feats_lengths
