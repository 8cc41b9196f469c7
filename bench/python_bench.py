#!/usr/bin/env python3
"""GPU benchmark of the Python package: (1) the overhead of dattn.attention on torch CUDA tensors over the
C++ benchmark (`dattn bench attention --backend cuda`) at the same shapes, (2) transformers prefill of a
Llama-3.1-8B-shaped model (random bf16 weights, bench/model_bench.py's config) with
attn_implementation "dattn" (delta) vs "sdpa" vs "flex_attention": time and peak torch memory.

Usage (GPU machine, torch + transformers; the dattn package importable, e.g. PYTHONPATH=<build>/python):
    python3 bench/python_bench.py --cli build/src/cli/dattn --out DIR [--lengths 32768,131072]
        [--prefill-tokens 131072] [--window 2048 --sink 1024 --gamma 64]
Writes DIR/python_bench.json and prints a Markdown table.
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


def cuda_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def operator_overhead(args):
    rows = []
    for n in args.lengths:
        g = torch.Generator(device="cuda").manual_seed(n)
        q, k, v = (torch.randn(1, n, h, HEAD_DIM, device="cuda", dtype=torch.bfloat16, generator=g)
                   for h in (HEADS, KV_HEADS, KV_HEADS))
        settings = dict(mode="delta", window=args.window, sink=args.sink, gamma=args.gamma)
        dattn.attention(q, k, v, **settings)  # warm-up
        python_ms = cuda_ms(lambda: dattn.attention(q, k, v, **settings), args.repeats)
        cli = subprocess.run([args.cli, "bench", "attention", "--backend", "cuda", "--dtype", "bf16", "--lengths",
                              str(n), "--heads", str(HEADS), "--kv-heads", str(KV_HEADS), "--head-dim",
                              str(HEAD_DIM), "--window", str(args.window), "--sink", str(args.sink), "--gamma",
                              str(args.gamma), "--repeats", str(args.repeats), "--json"],
                             check=True, capture_output=True, text=True)
        cli_ms = next(r["ms"] for r in json.loads(cli.stdout)["results"] if r["mode"] == "delta")
        rows.append({"tokens": n, "python_ms": python_ms, "cli_ms": cli_ms,
                     "overhead_percent": 100.0 * (python_ms / cli_ms - 1.0)})
        log(rows[-1])
        del q, k, v
    return rows


def prefill(args):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from model_bench import forward, llama31_8b_config, make_model, random_ids, timed
    import dattn.transformers
    dattn.transformers.register(mode="delta", window=args.window, sink=args.sink, gamma=args.gamma)
    config = llama31_8b_config()
    model = make_model(config)
    rows = []
    with torch.inference_mode():
        for impl in ("dattn", "sdpa", "flex_attention"):
            model.set_attn_implementation(impl)
            try:
                forward(model, random_ids(2048, config.vocab_size, 1))  # warm-up
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                out, ms = timed(lambda: forward(model, random_ids(args.prefill_tokens, config.vocab_size, 2)))
                del out
                rows.append({"impl": impl, "tokens": args.prefill_tokens, "ms": ms, "status": "ok",
                             "peak_bytes": torch.cuda.max_memory_allocated()})
            except Exception as e:  # an implementation that cannot run this length is reported, not fatal
                rows.append({"impl": impl, "tokens": args.prefill_tokens, "status": "error",
                             "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
            log(rows[-1])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", required=True, help="the dattn binary (built with CUDA)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--lengths", default="32768,131072")
    parser.add_argument("--prefill-tokens", type=int, default=131072)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=1024)
    parser.add_argument("--gamma", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    args.lengths = [int(n) for n in args.lengths.split(",")]
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "operator": operator_overhead(args), "prefill": prefill(args)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "python_bench.json").write_text(json.dumps(results, indent=1))
    log("\n| tokens | dattn.attention ms | dattn bench attention ms | overhead |\n|---|---|---|---|")
    for row in results["operator"]:
        log(f"| {row['tokens']} | {row['python_ms']:.2f} | {row['cli_ms']:.2f} | {row['overhead_percent']:+.1f}% |")
    log("\n| implementation | prefill tokens | ms | peak GiB |\n|---|---|---|---|")
    for row in results["prefill"]:
        if row["status"] == "ok":
            log(f"| {row['impl']} | {row['tokens']} | {row['ms']:.0f} | {row['peak_bytes'] / 2**30:.1f} |")
        else:
            log(f"| {row['impl']} | {row['tokens']} | {row['reason']} | |")


if __name__ == "__main__":
    main()
