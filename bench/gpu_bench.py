#!/usr/bin/env python3
"""One table: dattn's cuda dense / sparse / delta against PyTorch SDPA (FLASH_ATTENTION = FlashAttention-2,
CUDNN_ATTENTION), FlexAttention sliding window + sink, and a FlexAttention-built delta (sparse + strided
anchor rows dense + Δ + dense tail), for a Llama-3.1-8B attention layer (32 query heads, 8 KV heads,
head_dim 128, bf16, batch 1), window 2048, sink 1024, gamma 64.

Usage (on the GPU machine): python3 bench/gpu_bench.py --bench-binary build-cuda/bench/cuda/cuda_attention_bench
Timing: CUDA events around each call after a warm-up, median of the repeats (a single repeat where one call
takes seconds). Effective TFLOP/s = 4 * head_dim * (query-key pairs the mode needs) * heads / time.
"""
import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

H_Q, H_KV, D = 32, 8, 128
WINDOW, SINK, GAMMA = 2048, 1024, 64
BLOCK = 128  # FlexAttention block size


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def dense_pairs(n):
    return n * (n + 1) / 2


def sparse_pairs_row(p):
    sink_end = min(SINK, p + 1)
    window_begin = max(p - WINDOW + 1, sink_end)
    return sink_end + (p + 1 - window_begin)


def plan(n):
    tail = n % GAMMA + max(128, GAMMA)
    tail = min(tail, n)
    return tail, n - tail


def mode_pairs(n, mode):
    """Same counts as dattn::mode_pairs (params.cpp), for the FlexAttention rows."""
    if mode == "dense":
        return dense_pairs(n)
    import numpy as np
    p = np.arange(n, dtype=np.float64)
    sink_end = np.minimum(SINK, p + 1)
    window_begin = np.maximum(p - WINDOW + 1, sink_end)
    sparse = sink_end + (p + 1 - window_begin)
    if mode == "sparse":
        return float(sparse.sum())
    tail, sp = plan(n)
    anchors = p[:sp:GAMMA]
    return float(sparse[:sp].sum() + (p[sp:] + 1).sum() + (anchors + 1).sum())


def time_call(torch, fn, budget_ms, max_reps, warm=True):
    if warm:
        fn()
        torch.cuda.synchronize()
    times = []
    spent = 0.0
    while True:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
        spent += times[-1]
        if spent >= budget_ms or len(times) >= max_reps:
            break
    return statistics.median(times), len(times)


def block_mask_from_pairs(torch, BlockMask, any_fn, full_fn, q_blocks, kv_blocks, mask_mod, q_len, kv_len, dev):
    """A BlockMask built analytically (no n x n mask is ever materialised): any_fn/full_fn take block index
    grids and say whether some / every (query, key) pair of the block pair is visible."""
    qb = torch.arange(q_blocks, device=dev, dtype=torch.int64)[:, None]
    kb = torch.arange(kv_blocks, device=dev, dtype=torch.int64)[None, :]
    full = full_fn(qb, kb)
    partial = any_fn(qb, kb) & ~full

    def compress(m):
        num = m.sum(dim=1).to(torch.int32)
        idx = torch.argsort((~m).to(torch.int8), dim=1, stable=True).to(torch.int32)
        return num[None, None], idx[None, None]

    kv_num, kv_idx = compress(partial)
    full_num, full_idx = compress(full)
    kwargs = {}
    if "seq_lengths" in inspect.signature(BlockMask.from_kv_blocks).parameters:
        kwargs["seq_lengths"] = (q_len, kv_len)
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BLOCK, mask_mod=mask_mod, **kwargs)


def run_torch(args, results):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    dev = "cuda"
    # Three FlexAttention shapes per length (sparse, anchors, tail), six lengths: more recompiles than
    # dynamo's default limit of 8, past which it silently falls back to the unfused (n x n) path.
    torch._dynamo.config.recompile_limit = 128
    torch._dynamo.config.accumulated_recompile_limit = 1024
    flex = torch.compile(flex_attention, dynamic=False)
    log(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")

    def sparse_any(q_first, q_last):
        return lambda qb, kb: (kb * BLOCK <= q_last(qb)) & (
            (kb * BLOCK < SINK) | (torch.maximum(q_first(qb), kb * BLOCK) <= torch.minimum(q_last(qb), kb * BLOCK + BLOCK - 1 + WINDOW - 1)))

    for n in args.lengths:
        q = torch.randn(1, H_Q, n, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn(1, H_KV, n, D, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, H_KV, n, D, device=dev, dtype=torch.bfloat16)
        dense_cost_s = 4 * D * dense_pairs(n) * H_Q / 400e12  # rough: dense at ~400 TFLOP/s
        for name, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            if n > args.dense_max_n:
                log(f"{name} n={n}: skipped (over --dense-max-n)")
                continue

            def call(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

            try:
                ms, reps = time_call(torch, call, args.budget_ms, args.max_reps, warm=dense_cost_s < 2 or n == args.lengths[0])
                results.append({"impl": name, "mode": "dense", "n": n, "ms": ms, "reps": reps, "pairs": dense_pairs(n) * H_Q})
                log(f"{name} n={n}: {ms:.3f} ms ({reps} reps)")
            except Exception as e:  # noqa: BLE001 - report and go on with the other rows
                log(f"{name} n={n}: failed: {str(e).splitlines()[0][:200]}")
            torch.cuda.empty_cache()

        # FlexAttention sliding window + sink over all rows.
        def sparse_mod(b, h, qi, ki):
            return (ki <= qi) & ((ki < SINK) | (qi - ki < WINDOW))

        nb = (n + BLOCK - 1) // BLOCK
        sparse_mask = block_mask_from_pairs(
            torch, BlockMask,
            sparse_any(lambda qb: qb * BLOCK, lambda qb: torch.clamp(qb * BLOCK + BLOCK - 1, max=n - 1)),
            lambda qb, kb: (kb * BLOCK + BLOCK - 1 <= qb * BLOCK) & ((kb * BLOCK + BLOCK - 1 < SINK) | (kb * BLOCK > qb * BLOCK + BLOCK - 1 - WINDOW)),
            nb, nb, sparse_mod, n, n, dev)

        def flex_sparse():
            return flex(q, k, v, block_mask=sparse_mask, enable_gqa=True)

        t0 = time.time()
        ms, reps = time_call(torch, flex_sparse, args.budget_ms, args.max_reps)
        results.append({"impl": "flex", "mode": "sparse", "n": n, "ms": ms, "reps": reps, "pairs": mode_pairs(n, "sparse") * H_Q})
        log(f"flex sparse n={n}: {ms:.3f} ms (with compile {time.time() - t0:.1f} s)")

        # FlexAttention-built delta: sparse everywhere, anchors (every gamma-th row) dense, Δ broadcast over
        # each block of gamma rows, the tail dense.
        tail, sp = plan(n)
        n_anchor = sp // GAMMA
        # Anchor rows padded to a multiple of the block size: FlexAttention switches to its decoding kernel
        # (which rejects these block masks) under 128 query rows. Padding rows repeat the last anchor.
        n_anchor_padded = (n_anchor + BLOCK - 1) // BLOCK * BLOCK
        q_anchor_idx = torch.clamp(torch.arange(n_anchor_padded, device=dev) * GAMMA, max=max(sp - GAMMA, 0))
        tail_offset = torch.tensor(sp, device=dev, dtype=torch.int64)

        def anchor_mod(b, h, qi, ki):
            return ki <= qi * GAMMA

        def tail_mod(b, h, qi, ki):
            return ki <= qi + tail_offset

        anchor_mask = None
        if n_anchor > 0:
            anchor_mask = block_mask_from_pairs(
                torch, BlockMask,
                lambda qb, kb: kb * BLOCK <= (qb * BLOCK + BLOCK - 1) * GAMMA,
                lambda qb, kb: kb * BLOCK + BLOCK - 1 <= qb * BLOCK * GAMMA,
                n_anchor_padded // BLOCK, nb, anchor_mod, n_anchor_padded, n, dev)
        tail_mask = block_mask_from_pairs(
            torch, BlockMask,
            lambda qb, kb: kb * BLOCK <= sp + torch.clamp(qb * BLOCK + BLOCK - 1, max=tail - 1),
            lambda qb, kb: kb * BLOCK + BLOCK - 1 <= sp + qb * BLOCK,
            (tail + BLOCK - 1) // BLOCK, nb, tail_mod, tail, n, dev)

        def flex_delta():
            out = flex(q, k, v, block_mask=sparse_mask, enable_gqa=True)
            if n_anchor > 0:
                qa = q[:, :, q_anchor_idx].contiguous()
                dense_anchor = flex(qa, k, v, block_mask=anchor_mask, enable_gqa=True)
                delta = dense_anchor[:, :, :n_anchor] - out[:, :, q_anchor_idx[:n_anchor]]
                out[:, :, :sp] += delta.repeat_interleave(GAMMA, dim=2)
            out[:, :, sp:] = flex(q[:, :, sp:].contiguous(), k, v, block_mask=tail_mask, enable_gqa=True)
            return out

        t0 = time.time()
        ms, reps = time_call(torch, flex_delta, args.budget_ms, args.max_reps)
        results.append({"impl": "flex", "mode": "delta", "n": n, "ms": ms, "reps": reps, "pairs": mode_pairs(n, "delta") * H_Q})
        log(f"flex delta n={n}: {ms:.3f} ms (with compile {time.time() - t0:.1f} s)")
        del q, k, v, sparse_mask, anchor_mask, tail_mask
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-binary", default="build-cuda/bench/cuda/cuda_attention_bench")
    ap.add_argument("--lengths", default="8192,32768,131072,262144,524288,1048576")
    ap.add_argument("--dense-max-n", type=int, default=1 << 20, help="skip dense rows (ours, FA2, cuDNN) above this n")
    ap.add_argument("--budget-ms", type=float, default=1500, help="repeat each row until this much time is spent")
    ap.add_argument("--max-reps", type=int, default=20)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--svg-out", default="", help="latency vs length plot (bench/plot_latency.py)")
    args = ap.parse_args()
    args.lengths = [int(x) for x in args.lengths.split(",")]

    results = []
    # One process for every length: the binary warms up once, at the first (smallest) length, so the
    # seconds-long dense calls at 512K and 1M run only once each.
    dense_lengths = [n for n in args.lengths if n <= args.dense_max_n]
    runs = [(dense_lengths, "dense,sparse,delta"), ([n for n in args.lengths if n > args.dense_max_n], "sparse,delta")]
    for lengths, modes in runs:
        if not lengths:
            continue
        cmd = [args.bench_binary, "--lengths", ",".join(map(str, lengths)), "--modes", modes, "--budget-ms",
               str(args.budget_ms), "--max-reps", str(args.max_reps)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            r = json.loads(line)
            log(f"dattn {r['mode']} n={r['n']}: {r['ms']:.3f} ms ({r['tflops']:.0f} TFLOP/s, {r['reps']} reps)")
            results.append(r)
        if proc.wait() != 0:
            raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    device = results[0].get("device", "?") if results else "?"
    if not args.skip_torch:
        run_torch(args, results)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    if args.svg_out:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from plot_latency import svg_plot
        with open(args.svg_out, "w") as f:
            f.write(svg_plot(results, f"{device}, Llama-3.1-8B attention layer (32/8 heads, d 128, bf16): latency vs length"))

    cols = [("dattn", "dense"), ("dattn", "sparse"), ("dattn", "delta"), ("sdpa_flash", "dense"), ("sdpa_cudnn", "dense"),
            ("flex", "sparse"), ("flex", "delta")]
    by = {(r["impl"], r["mode"], r["n"]): r for r in results}
    print(f"\nDevice: {device}. bf16, batch 1, {H_Q} query heads, {H_KV} kv heads, head_dim {D}, window {WINDOW}, "
          f"sink {SINK}, gamma {GAMMA}. Median ms (effective TFLOP/s).")
    header = "| n | " + " | ".join(f"{i} {m}" for i, m in cols) + " | FA2 / our delta | flex delta / our delta | FA2 / our dense |"
    print(header)
    print("|" + "---|" * (len(cols) + 4))
    for n in args.lengths:
        cells = []
        for impl, mode in cols:
            r = by.get((impl, mode, n))
            if r is None:
                cells.append("-")
            else:
                tf = 4 * D * r["pairs"] / (r["ms"] * 1e-3) / 1e12
                cells.append(f"{r['ms']:.2f} ({tf:.0f})")

        def ratio(a, b):
            ra, rb = by.get(a + (n,)), by.get(b + (n,))
            return f"{ra['ms'] / rb['ms']:.1f}x" if ra and rb else "-"

        print(f"| {n // 1024}K | " + " | ".join(cells) + f" | {ratio(('sdpa_flash', 'dense'), ('dattn', 'delta'))} | "
              f"{ratio(('flex', 'delta'), ('dattn', 'delta'))} | {ratio(('sdpa_flash', 'dense'), ('dattn', 'dense'))} |")


if __name__ == "__main__":
    main()
