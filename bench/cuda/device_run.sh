#!/bin/bash
# One device call: cuda tests (ctest label cuda), compute-sanitizer memcheck + racecheck on a small sweep,
# then bench/gpu_bench.py. Expects the carried build folder $CARRY (binaries built elsewhere, see
# docs/CUDA_NOTES.md) with its CTest files made for /work/cuda-wt/build-cuda, and lib/ with libfmt.
# Usage: bench/cuda/device_run.sh CARRY [gpu_bench.py arguments...]
set -u
CARRY=$(realpath "$1"); shift
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH="$CARRY/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
mkdir -p /work/cuda-wt && ln -sfn "$CARRY/build-cuda" /work/cuda-wt/build-cuda
T=$CARRY/build-cuda/tests/cuda
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  (cd /work/cuda-wt/build-cuda/tests/cuda && ctest -L cuda --output-on-failure --timeout 300 2>&1) | tee "$OUT/ctest.log" | tail -60
  C=Cuda/CudaBackendCases.Run
  F="$C/delta_recompute*:$C/strided*:$C/continued_prefill*:$C/grouped_query*"
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 "$T/test_cuda_backend_cases" --gtest_filter="$F" > "$OUT/sanitizer_$tool.log" 2>&1
    echo "compute-sanitizer $tool exit $? : $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_$tool.log" | tail -1)"
  done
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  PYTHONUNBUFFERED=1 python3 bench/gpu_bench.py --bench-binary "$CARRY/build-cuda/bench/cuda/cuda_attention_bench" \
    --json-out "$OUT/bench.json" "$@" 2> "$OUT/bench_progress.log"
  tail -25 "$OUT/bench_progress.log"
fi
