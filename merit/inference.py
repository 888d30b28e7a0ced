"""A trained MERIT model applied to one utterance at a time.

    speech2merit = Speech2Merit("exp/sparse_merit_fbank")   # or .from_pretrained("model.zip")
    result = speech2merit(noisy)        # noisy: (samples,) float at 16 kHz
    result.enhanced, result.posteriors, result.expert_usage

The model comes from ``<model_dir>/config.yaml`` and a checkpoint (default: the one
kept for the config's first ``best_model_criterion``, e.g. ``valid.macro_f1.best.pth``).
A model trained on dumped features takes those features (``feats``, (T, L, D)) when
given, else computes them with the upstream recorded in its config. The checkpoint is
read as tensors only, and every weight must fit (``merit.utils.model_loading``).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from merit.data.audio_io import SAMPLE_RATE
from merit.models.frontend import DumpedFrontend
from merit.utils.best_checkpoint import best_checkpoint
from merit.utils.model_loading import load_model

# Shortest input merit-infer accepts, in seconds (checked from each file's header).
# One frame of WavLM (or of fbank) sees 25 ms of audio, so from a 5 ms input whatever
# emotion comes out is not from speech; 0.25 s (12 WavLM frames of 20 ms, about one
# syllable) is the least an emotion can be guessed from. The recipes' data prep keeps training utterances at
# 0.5 s and longer.
MIN_INPUT_SECONDS = 0.25


@dataclass
class MeritResult:
    outputs: Dict[str, np.ndarray]       # task name -> its inference output (TaskSpec.infer)
    expert_usage: Dict[str, np.ndarray]  # task -> (E,) fraction of frames per expert (top-1)

    @property
    def enhanced(self) -> Optional[np.ndarray]:
        """(samples,) float32 enhanced speech, or None without an SE head."""
        return self.outputs.get("se")

    @property
    def posteriors(self) -> Optional[np.ndarray]:
        """(C,) class probabilities, or None without an SER head."""
        return self.outputs.get("ser")


class Speech2Merit:
    def __init__(self, model_dir, checkpoint: Optional[str] = None, device: str = "cpu"):
        model_dir = Path(model_dir)
        config = model_dir / "config.yaml"
        if not config.exists():
            raise FileNotFoundError(f"{config}: not found (is {model_dir} a trained model dir?)")
        self.checkpoint = checkpoint or best_checkpoint(config)
        weights = model_dir / self.checkpoint
        if not weights.exists():
            raise FileNotFoundError(f"{weights}: not found (is {model_dir} a trained model dir?)")
        self.model, self.args = load_model(config, weights, device=device)
        self.model.eval()
        self.device = device
        self.classes: List[str] = list(self.args.emotion_classes)
        self._online = None  # built on first use, for dumped-feature models given audio only
        self._dumped = isinstance(self.model.frontend, DumpedFrontend)

    @classmethod
    def from_pretrained(cls, model, checkpoint: Optional[str] = None,
                        device: str = "cpu") -> "Speech2Merit":
        """A model from a packed zip (``merit-pack``) or a model dir (a trained exp
        dir, or an unpacked pack); ``checkpoint`` overrides the one packed or the
        config's default."""
        from merit.pack import resolve_model

        model_dir, packed = resolve_model(model)
        return cls(model_dir, checkpoint or packed, device=device)

    def _features(self, speech: torch.Tensor, lengths: torch.Tensor):
        if self._online is None:
            self._online = self.model.frontend.online_equivalent().to(self.device).eval()
        return self._online(speech, lengths)

    @torch.no_grad()
    def __call__(self, noisy: np.ndarray, feats: Optional[np.ndarray] = None) -> MeritResult:
        speech = torch.as_tensor(noisy, dtype=torch.float32, device=self.device)[None]
        lengths = torch.tensor([speech.shape[1]], device=self.device)
        inputs = dict(speech=speech, speech_lengths=lengths)
        if self._dumped:
            if feats is None:
                hidden, hidden_lens = self._features(speech, lengths)
            else:
                hidden = torch.as_tensor(np.asarray(feats), device=self.device)[None]
                hidden_lens = torch.tensor([hidden.shape[1]], device=self.device)
            inputs.update(feats=hidden, feats_lengths=hidden_lens)
        features, frame_lengths, moe_out = self.model.encode(**inputs)
        outputs = {task.name: task.infer(self.model.head(task), features[task.name],
                                         frame_lengths, speech, lengths)
                   for task in self.model.tasks}
        usage = {task: fraction.cpu().numpy() for task, fraction in moe_out.expert_fraction.items()}
        return MeritResult(outputs=outputs, expert_usage=usage)
