#!/usr/bin/env python3
"""transformers prefill with attn_implementation "dattn" (Delta Attention) vs "sdpa" vs "flex_attention".

A Llama-3.1-8B-shaped model (bench/model_bench.py's config: hidden 4096, 32 layers, 32 query / 8 KV heads,
head_dim 128, intermediate 14336, vocab 128256, rope theta 500000) with random bf16 weights made on the
device (no file), batch 1, a prompt of random token ids, logits of the last position only. Per
implementation: one warm-up prefill, then the median of --runs prefills (CUDA events; wall clock on the CPU)
and the peak of torch.cuda.max_memory_allocated over those runs (reset between implementations). An
implementation that fails (out of memory, not in this transformers, ...) is reported with its error and
the others still run. Results go to --json after every implementation, and a Markdown table to stdout.

Usage (GPU machine: torch, transformers, the dattn package importable):
    python3 bench/transformers_prefill_bench.py [--tokens 131072] [--runs 3] [--json FILE]
        [--impls dattn,sdpa,flex_attention] [--window 2048 --sink 1024 --gamma 64]
Smoke test on a CPU: --device cpu --tiny --layers 2 --tokens 1024 --impls dattn,sdpa
"""
import argparse
import gc
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_bench import forward, llama31_8b_config, make_model, random_ids  # noqa: E402

GIB = float(1 << 30)


def log(*args):
    print(*args, flush=True)


def model_config(args):
    config = llama31_8b_config()
    if args.tiny:  # the same structure at toy size, for a quick check of the script
        for name, value in dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2,
                                head_dim=64, vocab_size=1024).items():
            setattr(config, name, value)
    config.num_hidden_layers = args.layers
    return config


def use_attention(model, impl, dattn_settings):
    if impl == "dattn":
        import dattn.transformers  # fails here (reported) where dattn or a recent enough transformers is missing
        dattn.transformers.register(**dattn_settings)
    if hasattr(model, "set_attn_implementation"):  # checks the name and what the model supports
        model.set_attn_implementation(impl)
    else:  # older transformers read the name from the config at every forward
        model.config._attn_implementation = impl


class Clock:
    """Milliseconds of a call: CUDA events on the current stream, wall clock on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        if not self.cuda:
            started = time.perf_counter()
            out = fn()
            return out, (time.perf_counter() - started) * 1000.0
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end)


def free_memory(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def run_impl(model, impl, ids, device, runs, dattn_settings, eta):
    """{"impl", "status": "ok", "ms", "runs_ms", "peak_bytes"} or {"impl", "status": "failed", "error"}."""
    clock = Clock(device)
    row = {"impl": impl, "tokens": ids.shape[1]}
    try:
        use_attention(model, impl, dattn_settings)
        free_memory(device)
        with torch.inference_mode():
            started = time.perf_counter()
            out, ms = clock(lambda: forward(model, ids))
            del out
            log(f"  {impl}: warm-up {ms:.0f} ms (wall {time.perf_counter() - started:.1f} s); "
                f"{runs} runs, ETA {eta(ms * runs):.0f} s")
            free_memory(device)
            times = []
            for r in range(runs):
                out, ms = clock(lambda: forward(model, ids))
                del out
                times.append(ms)
                log(f"  {impl}: run {r + 1}/{runs} {ms:.0f} ms, ETA {eta(ms * (runs - r - 1)):.0f} s")
        row.update(status="ok", ms=statistics.median(times), runs_ms=times)
        if device.type == "cuda":
            row["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    except Exception as e:  # reported, and the next implementation still runs
        lines = str(e).strip().splitlines()
        row.update(status="failed", error=f"{type(e).__name__}: {lines[0] if lines else ''}"[:500],
                   traceback=traceback.format_exc()[-3000:])
        log(f"  {impl}: FAILED {row['error']}")
    free_memory(device)
    return row


def table(report):
    rows = report["results"]
    sdpa = next((r for r in rows if r["impl"] == "sdpa" and r["status"] == "ok"), None)
    lines = [f"{report['device']}, torch {report['torch']}, transformers {report['transformers']}, "
             f"{report['layers']} layers, prefill {report['tokens']} tokens, median of {report['runs']}, "
             f"weights {report['weights_bytes'] / GIB:.1f} GiB", "",
             "| attn_implementation | ms | tokens/s | vs sdpa | peak memory | vs sdpa |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['impl']} | failed: {r['error'][:160]} | | | | |")
            continue
        peak = r.get("peak_bytes")
        speed = f"{sdpa['ms'] / r['ms']:.2f}x" if sdpa else ""
        memory = f"{peak / sdpa['peak_bytes']:.2f}" if sdpa and peak and sdpa.get("peak_bytes") else ""
        lines.append(f"| {r['impl']} | {r['ms']:.0f} | {r['tokens'] * 1000.0 / r['ms']:.0f} | {speed} | "
                     f"{'' if peak is None else f'{peak / GIB:.1f} GiB'} | {memory} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=131072, help="prompt length")
    parser.add_argument("--runs", type=int, default=3, help="timed prefills per implementation (median)")
    parser.add_argument("--impls", default="dattn,sdpa,flex_attention")
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=1024)
    parser.add_argument("--gamma", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a toy-sized model of the same structure")
    parser.add_argument("--json", help="write the results here (after every implementation)")
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = dict(mode="delta", window=args.window, sink=args.sink, gamma=args.gamma)
    impls = args.impls.split(",")
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "tokens": args.tokens,
              "layers": args.layers, "runs": args.runs, "settings": vars(args), "results": []}
    log(f"{report['device']}, torch {torch.__version__}, transformers {transformers.__version__}")

    started = time.perf_counter()
    config = model_config(args)
    model = make_model(config, device)
    report["weights_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = random_ids(args.tokens, config.vocab_size, 1, device)
    log(f"random model ({args.layers} layers, {report['weights_bytes'] / GIB:.1f} GiB) on {device} in "
        f"{time.perf_counter() - started:.1f} s")

    per_run_ms = []  # of the implementations so far: the ETA of those to come assumes the same speed

    for index, impl in enumerate(impls):
        def eta(this_impl_left_ms):
            later = (len(impls) - index - 1) * (args.runs + 1) * statistics.median(per_run_ms or [0])
            return (this_impl_left_ms + later) / 1000.0

        log(f"[{index + 1}/{len(impls)}] {impl}, {args.tokens} tokens")
        row = run_impl(model, impl, ids, device, args.runs, settings, eta)
        report["results"].append(row)
        if row["status"] == "ok":
            per_run_ms.append(row["ms"])
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    log("")
    log(table(report))
    if not args.json:
        log(json.dumps(report))
    log(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
