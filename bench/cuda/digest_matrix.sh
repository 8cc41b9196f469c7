#!/bin/bash
# Output digests of one cuda_attention_bench binary over a matrix of kernel paths (modes, key patterns,
# delta variants, gammas, head dims, schedules, split-KV), one line each: "<config> <mode> <n> <digest>".
# Two builds give bit-identical outputs on these paths when their files are equal:
#   bench/cuda/digest_matrix.sh build-a/bench/cuda/cuda_attention_bench > a.txt
#   bench/cuda/digest_matrix.sh build-b/bench/cuda/cuda_attention_bench > b.txt && diff a.txt b.txt
# n = 8192 and 12345 (partial tiles, a partial last anchor block); bf16 inputs, as the bench fills them.
# --kv-splits 0 plans a split for the anchor and tail tiles at these lengths (the combine kernel), 1 never.
# JOBS (default 8) bench processes run at once: each line is one small deterministic run, so only their
# start-up overlaps; the output is sorted.
set -u
bench=$1
jobs=${JOBS:-8}
one() {  # config, then the bench arguments
  local config=$1; shift
  "$bench" "$@" --lengths 8192,12345 --budget-ms 1 --max-reps 1 --digest 2> /dev/null |
    python3 -c 'import json, os, sys
rows = [json.loads(line) for line in sys.stdin]
text = "".join("%s %s %s %s\n" % (sys.argv[1], r["mode"], r["n"], r["out_digest"]) for r in rows)
os.write(1, text.encode())  # one write: the lines of parallel runs never interleave' "$config" || echo "$config FAILED"
}
export -f one
export bench
{
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
            line=$(printf '%q ' "$config" --modes "$modes" --head-dim "$head_dim" $schedule --kv-splits "$splits" \
              --pattern "$pattern" --gamma "$gamma" --delta-variant "$variant")
            echo "${line% }"  # no trailing blank: xargs -L would join the next line
          done
        done
      done
    done
  done
done
} | xargs -P "$jobs" -L 1 bash -c 'one "$@"' _ | sort
