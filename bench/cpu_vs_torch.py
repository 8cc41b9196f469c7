#!/usr/bin/env python3
"""Our CPU attention next to PyTorch's CPU scaled_dot_product_attention, on one table.

Needs torch (pip install torch) and a built `dattn`; nothing in CI runs this. Example:
    python3 bench/cpu_vs_torch.py --dattn build/src/cli/dattn --lengths 4096,16384 --rounds 2

Both sides get the same problem: batch 1, --heads query heads sharing --kv-heads kv heads, head_dim
--head-dim, fp32, causal, N(0, 1) inputs, the same thread count. Ours is timed by `dattn bench attention
--json` (median of --repeats after a warm-up); torch the same way here. Attention time does not depend on
the values, but to show both compute the same function the script first runs one small problem through
`dattn attention` on .npy files and compares with torch's output. With --rounds > 1 the two sides
alternate and each keeps its best median: on a shared machine that filters out neighbours' load.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def torch_sdpa(q, k, v):
    # q: (1, h_q, n, d), k/v: (1, h_kv, n, d); GQA through enable_gqa (expanding K/V is no faster here)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=q.shape[1] != k.shape[1])


def time_torch(n, args):
    gen = torch.Generator().manual_seed(n)
    q = torch.randn(1, args.heads, n, args.head_dim, generator=gen)
    k = torch.randn(1, args.kv_heads, n, args.head_dim, generator=gen)
    v = torch.randn(1, args.kv_heads, n, args.head_dim, generator=gen)
    torch_sdpa(q, k, v)  # warm-up
    times, cpu_times = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        torch_sdpa(q, k, v)
        times.append((time.perf_counter() - start) * 1e3)
        cpu_times.append((time.process_time() - cpu_start) * 1e3)
    return sorted(times)[len(times) // 2], sorted(cpu_times)[len(cpu_times) // 2]


def time_ours(n, args):
    cmd = [args.dattn, "bench", "attention", "--lengths", str(n), "--heads", str(args.heads), "--kv-heads",
           str(args.kv_heads), "--head-dim", str(args.head_dim), "--repeats", str(args.repeats), "--threads",
           str(args.threads), "--json"]
    if args.window is not None:
        cmd += ["--window", str(args.window), "--sink", str(args.sink), "--gamma", str(args.gamma)]
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {row["mode"]: row for row in result["results"]}


def check_same_function(args):
    """Dense output of `dattn attention` vs torch on a small problem, through .npy files."""
    n, rng = 512, np.random.default_rng(0)
    q = rng.standard_normal((1, n, args.heads, args.head_dim), dtype=np.float32)
    k = rng.standard_normal((1, n, args.kv_heads, args.head_dim), dtype=np.float32)
    v = rng.standard_normal((1, n, args.kv_heads, args.head_dim), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name + ".npy") for name in ("q", "k", "v", "o")}
        for name, array in (("q", q), ("k", k), ("v", v)):
            np.save(paths[name], array)
        subprocess.run([args.dattn, "attention", "--q", paths["q"], "--k", paths["k"], "--v", paths["v"], "--out",
                        paths["o"], "--mode", "dense", "--backend", "cpu"], check=True, capture_output=True)
        ours = np.load(paths["o"])
    theirs = torch_sdpa(*(torch.from_numpy(x).transpose(1, 2) for x in (q, k, v))).transpose(1, 2).numpy()
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dattn", default="build/src/cli/dattn", help="path of the dattn executable")
    parser.add_argument("--lengths", default="4096,16384")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=1)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="alternate ours/torch this many times, keep the best")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--window", type=int, default=None, help="also pass window/sink/gamma to dattn")
    parser.add_argument("--sink", type=int, default=1024)
    parser.add_argument("--gamma", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    error = check_same_function(args)
    print(f"same function: relative L2 of dattn dense vs torch SDPA at n=512: {error:.2e}", file=sys.stderr)
    rows = []
    for n in (int(x) for x in args.lengths.split(",")):
        best_torch, best_torch_cpu, best_ours = float("inf"), float("inf"), None
        for r in range(args.rounds):
            print(f"  n={n} round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            ours = time_ours(n, args)
            if best_ours is None or ours["dense"]["ms"] < best_ours["dense"]["ms"]:
                best_ours = ours
            torch_ms, torch_cpu_ms = time_torch(n, args)
            best_torch, best_torch_cpu = min(best_torch, torch_ms), min(best_torch_cpu, torch_cpu_ms)
        rows.append((n, best_torch, best_torch_cpu, best_ours))

    print(f"same function: dattn dense vs torch SDPA at n=512, relative L2 {error:.2e}")
    print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), {args.threads} threads, "
          f"{args.heads} heads / {args.kv_heads} kv heads, head_dim {args.head_dim}, fp32, causal")
    print("wall: milliseconds (best median over rounds); cpu: CPU time of all threads, which a busy neighbour "
          "does not inflate")
    print(f"{'n':>7} {'torch ms':>10} {'dattn ms':>10} {'speedup':>8} {'torch cpu':>10} {'dattn cpu':>10} "
          f"{'cpu speedup':>11} {'delta ms':>10} {'delta/dense':>11} {'GFLOP/s':>8}")
    for n, torch_ms, torch_cpu, ours in rows:
        dense, delta = ours["dense"], ours["delta"]
        print(f"{n:>7} {torch_ms:>10.1f} {dense['ms']:>10.1f} {torch_ms / dense['ms']:>7.2f}x {torch_cpu:>10.1f} "
              f"{dense['cpu_ms']:>10.1f} {torch_cpu / dense['cpu_ms']:>10.2f}x {delta['ms']:>10.1f} "
              f"{dense['ms'] / delta['ms']:>10.2f}x {dense['gflops']:>8.1f}")


if __name__ == "__main__":
    main()
