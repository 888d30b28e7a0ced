"""Dynamic mixing: each training example re-mixed with fresh noise every time it is drawn.

With ``dynamic_mixing: true`` in the training config, MeritTask puts a ``DynamicMixer``
in front of the training data's preprocessing (ESPnet's ``preprocess_fn``, run in the
DataLoader workers). For each example it draws, like stage 2
(merit.bin.simulate_noise, through ``noise_mixing.draw_mixture``): a file of the
noise pool ``noise_scp`` (the recipe's *train* pool), an SNR of ``snrs`` (dB) and a
circular shift; mixes at that exact whole-utterance SNR; and scales the mixture and
the clean target by the same anti-clipping gain. ``speech`` (the stage-2 mixture read
from wav.scp) becomes the new mixture, ``speech_ref1`` (the clean reference) the clean
at that gain. Validation keeps the fixed stage-2 mixtures: a stable checkpoint
criterion.

The clean source is ``speech_ref1`` as stage 2 wrote it: for the few utterances whose
stage-2 mixture had to be scaled down, already at that gain (at most a level change:
the SNR and the new anti-clipping gain are computed afresh).

Randomness. ESPnet reseeds the global RNGs every epoch (``set_all_random_seed(seed +
epoch)`` in espnet2/train/trainer.py) and each DataLoader worker (``worker_init_fn``:
``seed + epoch + worker id``), so draws from the global RNGs would depend on which
worker loads an example and in which order: the mixtures would change with
``num_workers``. Instead every example gets its own generator, seeded with (training
``seed``, epoch, utterance id) (``noise_mixing.utterance_rng``):

1. the same seed gives the same mixtures;
2. every epoch gives each example a different mixture (the epoch is in the seed);
3. the mixtures do not depend on ``num_workers`` (0 or more), on batch order or on
   how DDP shards the batches, and a resumed run mixes like an uninterrupted one.

The epoch reaches the mixer through ``EpochIterFactory``, the training iterator
factory MeritTask builds: it calls ``set_epoch`` before building each epoch's
DataLoader. ESPnet's DataLoaders keep no persistent workers, so the workers, started
when that DataLoader is iterated, copy the mixer with its epoch set.

Memory: each process (each worker) keeps the noises it decoded, least recently used
dropped beyond ``cache_mb`` megabytes (float32 samples; 128 MB: about 35 min of noise
at 16 kHz). Workers are new every epoch, so the cache is too.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

import numpy as np
from espnet2.iterators.abs_iter_factory import AbsIterFactory

from merit.data.audio_io import read_audio
from merit.data.noise_mixing import draw_mixture, load_pool, parse_snrs, utterance_rng

NOISY, CLEAN = "speech", "speech_ref1"


class NoiseCache:
    """Decoded noise files (``read_audio(path, resample=True)``, float32 samples at
    16 kHz), the least recently used dropped once they hold more than ``max_bytes``
    (the last one read is always kept)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._wavs: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._bytes = 0

    def __call__(self, path: str) -> np.ndarray:
        wav = self._wavs.get(path)
        if wav is not None:
            self._wavs.move_to_end(path)
            return wav
        wav = read_audio(path, resample=True)
        wav.setflags(write=False)
        self._wavs[path] = wav
        self._bytes += wav.nbytes
        while self._bytes > self.max_bytes and len(self._wavs) > 1:
            self._bytes -= self._wavs.popitem(last=False)[1].nbytes
        return wav


class DynamicMixer:
    """ESPnet preprocess step ``(uid, data) -> data``: ``data[speech]`` becomes a new
    mixture of ``data[speech_ref1]`` (clean, (samples,), 16 kHz) with noise of
    ``noise_scp`` at an SNR of ``snrs``; ``data[speech_ref1]`` the clean at the
    mixture's anti-clipping gain. Both float32, (samples,).

    ``noise_scp``: ``<noise-id> <path>`` lines (stage 2's pool files); ``snrs``: dB,
    a list, one number or a space-separated string; ``seed``: the training seed;
    ``cache_mb``: decoded noise kept per process (``NoiseCache``). ``set_epoch`` must
    be called before the first example (``EpochIterFactory`` does).
    """

    def __init__(self, noise_scp: str, snrs: Union[str, Sequence[float]], seed: int,
                 cache_mb: float = 128):
        self.noise_scp = str(noise_scp)
        self.pool: Dict[str, str] = load_pool(self.noise_scp)
        self.noise_ids = sorted(self.pool)
        self.snrs = (parse_snrs(snrs) if isinstance(snrs, str)
                     else [float(s) for s in np.atleast_1d(snrs)])
        if not self.snrs:
            raise ValueError("dynamic_mixing_conf: snrs is empty (give the SNRs in dB, "
                             "e.g. snrs=[-5,0,5,10])")
        self.seed = int(seed)
        self.epoch: Optional[int] = None
        self.noises = NoiseCache(int(cache_mb * 2 ** 20))

    @classmethod
    def from_conf(cls, conf: dict, seed: int) -> "DynamicMixer":
        """The mixer of ``--dynamic_mixing_conf`` (keys ``noise_scp``, ``snrs``,
        optional ``cache_mb``); an error naming what is missing or unknown."""
        required, optional = ("noise_scp", "snrs"), ("cache_mb",)
        missing = [k for k in required if k not in conf]
        unknown = sorted(set(conf) - set(required) - set(optional))
        if missing or unknown:
            raise ValueError(
                "--dynamic_mixing_conf: " + "; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else [])
                    + ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []))
                + " (expected noise_scp=<train noise pool scp>, snrs=[<dB>,...], "
                  "optionally cache_mb=<MB of decoded noise per worker>)")
        return cls(seed=seed, **conf)

    def __repr__(self) -> str:  # ESPnet logs the training dataset with its preprocess_fn
        return (f"DynamicMixer(noise_scp={self.noise_scp} ({len(self.noise_ids)} files), "
                f"snrs={' '.join(f'{s:g}' for s in self.snrs)} dB, seed={self.seed})")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, uid: str, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if self.epoch is None:
            raise RuntimeError("DynamicMixer: no epoch set; build the training iterator "
                               "with MeritTask.build_iter_factory, whose EpochIterFactory "
                               "sets it")
        if CLEAN not in data:
            raise ValueError(
                f"utterance {uid}: dynamic mixing needs the clean reference {CLEAN} in the "
                f"training data (add --train_data_path_and_name_and_type "
                f"<data dir>/spk1.scp,{CLEAN},sound)")
        clean = np.asarray(data[CLEAN], dtype=np.float32)
        if clean.ndim != 1:
            raise ValueError(f"utterance {uid}: {CLEAN} has shape {clean.shape}; dynamic "
                             f"mixing takes mono audio, (samples,)")
        try:
            draw = draw_mixture(utterance_rng(uid, self.seed, self.epoch), clean,
                                self.noise_ids, self.pool, self.snrs, self.noises)
        except ValueError as err:
            raise ValueError(f"utterance {uid}, dynamic mixing: {err}") from err
        data[NOISY] = draw.mixture.noisy.astype(np.float32)
        data[CLEAN] = draw.mixture.clean.astype(np.float32)
        return data


class EpochIterFactory(AbsIterFactory):
    """``factory``'s iterators, with ``preprocess.set_epoch(epoch)`` called before each
    is built: how the epoch reaches the mixer in the DataLoader workers."""

    def __init__(self, factory: AbsIterFactory, preprocess):
        self.factory = factory
        self.preprocess = preprocess

    def build_iter(self, epoch: int, shuffle: bool = None):
        self.preprocess.set_epoch(epoch)
        return self.factory.build_iter(epoch, shuffle)
