"""Time the sparse expert layer against the same layer computed densely-then-masked.

    python -m merit.bin.bench_moe [--frames 8192 --experts 8 --top_k 1 ...] [--device cuda]
    python -m merit.bin.bench_moe --sweep      # E in {3, 8, 16} x k in {1, 2}, markdown table

Both paths use the same ``SparseMoE`` weights and the same input, with both tasks
("se", "ser") as in the model, and are timed forward + backward (backward from fixed
random gradients of both task outputs, plus the balance loss):

* sparse: ``SparseMoE.forward``: each expert runs only on the frames routed to it;
* masked: what the authors' code did: every expert on every frame, then each
  task's output is the sum over experts of (top-k mask x probability x expert output).

The two give the same outputs (the max difference is printed). Time is the median of
``--repeats`` runs after ``--warmup`` runs (time.perf_counter, CUDA synchronised);
the sparse and masked runs alternate, so that a busy machine slows both alike.
"""
import argparse
import statistics
import sys
import time
from typing import Dict, List, Tuple

import torch

from merit.models.moe import SparseMoE, switch_balance_loss

TASKS = ("se", "ser")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8192, help="valid frames per batch")
    parser.add_argument("--input_size", type=int, default=2048)
    parser.add_argument("--hidden_size", type=int, default=1024)
    parser.add_argument("--output_size", type=int, default=1024)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top_k", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: leave torch's default)")
    parser.add_argument("--sweep", action="store_true",
                        help="run E in {3, 8, 16} x k in {1, 2} and print a markdown table")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def masked_forward(layer: SparseMoE, x: torch.Tensor, mask: torch.Tensor
                   ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Dense-then-masked reference: every expert on every frame, top-k mask after.

    x (B, T, F), mask (B, T) -> (task -> (B, T, O), balance loss ()). Padded frames
    are computed too and zeroed at the end, as in the authors' code.
    """
    valid = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    weights, balance = {}, None
    for task in layer.tasks:
        probs = torch.softmax(layer.gates[task](x), dim=-1)  # (B, T, E)
        top_prob, top_idx = probs.topk(layer.top_k, dim=-1)
        if layer.normalize_topk:
            top_prob = top_prob / top_prob.sum(-1, keepdim=True)
        weights[task] = torch.zeros_like(probs).scatter(-1, top_idx, top_prob) * valid
        loss = switch_balance_loss(probs, top_idx, mask, layer.num_experts, layer.balance_weight)
        balance = loss if balance is None else balance + loss
    features = {}
    for e, expert in enumerate(layer.experts):
        y = expert(x)  # (B, T, O)
        for task in layer.tasks:
            term = weights[task][..., e:e + 1] * y
            features[task] = term if e == 0 else features[task] + term
    return features, balance


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_ms(fn, layer, x, mask, upstream: Dict[str, torch.Tensor]) -> Tuple[float, float]:
    """(wall ms, process CPU ms) of one forward + backward of ``fn``, fixed upstream grads."""
    layer.zero_grad(set_to_none=True)
    _sync(x.device)
    start, start_cpu = time.perf_counter(), time.process_time()
    features, balance = fn(layer, x, mask)
    torch.autograd.backward([features[t] for t in TASKS] + [balance],
                            [upstream[t] for t in TASKS] + [None])
    _sync(x.device)
    return (time.perf_counter() - start) * 1e3, (time.process_time() - start_cpu) * 1e3


def time_paths(paths, layer, x, mask, repeats: int, warmup: int
               ) -> List[Tuple[float, float]]:
    """Per path, median (wall ms, CPU ms); the paths' runs alternate (same machine load)."""
    gen = torch.Generator(device=x.device).manual_seed(1)
    upstream = {t: torch.randn(*x.shape[:2], layer.output_size, device=x.device,
                               dtype=x.dtype, generator=gen) for t in TASKS}
    times: List[List[Tuple[float, float]]] = [[] for _ in paths]
    for i in range(warmup + repeats):
        for fn, kept in zip(paths, times):
            ms = _step_ms(fn, layer, x, mask, upstream)
            if i >= warmup:
                kept.append(ms)
    return [(statistics.median(w for w, _ in kept), statistics.median(c for _, c in kept))
            for kept in times]


def _sparse(layer, x, mask):
    out = layer(x, mask)
    return out.features, out.balance_loss


def bench_one(args, experts: int, top_k: int) -> Dict[str, float]:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    layer = SparseMoE(args.input_size, tasks=TASKS, num_experts=experts, top_k=top_k,
                      hidden_size=args.hidden_size, output_size=args.output_size).to(device)
    x = torch.randn(1, args.frames, args.input_size, device=device)
    mask = torch.ones(1, args.frames, dtype=torch.bool, device=device)
    with torch.no_grad():
        out = layer(x, mask)
        ref, _ = masked_forward(layer, x, mask)
        diff = max((out.features[t] - ref[t]).abs().max().item() for t in TASKS)
        routed = torch.zeros(args.frames, experts, dtype=torch.bool, device=device)
        for t in TASKS:
            routed.scatter_(1, out.expert_index[t][0], True)
        pairs = int(routed.sum())
    (sparse_ms, sparse_cpu), (masked_ms, masked_cpu) = time_paths(
        (_sparse, masked_forward), layer, x, mask, args.repeats, args.warmup)
    return {"experts": experts, "top_k": top_k, "sparse_ms": sparse_ms, "masked_ms": masked_ms,
            "ratio": sparse_ms / masked_ms, "max_diff": diff,
            "sparse_cpu_ms": sparse_cpu, "masked_cpu_ms": masked_cpu,
            "expert_frames": pairs, "masked_expert_frames": experts * args.frames}


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_moe: --device cuda asked for, but CUDA is not available")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"# SparseMoE vs dense-then-masked, forward+backward, tasks {'+'.join(TASKS)} "
          f"(both gates), frames={args.frames} input={args.input_size} "
          f"hidden={args.hidden_size} output={args.output_size}, device={args.device}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}, "
          f"median of {args.repeats} interleaved runs after {args.warmup} warmup", flush=True)
    if args.sweep:
        print("| E | k | sparse ms | masked ms | ratio |")
        print("|---|---|---|---|---|")
        for experts in (3, 8, 16):
            for top_k in (1, 2):
                r = bench_one(args, experts, top_k)
                print(f"| {experts} | {top_k} | {r['sparse_ms']:.1f} | {r['masked_ms']:.1f} "
                      f"| {r['ratio']:.3f} |", flush=True)
        return
    r = bench_one(args, args.experts, args.top_k)
    print(f"{'path':<8} {'wall ms':>10} {'CPU ms':>10} {'expert frames':>14}")
    for path in ("sparse", "masked"):
        print(f"{path:<8} {r[path + '_ms']:>10.1f} {r[path + '_cpu_ms']:>10.1f} "
              f"{r['expert_frames' if path == 'sparse' else 'masked_expert_frames']:>14}")
    print(f"E={r['experts']} k={r['top_k']}: sparse/masked = {r['ratio']:.3f} wall, "
          f"{r['sparse_cpu_ms'] / r['masked_cpu_ms']:.3f} CPU time of this process "
          f"(max |sparse - masked| = {r['max_diff']:.2e})")


if __name__ == "__main__":
    main()
