"""Mask-based speech-enhancement head (the Sparse MERIT SE branch).

Units: ``S`` counts waveform samples (16 kHz in the paper), ``T`` SSL frames
(20 ms for WavLM) and ``N`` STFT frames (``hop_length`` samples apart, 10 ms for
the paper's hop of 160). ``K = n_fft // 2 + 1`` frequency bins (201 for n_fft 400).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Union

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from merit.models.abs_se_head import AbsSEHead
from merit.models.batch_invariant_lstm import batch_invariant_blstm
from merit.models.pad_mask import valid_mask


@dataclass
class SEOutput:
    """What ``MaskSEHead.forward`` returns; values at padded frames (n >= frame_lengths[b]) are zero."""

    mask: torch.Tensor  # (B, N, K) in [mask_floor, 1], in the head's mask_domain
    noisy_logmag: torch.Tensor  # (B, N, K) log1p(|noisy STFT|)
    enhanced_logmag: torch.Tensor  # (B, N, K) log1p of the enhanced magnitude
    frame_lengths: torch.Tensor  # (B,) valid STFT frames, 1 + noisy_lengths // hop
    noisy_spec: torch.Tensor  # (B, N, K) complex noisy STFT, its phase is used for resynthesis
    noisy_lengths: torch.Tensor  # (B,) valid samples of the noisy input


def masked_l1_loss(
    estimate: torch.Tensor, target: torch.Tensor, frame_lengths: torch.Tensor
) -> torch.Tensor:
    """Mean absolute error over the valid time-frequency bins only.

    Args:
        estimate, target: (B, N, K) float.
        frame_lengths: (B,) int, valid frames per utterance; frames n >= frame_lengths[b]
            are ignored whatever they hold.
    Returns:
        scalar: sum of |estimate - target| over valid bins / (number of valid frames * K).
    """
    valid = valid_mask(frame_lengths.clamp(max=estimate.size(1)), estimate.size(1), estimate.device)
    diff = (estimate - target).abs().masked_fill(~valid[:, :, None], 0.0)
    count = valid.sum().clamp(min=1) * estimate.size(2)
    return diff.sum() / count


ALIGNMENTS = ("centres", "repeat")
MASK_DOMAINS = ("log1p", "magnitude")


class MaskSEHead(AbsSEHead):
    """Sigmoid mask on the noisy STFT magnitude, predicted from SSL features.

    SE features (B, T, F) are brought to the STFT frame rate (``alignment``), one per
    STFT frame, concatenated with the noisy log1p magnitude, then
    Linear(F + K -> linear_size) -> BLSTM(blstm_size, blstm_layers; forward and
    backward outputs summed) -> Linear(blstm_size -> K) -> sigmoid, scaled into
    [mask_floor, 1].

    Alignment (SSL frame t is centred at sample ``ssl_offset + t * ssl_hop``, STFT
    frame n at ``n * hop_length``):
        ``centres``: STFT frame n takes the SSL frame whose centre is nearest to its
            own, for any ratio of the two hops.
        ``repeat``: STFT frame n takes SSL frame n // (ssl_hop // hop_length), as
            models trained before this option did (their centres about 12.5 ms apart
            for WavLM; a config without the key gets it, so those models decode as
            they were trained). Needs ssl_hop to be a multiple of hop_length.
    In both, an SSL frame past the utterance's valid ones is replaced by its last
    valid frame.

    Mask domain (Y noisy, C clean STFT; the loss is always the L1 distance of log1p
    magnitudes, the paper's, so its scale against the SER loss does not change):
        ``log1p`` (the paper's): log1p|Y_hat| = mask * log1p|Y|.
        ``magnitude``: |Y_hat| = mask * |Y|.

    STFTs are centred (``center=True`` semantics, reflect padding) for each
    utterance at its own length, so padding in a batch never changes an utterance's
    frames; the BLSTM input is packed for the same reason in training, and in eval
    mode runs through ``batch_invariant_blstm``, so that an utterance's mask is the
    same bits whatever else is in its batch.
    """

    def __init__(
        self,
        input_size: int,
        ssl_hop: int = 320,
        ssl_offset: int = 200,
        alignment: str = "repeat",
        n_fft: int = 400,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hamming",
        linear_size: int = 256,
        blstm_size: int = 256,
        blstm_layers: int = 2,
        mask_domain: str = "log1p",
        mask_floor: float = 0.0,
    ):
        super().__init__()
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        if mask_domain not in MASK_DOMAINS:
            raise ValueError(f"mask_domain must be one of {MASK_DOMAINS}, got {mask_domain!r}")
        if not 0.0 <= mask_floor < 1.0:
            raise ValueError(f"mask_floor must be in [0, 1), got {mask_floor}")
        if ssl_hop < 1:
            raise ValueError(f"ssl_hop must be >= 1 sample, got {ssl_hop}")
        if alignment == "repeat" and ssl_hop % hop_length:
            raise ValueError(f"alignment repeat needs the upstream's hop ({ssl_hop} samples) to "
                             f"be a multiple of the STFT hop ({hop_length}); use alignment: centres")
        if win_length > n_fft:
            raise ValueError(f"win_length {win_length} > n_fft {n_fft}")
        window_fn = getattr(torch, f"{window}_window", None)
        if window_fn is None:
            raise ValueError(f"unknown window {window!r} (torch.{window}_window does not exist)")
        self.input_size = input_size
        self.ssl_hop = ssl_hop
        self.ssl_offset = ssl_offset
        self.alignment = alignment
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.window = window
        self.mask_domain = mask_domain
        self.mask_floor = float(mask_floor)
        self._window_fn = window_fn
        self.num_bins = n_fft // 2 + 1
        self.blstm_size = blstm_size
        self.linear_in = torch.nn.Linear(input_size + self.num_bins, linear_size)
        self.blstm = torch.nn.LSTM(
            linear_size, blstm_size, num_layers=blstm_layers, batch_first=True, bidirectional=True
        )
        self.linear_out = torch.nn.Linear(blstm_size, self.num_bins)

    # ---- STFT helpers -------------------------------------------------------------

    def stft_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """STFT frames of centred STFTs of ``num_samples`` (B,) samples: 1 + S // hop
        (for even n_fft). Returns (B,) int64 on the same device."""
        pad = self.n_fft // 2
        return 1 + torch.div(num_samples.long() + 2 * pad - self.n_fft, self.hop_length, rounding_mode="floor")

    def _window(self, like: torch.Tensor) -> torch.Tensor:
        """(win_length,) analysis window on ``like``'s device and dtype."""
        return self._window_fn(self.win_length, device=like.device, dtype=like.dtype)

    def _stft(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Complex STFT (B, N, K), N = stft_frames(S), each utterance reflect-padded
        by n_fft // 2 at its own ends (frames n < stft_frames(lengths[b]) equal
        ``torch.stft(wave[b, :lengths[b]], center=True)``)."""
        if wave.dim() != 2:
            raise ValueError(f"expected a waveform batch (B, S), got {tuple(wave.shape)}")
        batch, num_samples = wave.shape
        pad = self.n_fft // 2
        lengths = lengths.to(wave.device).long().clamp(min=1, max=num_samples)[:, None]
        # source sample for every position of the padded signal: reflect at both ends
        pos = torch.arange(num_samples + 2 * pad, device=wave.device)[None, :] - pad
        pos = pos.abs()
        pos = torch.where(pos > lengths - 1, 2 * (lengths - 1) - pos, pos)
        pos = torch.minimum(pos.clamp(min=0), lengths - 1)  # beyond the reflection: repeat edges
        padded = torch.gather(wave, 1, pos.expand(batch, -1))
        spec = torch.stft(
            padded,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._window(wave),
            center=False,
            return_complex=True,
        )
        return spec.transpose(1, 2)

    def _istft(
        self, spec: torch.Tensor, frame_lengths: torch.Tensor, num_samples: torch.Tensor
    ) -> torch.Tensor:
        """Inverse of ``_stft`` by weighted overlap-add, each utterance normalised by
        the window envelope of its own valid frames only.

        Args:
            spec: (B, N, K) complex.
            frame_lengths: (B,) valid frames.
            num_samples: (B,) samples to return per utterance.
        Returns:
            (B, max(num_samples)) float; samples >= num_samples[b] are zero.
        """
        batch, num_frames, _ = spec.shape
        pad = self.n_fft // 2
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=-1)  # (B, N, n_fft)
        left = (self.n_fft - self.win_length) // 2
        window = torch.nn.functional.pad(
            self._window(frames), (left, self.n_fft - self.win_length - left)
        )
        valid = valid_mask(frame_lengths, num_frames, frames.device).to(frames.dtype)
        frames = frames * window * valid[:, :, None]
        out_len = (num_frames - 1) * self.hop_length + self.n_fft

        def overlap_add(x: torch.Tensor) -> torch.Tensor:  # (B, N, n_fft) -> (B, out_len)
            return torch.nn.functional.fold(
                x.transpose(1, 2),
                output_size=(1, out_len),
                kernel_size=(1, self.n_fft),
                stride=(1, self.hop_length),
            ).reshape(x.size(0), out_len)

        signal = overlap_add(frames)
        envelope = overlap_add((window * window)[None, None, :] * valid[:, :, None])
        nonzero = envelope > 1e-11
        signal = torch.where(nonzero, signal / torch.where(nonzero, envelope, torch.ones_like(envelope)), 0.0)
        num_samples = num_samples.to(signal.device).long()
        total = int(num_samples.max()) if batch > 0 else 0
        signal = signal[:, pad : pad + total]
        if signal.size(1) < total:
            signal = torch.nn.functional.pad(signal, (0, total - signal.size(1)))
        keep = valid_mask(num_samples, total, signal.device)
        return signal * keep.to(signal.dtype)

    def ssl_frame_of(self, num_frames: int, device=None) -> torch.Tensor:
        """(num_frames,) int64: the SSL frame each STFT frame takes (``alignment``),
        before the clamp to an utterance's valid SSL frames (may be negative)."""
        n = torch.arange(num_frames, device=device)
        if self.alignment == "repeat":
            return n // (self.ssl_hop // self.hop_length)
        # nearest centre: round((n * hop - offset) / ssl_hop), ties to the later frame
        return torch.div(2 * (n * self.hop_length - self.ssl_offset) + self.ssl_hop,
                         2 * self.ssl_hop, rounding_mode="floor")

    def align_features(
        self, features: torch.Tensor, feature_lengths: torch.Tensor, num_frames: int
    ) -> torch.Tensor:
        """SSL features (B, T, F) -> (B, num_frames, F) at the STFT frame rate.

        STFT frame n takes SSL frame ``ssl_frame_of(n)`` clamped to
        [0, feature_lengths[b] - 1]: the excess cut, any shortfall filled with the last
        valid frame.
        """
        batch, num_in, size = features.shape
        last = feature_lengths.to(features.device).long().clamp(min=1, max=num_in)[:, None] - 1
        src = self.ssl_frame_of(num_frames, features.device)[None, :].clamp(min=0)
        src = torch.minimum(src, last)  # (B, N)
        return torch.gather(features, 1, src[:, :, None].expand(batch, num_frames, size))

    def apply_mask(self, mask: torch.Tensor, noisy_logmag: torch.Tensor) -> torch.Tensor:
        """Enhanced log1p magnitude (B, N, K) of a mask in this head's ``mask_domain``."""
        if self.mask_domain == "log1p":
            return mask * noisy_logmag
        return torch.log1p(mask * torch.expm1(noisy_logmag))

    def ideal_mask(self, noisy_spec: torch.Tensor, clean_spec: torch.Tensor) -> torch.Tensor:
        """The mask of this head's family that best gives the clean magnitude, clipped
        to [mask_floor, 1]: log1p|C| / log1p|Y| (``log1p``) or |C| / |Y|
        (``magnitude``); ``mask_floor`` where |Y| is 0. (B, N, K) float."""
        if self.mask_domain == "log1p":
            num, den = torch.log1p(clean_spec.abs()), torch.log1p(noisy_spec.abs())
        else:
            num, den = clean_spec.abs(), noisy_spec.abs()
        ratio = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), 0.0)
        return ratio.clamp(min=self.mask_floor, max=1.0)

    def oracle_settings(self) -> Dict[str, dict]:
        """What each of ``oracle_outputs`` depends on: both the STFT, the ideal mask also
        the mask family."""
        stft = dict(n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length,
                    window=self.window)
        return {"oracle_mask": dict(stft, mask_domain=self.mask_domain, mask_floor=self.mask_floor),
                "oracle_magnitude": stft}

    def oracle_outputs(
        self, noisy: torch.Tensor, clean: torch.Tensor, lengths: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """The bounds of this head, resynthesised as its output is (noisy phase, ``_istft``).

        Args:
            noisy, clean: (B, S) float waveforms, aligned.
            lengths: (B,) valid samples.
        Returns:
            {"oracle_mask": the ideal mask of this head's family applied to the noisy
            STFT, "oracle_magnitude": the clean magnitude with the noisy phase}, each
            (B, S) float; samples beyond an utterance's length are zero.
        """
        lengths = lengths.to(noisy.device).long().clamp(max=noisy.size(1))
        frame_lengths = self.stft_frames(lengths)
        noisy_spec, clean_spec = self._stft(noisy, lengths), self._stft(clean, lengths)
        noisy_logmag = torch.log1p(noisy_spec.abs())
        enhanced = torch.expm1(self.apply_mask(self.ideal_mask(noisy_spec, clean_spec), noisy_logmag))
        phase = torch.angle(noisy_spec)
        return {name: self._istft(torch.polar(magnitude, phase), frame_lengths, lengths)
                for name, magnitude in (("oracle_mask", enhanced),
                                        ("oracle_magnitude", clean_spec.abs()))}

    # ---- AbsSEHead API ------------------------------------------------------------

    def forward(
        self,
        features: torch.Tensor,
        feature_lengths: torch.Tensor,
        noisy: torch.Tensor,
        noisy_lengths: torch.Tensor,
    ) -> SEOutput:
        """Predict the mask.

        Args:
            features: (B, T, F) float SE features at the SSL frame rate.
            feature_lengths: (B,) int, valid SSL frames.
            noisy: (B, S) float noisy waveform.
            noisy_lengths: (B,) int, valid samples.
        Returns:
            SEOutput with (B, N, K) tensors, N = 1 + S // hop_length.
        """
        if features.size(-1) != self.input_size:
            raise ValueError(f"expected features of size {self.input_size}, got {features.size(-1)}")
        noisy_lengths = noisy_lengths.to(noisy.device).long().clamp(max=noisy.size(1))
        frame_lengths = self.stft_frames(noisy_lengths)
        noisy_spec = self._stft(noisy, noisy_lengths)
        batch, num_frames, _ = noisy_spec.shape
        valid = valid_mask(frame_lengths, num_frames)[:, :, None]
        noisy_logmag = torch.log1p(noisy_spec.abs()) * valid

        aligned = self.align_features(features, feature_lengths, num_frames)
        hidden = self.linear_in(torch.cat([aligned, noisy_logmag.to(aligned.dtype)], dim=-1))
        if self.training:
            packed = pack_padded_sequence(
                hidden, frame_lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            hidden, _ = self.blstm(packed)
            hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=num_frames)
        else:  # an utterance's mask does not depend on what else is in its batch
            hidden = batch_invariant_blstm(self.blstm, hidden, frame_lengths)
        hidden = hidden.view(batch, num_frames, 2, self.blstm_size).sum(dim=2)
        mask = self.mask_floor + (1.0 - self.mask_floor) * torch.sigmoid(self.linear_out(hidden))
        mask = mask * valid
        return SEOutput(
            mask=mask,
            noisy_logmag=noisy_logmag,
            enhanced_logmag=self.apply_mask(mask, noisy_logmag),
            frame_lengths=frame_lengths,
            noisy_spec=noisy_spec,
            noisy_lengths=noisy_lengths,
        )

    def loss(self, output: SEOutput, clean: torch.Tensor, clean_lengths: torch.Tensor) -> torch.Tensor:
        """L1 between the enhanced and the clean log1p magnitudes, averaged over the
        valid time-frequency bins (frames valid in both the noisy and the clean).

        Args:
            output: from ``forward``.
            clean: (B, S) float clean waveform aligned with the noisy one.
            clean_lengths: (B,) int, valid samples.
        Returns:
            scalar.
        """
        clean_lengths = clean_lengths.to(clean.device).long().clamp(max=clean.size(1))
        clean_logmag = torch.log1p(self._stft(clean, clean_lengths).abs())
        num_frames = min(output.enhanced_logmag.size(1), clean_logmag.size(1))
        lengths = torch.minimum(output.frame_lengths, self.stft_frames(clean_lengths).to(output.frame_lengths.device))
        return masked_l1_loss(
            output.enhanced_logmag[:, :num_frames],
            clean_logmag[:, :num_frames].to(output.enhanced_logmag.dtype),
            lengths,
        )

    def enhance(
        self, output: SEOutput, num_samples: Optional[Union[int, torch.Tensor]] = None
    ) -> torch.Tensor:
        """Enhanced waveform: expm1(enhanced log1p magnitude) with the noisy phase, inverse STFT.

        Args:
            output: from ``forward``.
            num_samples: samples to return: (B,) per utterance, an int for all, or
                None for the noisy lengths.
        Returns:
            (B, S) float, S = max(num_samples); samples beyond an utterance's length are zero.
        """
        if num_samples is None:
            num_samples = output.noisy_lengths
        elif not torch.is_tensor(num_samples):
            num_samples = torch.full_like(output.noisy_lengths, int(num_samples))
        magnitude = torch.expm1(output.enhanced_logmag)
        spec = torch.polar(magnitude.to(output.noisy_spec.real.dtype), torch.angle(output.noisy_spec))
        return self._istft(spec, output.frame_lengths, num_samples)
