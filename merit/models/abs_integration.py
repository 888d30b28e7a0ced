"""Abstract base for layer integration: SSL hidden states of all layers -> one feature per frame."""
from abc import ABC, abstractmethod

import torch


class AbsIntegration(torch.nn.Module, ABC):
    """Combines the L hidden layers of an SSL model into a single feature sequence.

    Implementations are built as ``cls(num_layers=L, hidden_size=D, **conf)``.
    """

    @property
    @abstractmethod
    def output_size(self) -> int:
        """F, the size of each output frame."""

    @abstractmethod
    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Integrate the layers.

        Args:
            hidden_states: (B, T, L, D) float, T in SSL frames.
            lengths: (B,) int, valid SSL frames per utterance.
        Returns:
            (B, T, F) float; frames at or beyond ``lengths`` are zero.
        """
