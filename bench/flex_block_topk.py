#!/usr/bin/env python3
"""Block top-k: dattn's CUDA kernels against FlexAttention given a BlockMask of the very same blocks.

Runs bench/cuda/cuda_attention_bench with --pattern block_topk --modes sparse (which times dattn and writes
its device selection as .npy), builds a FlexAttention BlockMask from those lists (blocks wholly before a
query block's first row as full blocks, the others with a causal mask_mod), and times flex_attention on
inputs of the same shape with CUDA events after warm-up (median of the repeats). Prints a markdown table
and writes JSON lines.

  python3 bench/flex_block_topk.py --bench build/bench/cuda/cuda_attention_bench --lengths 32768,131072
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from gpu_bench import time_call  # warm-up, CUDA events, median: the GPU benchmarks' one timer


def selected_pairs(counts, blocks, n, block_q, block_k, group):
    """Query-key pairs of the sparse rows: each listed block's keys up to the row's position (all rows)."""
    h_kv, q_blocks, longest = blocks.shape
    valid = np.arange(longest)[None, None, :] < counts[..., None]
    j0 = blocks.astype(np.int64) * block_k
    length = np.minimum(n, j0 + block_k) - j0
    r0 = (np.arange(q_blocks, dtype=np.int64) * block_q)[None, :, None]
    r1 = np.minimum(n, r0 + block_q)

    def keys_up_to(y):  # sum over m <= y of clip(m, 0, length): rows r < x see clip(r + 1 - j0, 0, length) keys
        y = np.maximum(y, 0)
        inside = np.minimum(y, length)
        return inside * (inside + 1) // 2 + np.maximum(y - length, 0) * length

    per_entry = keys_up_to(r1 - j0) - keys_up_to(r0 - j0)
    return float(np.where(valid, per_entry, 0).sum()) * group


def block_mask_from_lists(counts, blocks, n, heads, block_q, block_k, device):
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    h_kv, q_blocks = counts.shape
    group = heads // h_kv
    k_blocks = (n + block_k - 1) // block_k
    idx = torch.from_numpy(blocks.astype(np.int64)).to(device)          # (h_kv, q_blocks, L), -1 padded
    cnt = torch.from_numpy(counts.astype(np.int64)).to(device)
    valid = torch.arange(idx.shape[-1], device=device)[None, None, :] < cnt[..., None]
    first_row = torch.arange(q_blocks, device=device)[None, :, None] * block_q
    block_end = (idx + 1) * block_k - 1
    full = valid & (block_end <= first_row)   # every key precedes the block's first row: no mask needed
    partial = valid & ~full

    def compact(selected):
        # stable: selected entries first, ascending block order kept
        order = torch.argsort((~selected).to(torch.int8), dim=-1, stable=True)
        ordered = torch.gather(idx.clamp(min=0), -1, order)
        num = selected.sum(-1)
        ordered = torch.where(torch.arange(ordered.shape[-1], device=device) < num[..., None], ordered, 0)
        # Flex wants one column per key block (it transposes the lists through a dense index)
        ordered = torch.nn.functional.pad(ordered, (0, k_blocks - ordered.shape[-1]))
        expand = lambda t: t.repeat_interleave(group, dim=0)[None].to(torch.int32).contiguous()
        return expand(num), expand(ordered)

    kv_num, kv_idx = compact(partial)
    full_num, full_idx = compact(full)

    def causal(b, h, q_idx, kv_idx_):
        return q_idx >= kv_idx_

    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=(block_q, block_k),
                                   mask_mod=causal, seq_lengths=(n, n))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/cuda/cuda_attention_bench")
    ap.add_argument("--lengths", default="32768,131072,1048576")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--sink", type=int, default=1024)
    ap.add_argument("--block-q", type=int, default=128)
    ap.add_argument("--block-k", type=int, default=128)
    ap.add_argument("--topk", type=int, default=16)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget-s", type=float, default=20.0)
    ap.add_argument("--out", default="flex_block_topk.jsonl")
    args = ap.parse_args()

    import torch
    from torch.nn.attention.flex_attention import flex_attention

    tmp = tempfile.mkdtemp(prefix="dattn_sel_")
    prefix = os.path.join(tmp, "sel")
    cmd = [args.bench, "--pattern", "block_topk", "--modes", "sparse,delta", "--lengths", args.lengths,
           "--heads", str(args.heads), "--kv-heads", str(args.kv_heads), "--head-dim", str(args.head_dim),
           "--window", str(args.window), "--sink", str(args.sink), "--block-q", str(args.block_q),
           "--block-k", str(args.block_k), "--topk", str(args.topk), "--selection-out", prefix,
           "--max-reps", str(args.reps)]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    dattn_rows = [json.loads(line) for line in subprocess.run(cmd, check=True, capture_output=True, text=True)
                  .stdout.splitlines() if line.startswith("{")]
    compiled = torch.compile(flex_attention, dynamic=False)
    rows, t0 = [], time.time()
    lengths = [int(x) for x in args.lengths.split(",")]
    for i, n in enumerate(lengths):
        counts = np.load(f"{prefix}_n{n}_counts.npy")
        blocks = np.load(f"{prefix}_n{n}_blocks.npy")
        pairs = selected_pairs(counts, blocks, n, args.block_q, args.block_k, args.heads // args.kv_heads)
        mask = block_mask_from_lists(counts, blocks, n, args.heads, args.block_q, args.block_k, "cuda")
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(1, args.heads, n, args.head_dim, device="cuda", dtype=torch.bfloat16, generator=g)
        k = torch.randn(1, args.kv_heads, n, args.head_dim, device="cuda", dtype=torch.bfloat16, generator=g)
        v = torch.randn(1, args.kv_heads, n, args.head_dim, device="cuda", dtype=torch.bfloat16, generator=g)
        try:
            flex_ms, reps = time_call(torch, lambda: compiled(q, k, v, block_mask=mask, enable_gqa=True),
                                      args.budget_s * 1e3, args.reps)
            flex = {"ms": flex_ms, "reps": reps, "tflops": 4 * args.head_dim * pairs / (flex_ms * 1e-3) / 1e12}
        except Exception as e:  # noqa: BLE001 - reported, the other lengths still run
            flex = {"error": f"{type(e).__name__}: {e}"[:300]}
        ours = {r["mode"]: r for r in dattn_rows if r["n"] == n}
        row = {"n": n, "pairs": pairs, "flex": flex, "dattn_sparse": ours.get("sparse"), "dattn_delta": ours.get("delta"),
               "device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "block_q": args.block_q, "block_k": args.block_k, "topk": args.topk}
        rows.append(row)
        del q, k, v, mask
        torch.cuda.empty_cache()
        eta = (time.time() - t0) / (i + 1) * (len(lengths) - i - 1)
        print(f"[{i + 1}/{len(lengths)}] n={n} done, ETA {eta:.0f} s", file=sys.stderr, flush=True)
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"| n | Flex BlockMask ms | dattn sparse ms (select ms) | speedup | dattn TFLOP/s (kernel) | dattn delta ms |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        s, d, f = row["dattn_sparse"], row["dattn_delta"], row["flex"]
        kernel_ms = s["ms"] - s["select_ms"]
        flex_ms = f.get("ms")
        speed = f"{flex_ms / s['ms']:.2f}x" if flex_ms else f.get("error", "")
        print(f"| {row['n']} | {flex_ms or 'failed'} | {s['ms']:.2f} ({s['select_ms']:.2f}) | {speed} | "
              f"{4 * args.head_dim * row['pairs'] / (kernel_ms * 1e-3) / 1e12:.0f} | {d['ms']:.2f} |")


if __name__ == "__main__":
    main()
