#!/bin/bash
# A/B of attention kernel builds in one device call: runs each cuda_attention_bench binary given, in
# alternating rounds (so clock and thermal drift hit both alike), and prints one JSON line per row with the
# binary's label. Usage: bench/cuda/ab_bench.sh ROUNDS LABEL=BINARY... -- [cuda_attention_bench arguments]
# (BINARY may carry environment settings: "ws0=env DATTN_CUDA_WS=0 build/bench/cuda/cuda_attention_bench")
set -u
rounds=$1; shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
for ((r = 1; r <= rounds; ++r)); do
  for entry in "${bins[@]}"; do
    label=${entry%%=*}; bin=${entry#*=}
    read -ra command <<< "$bin"  # a binary, or e.g. "env DATTN_CUDA_WS=0 path/to/binary"
    "${command[@]}" "$@" 2> /dev/null | sed "s/^{/{\"build\": \"$label\", \"round\": $r, /"
  done
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
