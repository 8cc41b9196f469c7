#!/bin/bash
# Output digests of one cuda_attention_bench binary over a matrix of kernel paths (modes, key patterns,
# delta variants, gammas, head dims, schedules, split-KV), one line each: "<config> <mode> <n> <digest>".
# Two builds give bit-identical outputs on these paths when their files are equal:
#   bench/cuda/digest_matrix.sh build-a/bench/cuda/cuda_attention_bench > a.txt
#   bench/cuda/digest_matrix.sh build-b/bench/cuda/cuda_attention_bench > b.txt && diff a.txt b.txt
# n = 8192 and 12345 (partial tiles, a partial last anchor block); bf16 inputs, as the bench fills them.
# --kv-splits 0 plans a split for the anchor and tail tiles at these lengths (the combine kernel), 1 never.
set -u
bench=$1
for head_dim in 128 64; do
  for schedule in "" "--no-ws" "--no-tma"; do
    for splits in 0 1; do
      for pattern in window_sink block_topk; do
        for gamma in 64 1 32 100; do
          variants="repeat"
          [ "$pattern" = window_sink ] && variants="repeat interpolate"  # block top-k refuses interpolate
          for variant in $variants; do
            modes=dense,sparse,recompute,delta
            [ "$variant" = interpolate ] && modes=delta
            # block top-k refuses delta unless gamma divides 64
            [ "$pattern" = block_topk ] && [ $((64 % gamma)) -ne 0 ] && modes=dense,sparse,recompute
            config="hd$head_dim${schedule:+ $schedule} splits$splits $pattern gamma$gamma $variant"
            "$bench" --lengths 8192,12345 --modes "$modes" --head-dim "$head_dim" $schedule --kv-splits "$splits" \
              --pattern "$pattern" --gamma "$gamma" --delta-variant "$variant" --budget-ms 1 --max-reps 1 --digest \
              2> /dev/null |
              python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(sys.argv[1], r["mode"], r["n"], r["out_digest"])' "$config" || echo "$config FAILED"
          done
        done
      done
    done
  done
done
