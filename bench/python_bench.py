#!/usr/bin/env python3
"""The Python call's overhead: dattn.attention on torch CUDA tensors against the C++ benchmark
bench/cuda/cuda_attention_bench, like for like: the same inputs (the C++ benchmark's device-side generator,
reproduced here bit for bit and checked against its --inputs-out files), the same settings, the log-sum-exp
off and on in both (return_lse; cuda_attention_bench --lse), both timed the same way (CUDA events on the
default stream around one call, a warm-up first, the median of --repeats as element n/2 of the sorted times).
The C++ benchmark runs before and after the Python timings; its reference time is the mean of its two
medians. Llama-3.1-8B attention layer: bf16, batch 1, 32 query heads, 8 KV heads, head_dim 128, delta mode.

Besides the full call it times the bare binding (dattn._dattn.attention_into on preallocated outputs: the C++
library with nanobind's argument conversion only), also without the NaN/Inf check (skip_finite_check against
cuda_attention_bench --skip-finite-check: no wait inside the call), and profiles --profile-calls calls
(torch.profiler: CUPTI records the library's kernels too) for the GPU's own time: the kernels' durations, the
GPU's busy span from the first to the last activity, and the host time of the call before its first and
after its last GPU activity (inside the events of both benchmarks, since the call waits for the kernels to
read the library's NaN/Inf flag), with the CUDA API calls costing most. The events' median minus the kernels'
time is each path's host work and idle GPU time per call. --keep-pool runs both sides with the device's
default memory pool keeping freed memory (the library's scratch then maps nothing new in each call).
(transformers prefill with the backend: bench/transformers_prefill_bench.py; the Python layers' host cost
alone: bench/python_call_overhead.py)

Usage (GPU machine, torch; the dattn package importable, e.g. PYTHONPATH=<build>/python):
    python3 bench/python_bench.py --bench-binary build/bench/cuda/cuda_attention_bench [--json FILE]
        [--lengths 32768,131072] [--repeats 20] [--profile-calls 5] [--window 2048 --sink 1024 --gamma 64]
        [--keep-pool]
Prints Markdown tables; --json also writes the numbers.
"""
import argparse
import collections
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import dattn
from dattn import _dattn

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128  # Llama-3.1-8B attention shape
SEEDS = {"q": 1, "k": 2, "v": 3}  # cuda_attention_bench's fill_random_bf16 seeds


def log(*args):
    print(*args, flush=True)


def _wrapped64(x):
    """x mod 2^64 as the int64 with the same bits."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def _shift_right(x, bits):
    """Logical right shift of int64 tensor bits (>> on int64 is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def bench_inputs_bf16(shape, seed, device, chunk=1 << 25):
    """The values bench/cuda/fill_random.cu writes, bit for bit: element i (row-major) is the sum of the four
    bytes of a 64-bit mix of seed * 0x9e3779b97f4a7c15 + i, centred and scaled, (s - 510) / 147.8 in fp32,
    rounded to bf16. int64 arithmetic wraps as the kernel's uint64 does."""
    count = math.prod(shape)
    out = torch.empty(count, dtype=torch.bfloat16, device=device)
    base = _wrapped64(seed * 0x9E3779B97F4A7C15)
    mix1, mix2 = _wrapped64(0xFF51AFD7ED558CCD), _wrapped64(0xC4CEB9FE1A85EC53)
    divisor = torch.tensor(147.8, dtype=torch.float32, device=device)  # a tensor: true division, as the kernel
    for start in range(0, count, chunk):
        x = torch.arange(start, min(count, start + chunk), dtype=torch.int64, device=device) + base
        x ^= _shift_right(x, 33)
        x *= mix1
        x ^= _shift_right(x, 33)
        x *= mix2
        x ^= _shift_right(x, 33)
        s = sum(((x >> shift) & 255).float() for shift in (0, 8, 16, 24))  # exact: integers below 1021
        out[start:start + x.numel()] = ((s - 510.0) / divisor).to(torch.bfloat16)
    return out.view(shape)


def qkv(n, device="cuda"):
    return [bench_inputs_bf16((1, n, h, HEAD_DIM), SEEDS[name], device)
            for name, h in (("q", HEADS), ("k", KV_HEADS), ("v", KV_HEADS))]


def inputs_check(args, n=1024):
    """Whether the C++ benchmark's inputs at n tokens (--inputs-out) equal bench_inputs_bf16's bit for bit,
    in words (the timings go on either way: a difference is reported, not fatal)."""
    with tempfile.TemporaryDirectory() as folder:
        prefix = f"{folder}/inputs"
        run_cpp_bench(args, [n], "dense", lse=False, repeats=1, extra=["--inputs-out", prefix])
        for name, tensor in zip("qkv", qkv(n)):
            expected = np.load(f"{prefix}_n{n}_{name}.npy")
            ours = tensor.cpu().view(torch.int16).numpy().view(np.uint16)
            if expected.shape != ours.shape or not np.array_equal(expected, ours):
                differ = int((expected != ours).sum()) if expected.shape == ours.shape else "shape"
                return (f"NOT the same: {name} differs from cuda_attention_bench's at n={n} ({differ} elements); "
                        "the comparison is not like for like")
    return f"the C++ benchmark's generator, checked bit for bit at n={n}"


CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4  # cuda.h


def keep_default_pool(device_index):
    """The device's default memory pool (the library's cudaMallocAsync) keeps freed memory (release threshold:
    max) instead of returning it at every synchronisation: cuda_attention_bench --keep-pool, through the driver
    API (the pool is the driver's, whichever runtime the library loaded)."""
    import ctypes
    driver = ctypes.CDLL("libcuda.so.1")
    device, pool, threshold = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64(2**64 - 1)
    steps = (("cuDeviceGet", lambda: driver.cuDeviceGet(ctypes.byref(device), device_index)),
             ("cuDeviceGetDefaultMemPool", lambda: driver.cuDeviceGetDefaultMemPool(ctypes.byref(pool), device)),
             ("cuMemPoolSetAttribute",
              lambda: driver.cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, ctypes.byref(threshold))))
    for name, call in steps:
        status = call()
        if status != 0:
            sys.exit(f"python_bench --keep-pool: {name} failed (CUresult {status})")


def run_cpp_bench(args, lengths, modes, lse, repeats=None, extra=()):
    cmd = [args.bench_binary, "--lengths", ",".join(map(str, lengths)), "--modes", modes, "--heads", str(HEADS),
           "--kv-heads", str(KV_HEADS), "--head-dim", str(HEAD_DIM), "--window", str(args.window), "--sink",
           str(args.sink), "--gamma", str(args.gamma), "--max-reps", str(repeats or args.repeats), "--budget-ms", "1e9",
           *(["--lse"] if lse else []), *(["--keep-pool"] if args.keep_pool else []), *extra]  # --repeats runs
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def cpp_bench_ms(args, lse, extra=()):
    """{n: (median event ms, median wall ms)} of delta from cuda_attention_bench (JSON lines on stdout)."""
    return {row["n"]: (row["ms"], row["wall_ms"]) for row in run_cpp_bench(args, args.lengths, "delta", lse,
                                                                            extra=extra) if row["mode"] == "delta"}


def upper_median(values):
    """The element len // 2 of the sorted values, the C++ benchmark's median."""
    return sorted(values)[len(values) // 2]


def event_ms(call, repeats):
    """(median event ms, median wall ms) of call() on the default stream, after two warm-up calls."""
    for _ in range(2):  # the op's first dispatch, the allocator's blocks
        call()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    events, walls = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        start.record()
        call()
        end.record()
        end.synchronize()
        walls.append((time.perf_counter() - t) * 1000.0)
        events.append(start.elapsed_time(end))
    return upper_median(events), upper_median(walls)


GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


def profile(call, calls):
    """profile_calls(call, calls), or {"error": why} when the profiler fails (it needs CUPTI)."""
    try:
        return profile_calls(call, calls)
    except Exception as error:  # the timings stand without the profile
        return {"error": f"{type(error).__name__}: {error}"[:200]}


def profile_calls(call, calls):
    """Medians over `calls` profiled calls: kernels_ms (sum of kernel durations), gpu_span_ms (first to last GPU
    activity), host_before_us / host_after_us (the call's host time before its first and after its last GPU
    activity) and the CUDA API calls per call ({name: [count, total us]}) of the median-span call."""
    call()
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with tempfile.TemporaryDirectory() as folder:
        with torch.profiler.profile(activities=activities) as prof:
            for i in range(calls):
                with torch.profiler.record_function(f"dattn_call_{i}"):
                    call()
                torch.cuda.synchronize()
        trace_path = f"{folder}/trace.json"
        prof.export_chrome_trace(trace_path)
        trace = json.loads(Path(trace_path).read_text())
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X" and "dur" in e]
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "user_annotation" and e["name"].startswith("dattn_call_"))
    per_call = []
    for begin, end in windows:
        inside = [e for e in events if begin <= e["ts"] <= end]
        gpu = [e for e in inside if e.get("cat") in GPU_CATEGORIES]
        if not gpu:
            continue
        first, last = min(e["ts"] for e in gpu), max(e["ts"] + e["dur"] for e in gpu)
        api = collections.defaultdict(lambda: [0, 0.0])
        for e in inside:
            if e.get("cat") in ("cuda_runtime", "cuda_driver"):
                api[e["name"]][0] += 1
                api[e["name"]][1] += e["dur"]
        per_call.append({"kernels_ms": sum(e["dur"] for e in gpu if e["cat"] == "kernel") / 1000.0,
                         "gpu_span_ms": (last - first) / 1000.0, "host_before_us": first - begin,
                         "host_after_us": end - last, "cuda_api": dict(api),
                         "kernels": sorted({e["name"][:60] for e in gpu})})
    if not per_call:
        return {"error": "the profiler recorded no GPU activity inside the calls"}
    result = {key: statistics.median(c[key] for c in per_call)
              for key in ("kernels_ms", "gpu_span_ms", "host_before_us", "host_after_us")}
    middle = sorted(per_call, key=lambda c: c["gpu_span_ms"])[len(per_call) // 2]
    result["cuda_api"] = {name: [count, round(us, 1)] for name, (count, us) in
                          sorted(middle["cuda_api"].items(), key=lambda item: -item[1][1])}
    result["gpu_activities"] = middle["kernels"]
    return result


def python_numbers(n, args):
    """{lse: {...}} for return_lse False and True (the full call, the bare binding, their profiles), and
    "unchecked": the bare binding without the NaN/Inf check (no wait inside the call), LSE off."""
    q, k, v = qkv(n)
    settings = dict(mode="delta", window=args.window, sink=args.sink, gamma=args.gamma)
    out = torch.empty_like(q)
    lse_buffer = torch.empty((1, HEADS, n), dtype=torch.float32, device=q.device)
    to_dlpack = torch.utils.dlpack.to_dlpack

    def binding(lse, skip_finite_check=False):
        _dattn.attention_into(to_dlpack(q), to_dlpack(k), to_dlpack(v), to_dlpack(out),
                              to_dlpack(lse_buffer) if lse else None, "delta", args.window, args.sink, args.gamma, -1,
                              0.0, "auto", 0, 0, skip_finite_check)

    numbers = {}
    for lse in (False, True):
        def full():
            return dattn.attention(q, k, v, **settings, return_lse=lse)

        full_ms, full_wall_ms = event_ms(full, args.repeats)
        binding_ms, binding_wall_ms = event_ms(lambda: binding(lse), args.repeats)
        numbers[lse] = {"python_ms": full_ms, "python_wall_ms": full_wall_ms, "binding_ms": binding_ms,
                        "binding_wall_ms": binding_wall_ms, "profile": profile(full, args.profile_calls),
                        "binding_profile": profile(lambda: binding(lse), args.profile_calls)}
        log(f"  n={n} lse={lse}: dattn.attention {full_ms:.3f} ms, binding {binding_ms:.3f} ms (events); "
            f"kernels {numbers[lse]['profile'].get('kernels_ms', float('nan')):.3f} ms (profiler)")
    numbers["unchecked"] = event_ms(lambda: binding(False, skip_finite_check=True), args.repeats)[0]
    return numbers


def cpp_runs(args):
    """{variant: {n: (ms, wall_ms)}} of the C++ benchmark: LSE off (False), on (True), "unchecked"."""
    runs = {lse: cpp_bench_ms(args, lse) for lse in (False, True)}
    runs["unchecked"] = cpp_bench_ms(args, False, ["--skip-finite-check"])
    return runs


def result_rows(args, measured, cpp_before, cpp_after):
    rows = []
    for n in args.lengths:
        for lse in (False, True):
            m = measured[n][lse]
            passes = [cpp_before[lse][n], cpp_after[lse][n]]
            cpp = statistics.mean(ms for ms, _ in passes)
            kernels = m["profile"].get("kernels_ms", float("nan"))
            rows.append({"tokens": n, "lse": lse, **m, "cpp_ms": cpp, "cpp_ms_passes": [ms for ms, _ in passes],
                         "cpp_wall_ms": statistics.mean(wall for _, wall in passes),
                         "overhead_percent": 100.0 * (m["python_ms"] / cpp - 1.0),
                         "binding_overhead_percent": 100.0 * (m["binding_ms"] / cpp - 1.0),
                         "cpp_host_us": 1000.0 * (cpp - kernels),
                         "python_host_us": 1000.0 * (m["python_ms"] - kernels)})
    unchecked = [{"tokens": n, "cpp_ms": statistics.mean((cpp_before["unchecked"][n][0],
                                                          cpp_after["unchecked"][n][0])),
                  "binding_ms": measured[n]["unchecked"]} for n in args.lengths]
    return rows, unchecked


def print_tables(args, rows, unchecked, inputs):
    log(f"\ndelta, bf16, {HEADS}/{KV_HEADS} heads, d {HEAD_DIM}, window {args.window}, sink {args.sink}, "
        f"gamma {args.gamma}, median of {args.repeats} (CUDA events); inputs: {inputs}"
        f"{'; --keep-pool' if args.keep_pool else ''}\n")
    log("| tokens | LSE | cuda_attention_bench ms (two passes) | dattn.attention ms | overhead | bare binding ms "
        "| kernels ms (profiler) | host + idle per call: C++ / Python us | wall - events: C++ / Python us |")
    log("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        log(f"| {r['tokens']} | {'on' if r['lse'] else 'off'} | {r['cpp_ms']:.3f} ({r['cpp_ms_passes'][0]:.3f}, "
            f"{r['cpp_ms_passes'][1]:.3f}) | {r['python_ms']:.3f} | {r['overhead_percent']:+.1f}% | "
            f"{r['binding_ms']:.3f} ({r['binding_overhead_percent']:+.1f}%) | {r['profile'].get('kernels_ms', 0):.3f} "
            f"| {r['cpp_host_us']:.0f} / {r['python_host_us']:.0f} | {1000 * (r['cpp_wall_ms'] - r['cpp_ms']):.0f} / "
            f"{1000 * (r['python_wall_ms'] - r['python_ms']):.0f} |")
    log("\nwithout the NaN/Inf check (no wait inside the call; LSE off), median of the same repeats (CUDA events)\n")
    log("| tokens | cuda_attention_bench --skip-finite-check ms | bare binding, skip_finite_check ms | difference |")
    log("|---|---|---|---|")
    for r in unchecked:
        log(f"| {r['tokens']} | {r['cpp_ms']:.3f} | {r['binding_ms']:.3f} | "
            f"{100 * (r['binding_ms'] / r['cpp_ms'] - 1):+.1f}% |")
    log(f"\nprofiled calls (median of {args.profile_calls}; the profiler slows the host side): GPU busy span, "
        "host time before the first / after the last GPU activity, the CUDA API calls costing most\n")
    log("| tokens | LSE | call | GPU span ms | host before us | host after us | CUDA API (count, us) |")
    log("|---|---|---|---|---|---|---|")
    for r in rows:
        for label, p in (("dattn.attention", r["profile"]), ("binding", r["binding_profile"])):
            if "error" in p:
                log(f"| {r['tokens']} | {'on' if r['lse'] else 'off'} | {label} | {p['error']} | | | |")
                continue
            api = ", ".join(f"{name} {c}x {us:.0f}" for name, (c, us) in list(p["cuda_api"].items())[:5])
            log(f"| {r['tokens']} | {'on' if r['lse'] else 'off'} | {label} | {p['gpu_span_ms']:.3f} | "
                f"{p['host_before_us']:.0f} | {p['host_after_us']:.0f} | {api} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-binary", required=True, help="bench/cuda/cuda_attention_bench of a CUDA build")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--lengths", default="32768,131072")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile-calls", type=int, default=5)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=1024)
    parser.add_argument("--gamma", type=int, default=64)
    parser.add_argument("--keep-pool", action="store_true",
                        help="both sides: the default memory pool keeps the library's freed scratch (no mapping of "
                             "fresh memory in the next call's cudaMallocAsync)")
    args = parser.parse_args()
    args.lengths = [int(n) for n in args.lengths.split(",")]
    if torch.cuda.current_stream().cuda_stream != 0:
        sys.exit("the current torch stream is not the default stream the C++ benchmark times on")

    log(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.keep_pool:
        torch.cuda.init()
        keep_default_pool(torch.cuda.current_device())
        log("the default memory pool keeps freed memory (--keep-pool), in both benchmarks")
    inputs = inputs_check(args)
    log(f"inputs: {inputs}; C++ benchmark, first pass")
    cpp_before = cpp_runs(args)
    measured = {}
    for n in args.lengths:
        measured[n] = python_numbers(n, args)
        torch.cuda.empty_cache()
    log("C++ benchmark, second pass")
    cpp_after = cpp_runs(args)
    rows, unchecked = result_rows(args, measured, cpp_before, cpp_after)
    if args.json:
        report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "settings": vars(args),
                  "inputs": inputs, "results": rows,
                  "without_finite_check": unchecked}
        Path(args.json).write_text(json.dumps(report, indent=1))
    print_tables(args, rows, unchecked, inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
