"""Time the GPU stages of the MSP-Podcast recipe at the paper's sizes (for its README).

    python -m merit.bin.bench_stages --device cuda [--utt_seconds 6] [--out bench.json]

WavLM Large is built from its architecture with random weights (s3prl's WavLM class,
the Large configuration, saved as a ``wavlm_local`` checkpoint), so nothing is
downloaded: its speed is the real model's, its outputs are not. The heads are the
recipe's: ``egs/msp_podcast/merit/conf/train.yaml`` merged with
``conf/systems/sparse_merit.yaml``. Median of ``--repeats`` timed runs after a warm-up:

* stage 3: one WavLM Large forward of one utterance, all 25 hidden states, fp32 (as
  ``dump_ssl`` runs it): the real-time factor;
* stage 4, phase 1: a training step on dumped features (batch 32 × 25 × 1024):
  utterances per second;
* stage 5: decoding one utterance from its dumped features with the phase-1 model,
  through ``merit.inference.Speech2Merit`` as ``merit.bin.merit_inference`` does:
  the real-time factor;
* stage 4, phase 2: a fine-tuning step with WavLM Large online (batch 8), fp32 and,
  on CUDA, with bf16 autocast (what ESPnet's ``--use_amp`` picks on GPUs that support
  bf16; it is CUDA-only, so a CPU run measures fp32 alone).

Each measure is printed as a table row as soon as it is taken (a CPU run of the full
sizes takes tens of minutes). Memory: the peak GPU memory allocated on CUDA, the
peak resident memory of the whole process on a CPU.

``--tiny`` swaps in a 2-layer WavLM and small heads, to check the script on a CPU.
"""
import argparse
import resource
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

import merit  # noqa: F401  (torchaudio shim before s3prl)
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from merit.bin import compose_config
from merit.inference import Speech2Merit
from merit.tasks.merit_task import MeritTask
from merit.utils.measure_table import MeasureTable

REPO = Path(__file__).resolve().parents[2]
RATE = 16000
WAVLM_LARGE = {
    "extractor_mode": "layer_norm", "encoder_layers": 24, "encoder_embed_dim": 1024,
    "encoder_ffn_embed_dim": 4096, "encoder_attention_heads": 16, "layer_norm_first": True,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "conv_bias": False, "conv_pos": 128, "conv_pos_groups": 16,
    "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800,
    "gru_rel_pos": True, "normalize": True,
}
WAVLM_TINY = {**WAVLM_LARGE, "extractor_mode": "default", "encoder_layers": 2,
              "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
              "layer_norm_first": False, "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
              "conv_pos": 16, "conv_pos_groups": 4, "num_buckets": 32, "max_distance": 64,
              "normalize": False}
TINY_SIZES = ["--moe_conf", "hidden_size=64", "--moe_conf", "output_size=32",
              "--se_head_conf", "blstm_size=16", "--ser_head_conf", "hidden_size=32"]


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--utt_seconds", type=float, default=6.0, help="length of each utterance")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="small models, to test on a CPU")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    return parser


def save_random_wavlm(cfg: dict, path: Path) -> Path:
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    torch.manual_seed(0)
    torch.save({"cfg": dict(cfg), "model": WavLM(WavLMConfig(cfg)).state_dict()}, path)
    return path


def build_model(frontend_args, tiny: bool, workdir: Path):
    config = workdir / "train_config.yaml"
    recipe = REPO / "egs" / "msp_podcast" / "merit" / "conf"
    compose_config.main([str(recipe / "train.yaml"), str(recipe / "systems" / "sparse_merit.yaml"),
                         "--out", str(config)])
    args = MeritTask.get_parser().parse_args(["--config", str(config), *frontend_args,
                                              *(TINY_SIZES if tiny else [])])
    model = MeritTask.build_model(args)
    return model, MeritTask.build_optimizers(args, model)[0], args


def decoder(model, args, device: str, workdir: Path) -> Speech2Merit:
    """Stage 5's decoder of ``model``: saved as a model dir, loaded as merit_inference does."""
    model_dir = workdir / "decode_model"
    model_dir.mkdir()
    (model_dir / "config.yaml").write_text(yaml_no_alias_safe_dump(vars(args), sort_keys=False))
    torch.save(model.state_dict(), model_dir / "bench.pth")
    return Speech2Merit(model_dir, checkpoint="bench.pth", device=device)


def median_seconds(step, device: str, repeats: int) -> float:
    """Median wall time of ``step()`` over ``repeats`` runs, after one warm-up run."""
    step()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch(size: int, samples: int, device: str, feats_shape=None) -> dict:
    lengths = torch.full((size,), samples, dtype=torch.long, device=device)
    data = dict(speech=torch.randn(size, samples, device=device) * 0.1, speech_lengths=lengths,
                speech_ref1=torch.randn(size, samples, device=device) * 0.1,
                speech_ref1_lengths=lengths,
                emotion=torch.arange(size, device=device)[:, None] % 4)
    if feats_shape is not None:
        frames, layers, dim = feats_shape
        data["feats"] = torch.randn(size, frames, layers, dim, device=device)
        data["feats_lengths"] = torch.full((size,), frames, dtype=torch.long, device=device)
    return data


def train_step(model, optimizer, data: dict, autocast):
    def step():
        optimizer.zero_grad()
        with autocast():
            loss, _, _ = model(**data)
        loss.backward()
        optimizer.step()
    return step


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    device, samples = args.device, int(args.utt_seconds * RATE)
    table = MeasureTable()
    record = table.record
    record("device", torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
    for key, value in (("torch", torch.__version__), ("utt_seconds", args.utt_seconds),
                       ("tiny", args.tiny)):
        record(key, value)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ckpt = save_random_wavlm(WAVLM_TINY if args.tiny else WAVLM_LARGE, workdir / "wavlm.pt")
        from merit.models.frontend import S3PRLFrontend

        wavlm = S3PRLFrontend("wavlm_local", path_or_url=str(ckpt)).to(device).eval()
        wav = torch.randn(1, samples, device=device) * 0.1
        wav_len = torch.tensor([samples], device=device)
        with torch.no_grad():
            hidden, _ = wavlm(wav, wav_len)

            def forward():
                wavlm(wav, wav_len)
            seconds = median_seconds(forward, device, args.repeats)
        record("stage3_rtf", seconds / args.utt_seconds)
        frames, layers, dim = hidden.shape[1:]
        del wavlm

        dumped = ["--frontend", "dumped", "--frontend_conf", f"num_layers={layers}",
                  "--frontend_conf", f"hidden_size={dim}", "--frontend_conf", "downsample_rate=320"]
        model, optimizer, model_args = build_model(dumped, args.tiny, workdir)
        model.to(device).train()
        step = train_step(model, optimizer, batch(32, samples, device, (frames, layers, dim)), nullcontext)
        record("stage4_phase1_utts_per_s", 32 / median_seconds(step, device, args.repeats))
        del optimizer, step  # the step holds the optimizer and the batch
        speech2merit = decoder(model, model_args, device, workdir)
        del model
        noisy = np.random.default_rng(0).standard_normal(samples).astype(np.float32) * 0.1
        feats = hidden[0].cpu().numpy().astype(np.float16)  # as dumped

        def decode():
            speech2merit(noisy, feats)
        record("stage5_rtf", median_seconds(decode, device, args.repeats) / args.utt_seconds)
        del speech2merit

        online = ["--frontend", "s3prl", "--frontend_conf", "upstream=wavlm_local",
                  "--frontend_conf", f"path_or_url={ckpt}", "--frontend_conf", "freeze=false"]
        model, optimizer, _ = build_model(online, args.tiny, workdir)
        model.to(device).train()
        data = batch(8, samples, device)
        precisions = [("fp32", nullcontext)]
        if device == "cuda":
            precisions.append(("bf16", lambda: torch.autocast(device, dtype=torch.bfloat16)))
        for name, autocast in precisions:
            step = train_step(model, optimizer, data, autocast)
            record(f"stage4_phase2_{name}_utts_per_s", 8 / median_seconds(step, device, args.repeats))
        if device == "cuda":
            record("max_memory_gb", torch.cuda.max_memory_allocated() / 2 ** 30)
        else:
            record("peak_rss_gb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)
    if args.out:
        table.write_json(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
