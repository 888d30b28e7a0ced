"""Layer integration modules (see AbsIntegration)."""
import torch

from merit.models.abs_integration import AbsIntegration
from merit.models.pad_mask import valid_mask


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the frames t >= lengths[b] of x (B, T, ...)."""
    valid = valid_mask(lengths, x.size(1), x.device)
    return x * valid.view(valid.shape + (1,) * (x.dim() - 2)).to(x.dtype)


def _check_shape(hidden_states: torch.Tensor, num_layers: int, hidden_size: int) -> None:
    if hidden_states.dim() != 4 or hidden_states.shape[2:] != (num_layers, hidden_size):
        raise ValueError(
            f"expected hidden states (B, T, {num_layers}, {hidden_size}), "
            f"got {tuple(hidden_states.shape)}"
        )


class ConcatIntegration(AbsIntegration):
    """The paper's integration: a separate LayerNorm(D) for each layer, then the L
    normalised layers concatenated per frame, so F = L * D (layer 0 first)."""

    def __init__(self, num_layers: int, hidden_size: int):
        super().__init__()
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.layer_norms = torch.nn.ModuleList(
            torch.nn.LayerNorm(hidden_size) for _ in range(num_layers)
        )

    @property
    def output_size(self) -> int:
        return self.num_layers * self.hidden_size

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, L, D), (B,) -> (B, T, L*D); padded frames are zero."""
        _check_shape(hidden_states, self.num_layers, self.hidden_size)
        normed = [norm(hidden_states[:, :, i]) for i, norm in enumerate(self.layer_norms)]
        return _zero_padding(torch.cat(normed, dim=-1), lengths)


class WeightedSumIntegration(AbsIntegration):
    """Learnable softmax-normalised layer weights (equal at init), optionally after a
    separate LayerNorm(D) per layer; the weighted sum of the layers gives F = D."""

    def __init__(self, num_layers: int, hidden_size: int, layer_norm: bool = True):
        super().__init__()
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        # softmax(zeros) = 1/L for every layer
        self.layer_weights = torch.nn.Parameter(torch.zeros(num_layers))
        self.layer_norms = (
            torch.nn.ModuleList(torch.nn.LayerNorm(hidden_size) for _ in range(num_layers))
            if layer_norm
            else None
        )

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def normalized_weights(self) -> torch.Tensor:
        """(L,) layer weights, non-negative and summing to 1."""
        return torch.softmax(self.layer_weights, dim=0)

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, L, D), (B,) -> (B, T, D); padded frames are zero."""
        _check_shape(hidden_states, self.num_layers, self.hidden_size)
        if self.layer_norms is not None:
            hidden_states = torch.stack(
                [norm(hidden_states[:, :, i]) for i, norm in enumerate(self.layer_norms)],
                dim=2,
            )
        weights = self.normalized_weights().to(hidden_states.dtype)
        summed = (hidden_states * weights[:, None]).sum(dim=2)
        return _zero_padding(summed, lengths)
