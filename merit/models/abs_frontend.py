"""Frontends: where the SSL hidden states of a batch come from."""
from abc import ABC, abstractmethod
from typing import Optional, Tuple

import torch


class AbsFrontend(torch.nn.Module, ABC):
    """Gives hidden states ``(B, T, L, D)`` and their lengths ``(B,)`` in frames.

    ``downsample_rate`` is the hop of the hidden states in samples at 16 kHz
    (320 for WavLM's 20 ms, 160 for 10 ms features) and ``frame_offset`` the sample
    at the centre of frame 0 (frame t is centred at ``frame_offset + t *
    downsample_rate``: 200 for a 25 ms window or a 400-sample receptive field); the
    SE head uses both to align them with its STFT frames. Subclasses set
    ``self.layers`` (the kept hidden-state indices), ``self._hidden_size``,
    ``self._downsample_rate`` and ``self._frame_offset``.
    """

    layers: list
    _hidden_size: int
    _downsample_rate: int
    _frame_offset: int

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

    @property
    def frame_offset(self) -> int:
        """Samples from the start of the input to the centre of frame 0."""
        return self._frame_offset

    @abstractmethod
    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                feats: Optional[torch.Tensor] = None,
                feats_lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """speech (B, S) float, speech_lengths (B,) samples; feats (B, T, L, D) when dumped."""
