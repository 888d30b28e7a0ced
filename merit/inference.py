"""A trained MERIT model applied to utterances, one at a time or in padded batches.

    speech2merit = Speech2Merit("exp/sparse_merit_fbank")   # or .from_pretrained("model.zip")
    result = speech2merit(noisy)        # noisy: (samples,) float at 16 kHz
    result.enhanced, result.posteriors, result.expert_usage
    results = speech2merit.batch([noisy1, noisy2, ...])     # one MeritResult each, in order

The model comes from ``<model_dir>/config.yaml`` and a checkpoint (default: the one
kept for the config's first ``best_model_criterion``, e.g. ``valid.macro_f1.best.pth``).
A model trained on dumped features takes those features (``feats``, (T, L, D)) when
given, else computes them with the upstream recorded in its config and rounds them to
the dump's dtype, so that both give the same numbers. The checkpoint is read as
tensors only, and every weight must fit (``merit.utils.model_loading``).

In a batch the frontend (s3prl upstream or dumped features) runs one utterance at a
time, as ``merit.bin.dump_ssl`` does, because s3prl upstreams are not inert to padding
(fbank's last frames become zeros instead of copies of the last frame, WavLM's
convolutions and attention see the padding); everything after it masks its padding and
keeps each utterance's arithmetic apart from the others', so each utterance gets its
one-at-a-time result bit for bit (see ``batch``).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from merit.data.audio_io import SAMPLE_RATE
from merit.models.frontend import DumpedFrontend
from merit.models.pad_mask import valid_mask
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

    def _hidden(self, speech: torch.Tensor, feats: Optional[np.ndarray]) -> torch.Tensor:
        """The frontend's (T, L, D) float hidden states of one utterance ``speech`` (S,):
        its dumped ``feats``, or computed from the audio as the dump (or training) did."""
        lengths = torch.tensor([speech.shape[0]], device=self.device)
        frontend = self.model.frontend
        if not self._dumped:
            hidden, hidden_lens = frontend(speech[None], lengths)
            return hidden[0, :int(hidden_lens[0])]
        if feats is None:
            if self._online is None:
                self._online = frontend.online_equivalent().to(self.device).eval()
            online, online_lens = self._online(speech[None], lengths)
            feats = frontend.as_dumped(online[:, :int(online_lens[0])])
        else:
            feats = torch.as_tensor(np.asarray(feats), device=self.device)[None]
        hidden, _ = frontend(None, None, feats, torch.tensor([feats.shape[1]], device=self.device))
        return hidden[0]

    @torch.no_grad()
    def batch(self, noisy: Sequence[np.ndarray],
              feats: Optional[Sequence[Optional[np.ndarray]]] = None) -> List[MeritResult]:
        """The results of several utterances (each (samples,) float at 16 kHz, with its
        dumped ``feats`` or None), in their order, from one padded pass of the model
        after the frontend.

        Each utterance (of 4 frames or more) gets the same bits as alone
        (test_batched_decoding, on CPU):
        the integration and the MoE see the padding masked (zero, never routed) in
        products of B x T rows, whose rows do not depend on B; the SE head computes
        each STFT at the utterance's own length and runs its BLSTM on the same rows
        alone or batched (``batch_invariant_lstm``); the SER head classifies each
        utterance over its own frames (``EmotionRecognition.infer``); the expert usage
        counts an utterance's own frames. GPU kernels were not measured: there, the
        last bit may still depend on the batch.
        """
        if feats is None:
            feats = [None] * len(noisy)
        if len(feats) != len(noisy):
            raise ValueError(f"{len(noisy)} utterances but {len(feats)} feats")
        if not noisy:
            return []
        speech = [torch.as_tensor(wave, dtype=torch.float32, device=self.device) for wave in noisy]
        hidden = [self._hidden(wave, given) for wave, given in zip(speech, feats)]
        speech_lengths = torch.tensor([wave.shape[0] for wave in speech], device=self.device)
        lengths = torch.tensor([h.shape[0] for h in hidden], device=self.device)
        features, _, moe_out = self.model.encode_hidden(pad_sequence(hidden, batch_first=True),
                                                        lengths)
        padded_speech = pad_sequence(speech, batch_first=True)
        outputs = {task.name: task.infer(self.model.head(task), features[task.name],
                                         lengths, padded_speech, speech_lengths)
                   for task in self.model.tasks}
        usage = expert_usage(moe_out, lengths)
        return [MeritResult(outputs={name: values[i] for name, values in outputs.items()},
                            expert_usage={task: fractions[i] for task, fractions in usage.items()})
                for i in range(len(speech))]

    def __call__(self, noisy: np.ndarray, feats: Optional[np.ndarray] = None) -> MeritResult:
        """The result of one utterance: a batch of one."""
        return self.batch([noisy], [feats])[0]


def expert_usage(moe_out, lengths: torch.Tensor) -> Dict[str, np.ndarray]:
    """task -> (B, E): per utterance, the fraction of its valid frames whose top-1 expert
    is each expert, what ``MoEOutput.expert_fraction`` gives for a batch of one (the
    routed top-1 of a sparse MoE, the gate's argmax of a dense one, the single expert
    of a shared MLP)."""
    usage = {}
    for task, fraction in moe_out.expert_fraction.items():
        if moe_out.expert_index is not None:
            top1 = moe_out.expert_index[task][..., 0]
        elif moe_out.gate_probs is not None:
            top1 = moe_out.gate_probs[task].argmax(-1)
        else:
            top1 = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.long,
                               device=lengths.device)
        valid = valid_mask(lengths, top1.shape[1])
        experts = torch.arange(fraction.numel(), device=top1.device)
        counts = ((top1[..., None] == experts) & valid[..., None]).sum(1).to(fraction.dtype)
        usage[task] = np.stack([(row / max(n, 1)).cpu().numpy()
                                for row, n in zip(counts, lengths.tolist())])
    return usage
