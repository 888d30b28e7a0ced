"""Frontends: where the SSL hidden states of a batch come from."""
from abc import ABC, abstractmethod
from typing import Optional, Tuple

import torch


class AbsFrontend(torch.nn.Module, ABC):
    """Gives hidden states ``(B, T, L, D)`` and their lengths ``(B,)`` in frames.

    ``downsample_rate`` is the hop of the hidden states in samples at 16 kHz
    (320 for WavLM's 20 ms, 160 for 10 ms features); the SE head uses it to align
    them with its STFT frames. Subclasses set ``self.layers`` (the kept hidden-state
    indices), ``self._hidden_size`` and ``self._downsample_rate``.
    """

    layers: list
    _hidden_size: int
    _downsample_rate: int

    @property
    def num_layers(self) -> int:
        """L: how many hidden states each frame carries."""
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        """D: the size of each hidden state."""
        return self._hidden_size

    @property
    def downsample_rate(self) -> int:
        """Samples per frame at 16 kHz."""
        return self._downsample_rate

    @abstractmethod
    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                feats: Optional[torch.Tensor] = None,
                feats_lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """speech (B, S) float, speech_lengths (B,) samples; feats (B, T, L, D) when dumped."""
