#!/usr/bin/env python3
"""The Python call's overhead: dattn.attention on torch CUDA tensors against the C++ benchmark
bench/cuda/cuda_attention_bench, same shapes and settings, both timed the same way (CUDA events on the
default stream around one call, a warm-up first, median of --repeats). The C++ benchmark runs before and
after the Python timings; its reference time is the mean of its two medians. Llama-3.1-8B attention layer:
bf16, batch 1, 32 query heads, 8 KV heads, head_dim 128, delta mode.
(transformers prefill with the backend: bench/transformers_prefill_bench.py)

Usage (GPU machine, torch; the dattn package importable, e.g. PYTHONPATH=<build>/python):
    python3 bench/python_bench.py --bench-binary build/bench/cuda/cuda_attention_bench [--json FILE]
        [--lengths 32768,131072] [--repeats 20] [--window 2048 --sink 1024 --gamma 64]
Prints a Markdown table; --json also writes the numbers.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import dattn

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128  # Llama-3.1-8B attention shape


def log(*args):
    print(*args, flush=True)


def cpp_bench_ms(args):
    """{n: median ms} of delta from cuda_attention_bench (one JSON object per line on stdout)."""
    cmd = [args.bench_binary, "--lengths", ",".join(map(str, args.lengths)), "--modes", "delta", "--heads",
           str(HEADS), "--kv-heads", str(KV_HEADS), "--head-dim", str(HEAD_DIM), "--window", str(args.window),
           "--sink", str(args.sink), "--gamma", str(args.gamma), "--max-reps", str(args.repeats),
           "--budget-ms", "1e9"]  # exactly --repeats runs, as the Python side
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {row["n"]: row["ms"] for row in rows if row["mode"] == "delta"}


def python_ms(n, args):
    """(median event ms, median wall ms) of dattn.attention on torch bf16 CUDA tensors."""
    g = torch.Generator(device="cuda").manual_seed(n)
    q, k, v = (torch.randn(1, n, h, HEAD_DIM, device="cuda", dtype=torch.bfloat16, generator=g)
               for h in (HEADS, KV_HEADS, KV_HEADS))
    settings = dict(mode="delta", window=args.window, sink=args.sink, gamma=args.gamma)
    for _ in range(2):  # warm-up: the op's first dispatch, the allocator's blocks
        dattn.attention(q, k, v, **settings)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    event_ms, wall_ms = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        start.record()
        dattn.attention(q, k, v, **settings)
        end.record()
        end.synchronize()
        wall_ms.append((time.perf_counter() - t) * 1000.0)
        event_ms.append(start.elapsed_time(end))
    return statistics.median(event_ms), statistics.median(wall_ms)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-binary", required=True, help="bench/cuda/cuda_attention_bench of a CUDA build")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--lengths", default="32768,131072")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=1024)
    parser.add_argument("--gamma", type=int, default=64)
    args = parser.parse_args()
    args.lengths = [int(n) for n in args.lengths.split(",")]
    if torch.cuda.current_stream().cuda_stream != 0:
        sys.exit("the current torch stream is not the default stream the C++ benchmark times on")

    log(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; C++ benchmark, first pass")
    cpp_before = cpp_bench_ms(args)
    measured = {}
    for n in args.lengths:
        measured[n] = python_ms(n, args)
        log(f"  dattn.attention n={n}: {measured[n][0]:.3f} ms (events), {measured[n][1]:.3f} ms (wall)")
        torch.cuda.empty_cache()
    log("C++ benchmark, second pass")
    cpp_after = cpp_bench_ms(args)
    rows = []
    for n in args.lengths:
        cpp = (cpp_before[n] + cpp_after[n]) / 2.0
        rows.append({"tokens": n, "python_ms": measured[n][0], "python_wall_ms": measured[n][1],
                     "cpp_ms": cpp, "cpp_ms_passes": [cpp_before[n], cpp_after[n]],
                     "overhead_percent": 100.0 * (measured[n][0] / cpp - 1.0)})
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "settings": vars(args),
              "results": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    log(f"\ndelta, bf16, {HEADS}/{KV_HEADS} heads, d {HEAD_DIM}, window {args.window}, sink {args.sink}, "
        f"gamma {args.gamma}, median of {args.repeats} (CUDA events)\n")
    log("| tokens | dattn.attention ms | cuda_attention_bench ms (two passes) | overhead | Python wall ms |")
    log("|---|---|---|---|---|")
    for r in rows:
        log(f"| {r['tokens']} | {r['python_ms']:.3f} | {r['cpp_ms']:.3f} ({r['cpp_ms_passes'][0]:.3f}, "
            f"{r['cpp_ms_passes'][1]:.3f}) | {r['overhead_percent']:+.1f}% | {r['python_wall_ms']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
