"""Abstract base for speech-enhancement heads: SSL-side features + noisy waveform -> enhanced speech."""
from abc import ABC, abstractmethod
from typing import Any, Optional, Union

import torch


class AbsSEHead(torch.nn.Module, ABC):
    """An SE head built as ``cls(input_size=F, **conf)``.

    ``forward`` returns an implementation-defined output object (e.g. a dataclass
    holding the mask and the noisy spectrum) that ``loss`` and ``enhance`` accept.
    """

    @abstractmethod
    def forward(
        self,
        features: torch.Tensor,
        feature_lengths: torch.Tensor,
        noisy: torch.Tensor,
        noisy_lengths: torch.Tensor,
    ) -> Any:
        """Estimate the enhancement.

        Args:
            features: (B, T, F) float, T in SSL frames.
            feature_lengths: (B,) int, valid SSL frames.
            noisy: (B, S) float waveform, S in samples.
            noisy_lengths: (B,) int, valid samples.
        """

    @abstractmethod
    def loss(self, output: Any, clean: torch.Tensor, clean_lengths: torch.Tensor) -> torch.Tensor:
        """Scalar training loss against the clean waveform (B, S) with lengths (B,) in samples."""

    @abstractmethod
    def enhance(
        self, output: Any, num_samples: Optional[Union[int, torch.Tensor]] = None
    ) -> torch.Tensor:
        """Enhanced waveform (B, S) in samples."""
