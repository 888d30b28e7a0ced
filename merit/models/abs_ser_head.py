"""Abstract base for speech-emotion-recognition heads: feature sequence -> class logits."""
from abc import ABC, abstractmethod

import torch


class AbsSERHead(torch.nn.Module, ABC):
    """An SER head built as ``cls(input_size=F, num_classes=C, **conf)``."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """C, the number of emotion classes."""

    @abstractmethod
    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Classify utterances.

        Args:
            features: (B, T, F) float, T in frames.
            lengths: (B,) int, valid frames per utterance (each >= 1).
        Returns:
            (B, C) float logits (unnormalised).
        """
