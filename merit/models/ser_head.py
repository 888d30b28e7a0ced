"""Attentive-statistics-pooling emotion classifier (the Sparse MERIT SER branch)."""
from typing import Tuple

import torch

from merit.models.abs_ser_head import AbsSERHead
from merit.models.pad_mask import valid_mask


class AttentiveStatsSERHead(AbsSERHead):
    """Attentive statistics pooling over the valid frames, then an MLP classifier.

    Pooling: scores = Linear(F -> attention_size) -> tanh -> Linear(-> 1) per frame,
    softmax over the valid frames only; output the weighted mean and the weighted
    standard deviation sqrt(clamp(E[(x - mean)^2], min=1e-6)), concatenated (2F).
    The pooling runs in at least float32, also under autocast (see ``pool``).
    Classifier: Dropout -> Linear(2F -> hidden_size) -> LayerNorm -> ReLU -> Dropout
    -> Linear(hidden_size -> num_classes).
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int = 4,
        attention_size: int = 128,
        hidden_size: int = 1024,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.input_size = input_size
        self._num_classes = num_classes
        self.attention = torch.nn.Sequential(
            torch.nn.Linear(input_size, attention_size),
            torch.nn.Tanh(),
            torch.nn.Linear(attention_size, 1),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear(2 * input_size, hidden_size),
            torch.nn.LayerNorm(hidden_size),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, num_classes),
        )

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def _valid(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) bool, True at valid frames (at least the first frame of each utterance)."""
        return valid_mask(lengths.long().clamp(min=1), features.size(1), features.device)

    def attention_weights(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) -> (B, T) attention weights: zero at padded frames, summing
        to 1 over each utterance's valid frames. Computed in at least float32 (float64
        stays float64), also under autocast: bf16 scores would move every weight by up
        to ~0.4 %."""
        valid = self._valid(features, lengths)
        dtype = torch.promote_types(features.dtype, torch.float32)
        with torch.autocast(device_type=features.device.type, enabled=False):
            weight_dtype = self.attention[0].weight.dtype
            scores = self.attention(features.to(weight_dtype)).squeeze(-1).to(dtype)
            scores = scores.masked_fill(~valid, torch.finfo(dtype).min)
            return torch.softmax(scores, dim=1) * valid

    def pool(self, features: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attentive statistics: (B, T, F), (B,) -> ((B, 2F) mean ‖ std, (B, T) weights),
        in at least float32 whatever the features' dtype or autocast say.

        The variance is the weighted mean of squared deviations from the mean, not
        E[x^2] - mean^2: that difference cancels when |mean| >> std (in bf16, mean 5 and
        std 0.05 gave stds off by up to 650 %; in float32 it fails at mean 100, std 0.01).
        """
        valid = self._valid(features, lengths)
        dtype = torch.promote_types(features.dtype, torch.float32)
        with torch.autocast(device_type=features.device.type, enabled=False):
            x = features.to(dtype).masked_fill(~valid[:, :, None], 0.0)  # padding may hold anything
            weights = self.attention_weights(x, lengths)
            mean = torch.einsum("bt,btf->bf", weights, x)
            deviation = x - mean[:, None, :]  # padded frames have weight 0, whatever this is
            variance = torch.einsum("bt,btf->bf", weights, deviation * deviation)
            std = torch.sqrt(variance.clamp(min=1e-6))
        return torch.cat([mean, std], dim=-1), weights

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Classify utterances.

        Args:
            features: (B, T, F) float, T in frames.
            lengths: (B,) int, valid frames (>= 1; 0 is treated as 1).
        Returns:
            (B, num_classes) logits.
        """
        if features.size(-1) != self.input_size:
            raise ValueError(f"expected features of size {self.input_size}, got {features.size(-1)}")
        pooled, _ = self.pool(features, lengths)
        return self.classifier(pooled)
