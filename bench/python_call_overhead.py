#!/usr/bin/env python3
"""Host cost of each layer of dattn.attention on torch tensors, on a problem so small that the library's
own work is a few microseconds: the bare binding (dattn._dattn.attention_into on preallocated outputs,
tensors handed over as DLPack capsules), then what each layer above it adds: the DLPack export, the
outputs' allocation, the custom op's dispatch (torch.ops.dattn.attention), the dattn.attention wrapper.
Best of --rounds rounds of --calls calls (timeit), microseconds per call. On CUDA every call includes the
library's wait for its kernels, the same in every row, so the differences are host work. On the CPU the
library runs on one thread (DATTN_NUM_THREADS=1 unless set): waking a thread team costs more than this
problem and varies from call to call.

Usage: python3 bench/python_call_overhead.py [--device cpu|cuda] [--calls 2000] [--rounds 7] [--json FILE]
(the dattn package importable, e.g. PYTHONPATH=<build>/python)
"""
import argparse
import json
import os
import sys
import timeit
from pathlib import Path

import torch

import dattn
from dattn import _dattn, torch_ops

SETTINGS = ("delta", 16, 4, 4, -1, 0.0)  # mode, window, sink, gamma, tail_min, scale
SHAPES = ((1, 64, 2, 64), (1, 64, 1, 64), (1, 64, 1, 64))  # q, k, v


def layer_calls(q, k, v, stream):
    """[(name, call)], each row one layer more than the row before."""
    out, lse = torch.empty_like(q), torch.empty((1, q.shape[2], q.shape[1]), dtype=torch.float32, device=q.device)
    to_dlpack = torch._C._to_dlpack
    capsules = []

    def bare():
        _dattn.attention_into(*capsules.pop(), *SETTINGS, "auto", stream, 0)

    def with_export():
        _dattn.attention_into(to_dlpack(q), to_dlpack(k), to_dlpack(v), to_dlpack(out), to_dlpack(lse), *SETTINGS,
                              "auto", stream, 0)

    def with_dunder_export():  # what nanobind does when handed the tensors themselves
        _dattn.attention_into(q, k, v, out, lse, *SETTINGS, "auto", stream, 0)

    op_body = getattr(torch_ops.attention, "_init_fn", None)  # the op's Python function, without the dispatcher
    layers = [
        ("binding, capsules made beforehand", bare),
        ("+ DLPack export (torch._C._to_dlpack x5)", with_export),
        ("  (instead: Tensor.__dlpack__ x5, called by nanobind)", with_dunder_export),
        ("+ outputs' allocation, current stream (the op's body)", lambda: op_body(q, k, v, *SETTINGS, True)),
        ("+ custom op dispatch (torch.ops.dattn.attention)", lambda: torch.ops.dattn.attention(q, k, v, *SETTINGS)),
        ("+ dattn.attention wrapper (return_lse=True)",
         lambda: dattn.attention(q, k, v, window=16, sink=4, gamma=4, return_lse=True)),
    ]
    if op_body is None:  # a torch whose CustomOpDef keeps the function elsewhere
        layers = [layer for layer in layers if "op's body" not in layer[0]]
    return capsules, layers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device(args.device)
    os.environ.setdefault("DATTN_NUM_THREADS", "1")  # read by the library at each call
    g = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    q, k, v = (torch.randn(shape, generator=g).to(device, dtype) for shape in SHAPES)
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    capsules, layers = layer_calls(q, k, v, stream)
    to_dlpack = torch._C._to_dlpack
    lse = torch.empty((1, 2, 64), dtype=torch.float32, device=device)
    out = torch.empty_like(q)
    results = []
    for name, call in layers:
        best = float("inf")
        for _ in range(args.rounds):
            if call.__name__ == "bare":  # a capsule is used once: make this round's beforehand
                capsules[:] = [[to_dlpack(t) for t in (q, k, v, out, lse)] for _ in range(args.calls + 1)]
            call()  # warm-up
            best = min(best, timeit.timeit(call, number=args.calls) / args.calls * 1e6)
        results.append({"layer": name, "us_per_call": best})
    base = results[0]["us_per_call"]
    print(f"dattn.attention's layers on {device} {dtype} tensors {list(SHAPES[0])}, torch {torch.__version__}, "
          f"best of {args.rounds} x {args.calls} calls\n")
    print("| layer | us per call | over the bare binding |")
    print("|---|---|---|")
    for r in results:
        print(f"| {r['layer']} | {r['us_per_call']:.1f} | {r['us_per_call'] - base:+.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "torch": torch.__version__, "results": results},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
