"""A tiny random WavLM checkpoint in the format s3prl's ``wavlm_local`` loads."""
from pathlib import Path

import torch

import merit  # noqa: F401  (torchaudio shim before s3prl)

TINY_CFG = {
    "extractor_mode": "default",
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 2,
    "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 32,
    "max_distance": 64,
    "gru_rel_pos": True,
    "normalize": False,
}


def make_tiny_wavlm(path: Path, seed: int = 0) -> Path:
    """Save ``{"cfg": ..., "model": ...}`` for a 2-layer, 32-dim WavLM (3 hidden states)."""
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    torch.manual_seed(seed)
    model = WavLM(WavLMConfig(TINY_CFG))
    torch.save({"cfg": dict(TINY_CFG), "model": model.state_dict()}, path)
    return path
