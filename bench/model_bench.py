#!/usr/bin/env python3
"""GPU model benchmark: dattn's CudaSession against transformers (sdpa) on the same random weights.

Runs on the GPU machine (torch + transformers installed). Builds a Llama-3.1-8B-shaped model with random
bf16 weights ON THE DEVICE with transformers, saves it with save_pretrained under /tmp (never kept), then
times with batch 1:
  - transformers (attn_implementation="sdpa"): prefill of each length (logits of the last position only),
    greedy decode steps after a prefill of --decode-context tokens, peak torch memory per phase;
  - dattn_model_cuda_bench (built from src/model/cuda): prefill with dense and delta attention, decode at
    the same context, device memory.
Writes everything as JSON to --out/model_bench.json and prints a Markdown table last.

Usage: python3 bench/model_bench.py --binary build/src/model/cuda/dattn_model_cuda_bench --out DIR
"""
import argparse
import gc
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

MODEL_DIR = Path("/tmp/dattn_llama31_8b_random")
GIB = float(1 << 30)


def log(*args):
    print(*args, flush=True)


def llama31_8b_config():
    shape = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
                 rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001)
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    if int(transformers.__version__.split(".")[0]) >= 5:
        config = transformers.LlamaConfig(**shape, rope_parameters={"rope_theta": 500000.0, **rope})
    else:
        config = transformers.LlamaConfig(**shape, rope_theta=500000.0, rope_scaling=rope)
    config._attn_implementation = "sdpa"
    return config


def make_model(config, device="cuda"):
    """Random bf16 weights made directly on the device (no file)."""
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    return model.to(torch.bfloat16).eval()


def random_ids(n, vocab, seed, device="cuda"):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (1, n), generator=g).to(device)


def forward(model, ids, cache=None, use_cache=True):
    """logits of the last position only (transformers < 4.50 names the argument num_logits_to_keep)."""
    keep = "logits_to_keep" if "logits_to_keep" in inspect.signature(model.forward).parameters else "num_logits_to_keep"
    return model(ids, use_cache=use_cache, past_key_values=cache, **{keep: 1})


def timed(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, (time.perf_counter() - t) * 1000.0


def transformers_runs(model, vocab, lengths, decode_context, decode_tokens, budget_s):
    results = []
    with torch.inference_mode():
        forward(model, random_ids(1024, vocab, 1))  # warm-up: kernels, cuBLAS heuristics
        started = time.perf_counter()
        last = None  # (tokens, ms) of the last prefill, to project the next one
        for n in lengths:
            if last is not None:
                # attention grows with n^2, the rest with n: bound the projection by the quadratic term
                projected_s = last[1] / 1000.0 * (n / last[0]) ** 2
                left = budget_s - (time.perf_counter() - started)
                if projected_s > left:
                    results.append({"event": "prefill", "impl": "transformers", "tokens": n, "status": "skipped",
                                    "reason": f"projected up to {projected_s:.0f} s (n^2 from {last[0]} tokens), "
                                              f"{left:.0f} s of the bench budget left"})
                    log(results[-1])
                    continue
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                out, ms = timed(lambda: forward(model, random_ids(n, vocab, n)))
                del out
                results.append({"event": "prefill", "impl": "transformers", "tokens": n, "ms": ms,
                                "tokens_per_s": n * 1000.0 / ms, "status": "ok",
                                "peak_bytes": torch.cuda.max_memory_allocated()})
                last = (n, ms)
            except torch.cuda.OutOfMemoryError as e:
                results.append({"event": "prefill", "impl": "transformers", "tokens": n, "status": "oom",
                                "reason": str(e).splitlines()[0],
                                "peak_bytes": torch.cuda.max_memory_allocated()})
            log(results[-1])
            gc.collect()

        if decode_tokens > 0:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            out = forward(model, random_ids(decode_context, vocab, 7))
            cache, next_id = out.past_key_values, out.logits[:, -1:].argmax(-1)
            del out

            def steps():
                nonlocal cache, next_id
                for _ in range(decode_tokens):
                    o = forward(model, next_id, cache)
                    cache, next_id = o.past_key_values, o.logits[:, -1:].argmax(-1)

            _, ms = timed(steps)
            results.append({"event": "decode", "impl": "transformers", "context": decode_context,
                            "tokens": decode_tokens, "ms": ms, "tokens_per_s": decode_tokens * 1000.0 / ms,
                            "peak_bytes": torch.cuda.max_memory_allocated()})
            log(results[-1])
            del cache
    return results


def dattn_runs(binary, lengths, decode_context, decode_tokens, args, timeout_s):
    runs = args.runs or ",".join(f"{mode}:{n}" for n in lengths for mode in ("delta", "dense"))
    cmd = [binary, "--model", str(MODEL_DIR), "--runs", runs, "--chunk", str(args.chunk), "--window",
           str(args.window), "--sink", str(args.sink), "--gamma", str(args.gamma), "--decode-after",
           str(decode_context), "--decode-tokens", str(decode_tokens)] + (["--profile"] if args.profile else [])
    log("running", " ".join(cmd))
    results = []
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr, rc = f"timed out after {timeout_s} s", None
    for line in stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            r["impl"] = "dattn"
            results.append(r)
            log(r)
    if rc != 0:
        results.append({"event": "error", "impl": "dattn", "returncode": rc, "stderr": stderr[-2000:]})
        log(results[-1])
    return results


def table(results, device):
    lines = [f"device: {device}", "", "| impl | what | tokens | ms | tokens/s | peak GPU memory |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r["event"] == "prefill":
            what = f"prefill {r.get('mode', 'dense (sdpa)')}"
            if r.get("status", "ok") != "ok":
                lines.append(f"| {r['impl']} | {what} | {r['tokens']} | {r['status']}: {r.get('reason', '')} | | |")
                continue
            peak = f"{r['peak_bytes'] / GIB:.1f} GiB" if "peak_bytes" in r else ""
            if "chunk" in r:
                what += f" (chunk {r['chunk']})"
            lines.append(f"| {r['impl']} | {what} | {r['tokens']} | {r['ms']:.0f} | {r['tokens_per_s']:.0f} | {peak} |")
        elif r["event"] == "decode":
            peak = f"{r['peak_bytes'] / GIB:.1f} GiB" if "peak_bytes" in r else ""
            lines.append(f"| {r['impl']} | decode at {r['context']} context | {r['tokens']} | {r['ms']:.0f} | "
                         f"{r['tokens_per_s']:.1f} | {peak} |")
        elif r["event"] == "memory":
            lines.append(f"| dattn | device memory (context {r['context']}) | | | | weights "
                         f"{r['weights_bytes'] / GIB:.1f} GiB + KV cache {r['kv_cache_bytes'] / GIB:.1f} GiB + "
                         f"workspace {r['workspace_bytes'] / GIB:.2f} GiB; in use at peak "
                         f"{r['peak_in_use_bytes'] / GIB:.1f} GiB |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", default="32768,131072")
    ap.add_argument("--decode-context", type=int, default=32768)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--sink", type=int, default=1024)
    ap.add_argument("--gamma", type=int, default=64)
    ap.add_argument("--transformers-budget-s", type=float, default=60, help="time for transformers' prefills")
    ap.add_argument("--dattn-timeout-s", type=float, default=120)
    ap.add_argument("--runs", default="", help="dattn runs MODE:TOKENS[:CHUNK],... instead of delta+dense per length")
    ap.add_argument("--profile", action="store_true", help="dattn: per-stage GPU times after each run")
    ap.add_argument("--skip-transformers", action="store_true", help="time dattn only")
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    device = torch.cuda.get_device_name()
    report = {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
              "settings": vars(args), "results": []}
    log(f"device {device}, torch {torch.__version__}, transformers {transformers.__version__}")

    config = llama31_8b_config()
    (model, ms) = timed(lambda: make_model(config))
    log(f"random model built on the device in {ms / 1000:.1f} s")
    t = time.perf_counter()
    model.save_pretrained(MODEL_DIR)
    log(f"saved to {MODEL_DIR} in {time.perf_counter() - t:.1f} s")

    # dattn first (its numbers matter most if the call runs out of time); the transformers model stays on
    # the device meanwhile, so "in use" below includes this process's share
    free, total = torch.cuda.mem_get_info()
    report["in_use_before_dattn_bytes"] = total - free
    report["results"] += dattn_runs(args.binary, lengths, args.decode_context, args.decode_tokens, args,
                                    args.dattn_timeout_s)
    (out_dir / "model_bench.json").write_text(json.dumps(report, indent=1))
    try:
        if args.skip_transformers:
            raise RuntimeError("skipped (--skip-transformers)")
        report["results"] += transformers_runs(model, config.vocab_size, lengths, args.decode_context,
                                               args.decode_tokens, args.transformers_budget_s)
    except Exception as e:  # keep what was measured
        report["results"].append({"event": "error", "impl": "transformers", "error": repr(e)[:2000]})
        log(report["results"][-1])
    (out_dir / "model_bench.json").write_text(json.dumps(report, indent=1))
    md = table(report["results"], device)
    (out_dir / "model_bench.md").write_text(md + "\n")
    log(md)


if __name__ == "__main__":
    sys.exit(main())
