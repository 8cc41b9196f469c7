#!/usr/bin/env bash
# On a GPU machine, from the repository root, with the bundle of scripts/device-bundle.sh:
# the `cuda` tests (ctest), the CLI's cuda paths checked against its cpu backend, and a short benchmark.
# Usage: scripts/device-check.sh BUNDLE_DIR BUILD_DIR
set -u
bundle=${1:?bundle dir}; build=${2:?build dir}
out=${OUT:-/tmp/device-check}; mkdir -p "$out"
tar -C . -xJf "$bundle/bundle.tar.xz"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# ctest files and compiled-in fixture paths name the source dir of the build machine
src_dir=$(sed -n 's/^# Source directory: \(.*\)\/tests\/cuda$/\1/p' "$build/tests/cuda/CTestTestfile.cmake")
[ -n "$src_dir" ] && [ ! -e "$src_dir" ] && mkdir -p "$(dirname "$src_dir")" && ln -s "$PWD" "$src_dir"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
dattn=$build/src/cli/dattn

for dir in tests/cuda tests/model_cuda; do
  (cd "$build/$dir" && ctest -L cuda --output-on-failure --timeout 240 2>&1) > "$out/ctest_$(basename $dir).log"
  grep -E "tests passed|tests failed|\(Failed\)|Skipped" "$out/ctest_$(basename $dir).log" | head -12
done

# tests/server's ctest file names its cpu tests too, which the bundle leaves out: run the cuda one directly
"$build/tests/server/test_server_engine_cuda" > "$out/test_server_engine_cuda.log" 2>&1
tail -n 1 "$out/test_server_engine_cuda.log"

python3 - "$out" <<'PY'
import numpy as np, sys
out = sys.argv[1]; rng = np.random.default_rng(0)
for name, heads in (("q", 8), ("k", 2), ("v", 2)):
    np.save(f"{out}/{name}.npy", rng.standard_normal((2, 3000, heads, 128), dtype=np.float32))
PY
for backend in cpu cuda; do
  "$dattn" attention --q $out/q.npy --k $out/k.npy --v $out/v.npy --out $out/o_$backend.npy --lse $out/l_$backend.npy \
    --mode delta --window 256 --sink 64 --gamma 32 --dtype bf16 --backend $backend || echo "attention --backend $backend failed"
done
python3 - "$out" <<'PY'
import numpy as np, sys
out = sys.argv[1]
for kind in ("o", "l"):
    a, b = np.load(f"{out}/{kind}_cuda.npy"), np.load(f"{out}/{kind}_cpu.npy")
    print(f"CLI attention bf16 delta, cuda vs cpu, {kind}: relative L2 {np.linalg.norm(a - b) / np.linalg.norm(b):.2e}")
PY
"$dattn" bench attention --backend cuda --dtype bf16 --heads 32 --kv-heads 8 --head-dim 128 \
  --lengths 32768,131072 --repeats 10 2> /dev/null | tee "$out/bench.txt"
M=tests/fixtures/models/qwen2_bias_tied
for device in cpu cuda; do
  "$dattn" generate --model $M --prompt "The quick brown fox" --max-new-tokens 12 --device $device 2>/dev/null > "$out/gen_$device.txt"
done
cmp -s "$out/gen_cpu.txt" "$out/gen_cuda.txt" && echo "generate: cuda text == cpu text" || { echo "generate differs:"; cat "$out/gen_cpu.txt" "$out/gen_cuda.txt"; }
