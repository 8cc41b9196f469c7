#!/usr/bin/env bash
# One GPU-machine run of the model runtime's GPU work from a build made elsewhere (carried):
# the `cuda` tests of tests/model_cuda through ctest, a CLI smoke test of --device cuda, then
# bench/model_bench.py. Rebuilds here when the carried binaries cannot run. Logs go to $OUT.
# Usage (repository root): tests/model_cuda/device_run.sh [BUILD_DIR]
set -u
BUILD=${1:-build-gpumodel}
OUT=${OUT:-/tmp/dattn_device_out}
mkdir -p "$OUT"
# the carried build has /work/main (its source dir) baked into ctest files and fixture paths
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader

TARGETS="test_model_cuda_logits test_model_cuda_generation test_model_cuda_decode_attention test_model_cuda_paged_decode
  test_server_engine_cuda dattn_model_cuda_bench dattn_engine_bench dattn"
if ! "$BUILD/tests/model_cuda/test_model_cuda_decode_attention" --gtest_list_tests > /dev/null 2>&1; then
  echo "carried binaries do not run here: rebuilding"
  cmake -S . -B "$BUILD" -G Ninja -DDATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/cmake.log" 2>&1 &&
    cmake --build "$BUILD" -j16 --target $TARGETS > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi

ctest --test-dir "$BUILD/tests/model_cuda" -L cuda --output-on-failure --timeout 120 > "$OUT/ctest.log" 2>&1
ctest --test-dir "$BUILD/tests/server" -L cuda --output-on-failure --timeout 300 >> "$OUT/ctest.log" 2>&1
tail -25 "$OUT/ctest.log"

M=tests/fixtures/models/qwen2_bias_tied
"$BUILD/src/cli/dattn" logits --model $M --ids 1,2,3,4 --device cuda --out "$OUT/cli_logits.npy" 2>&1 | tail -2
"$BUILD/src/cli/dattn" generate --model $M --prompt "hello world" --device cuda --max-new-tokens 8 2>&1 | tail -4

PYTHONUNBUFFERED=1 timeout 230 python3 bench/model_bench.py \
  --binary "$BUILD/src/model/cuda/dattn_model_cuda_bench" --out "$OUT" > "$OUT/bench.log" 2>&1
echo "bench exit $?"
tail -22 "$OUT/bench.log"
