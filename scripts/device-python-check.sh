#!/usr/bin/env bash
# On a GPU machine, from the repository root, with the bundle of scripts/device-bundle.sh: the Python
# package there. Builds dattn._dattn for the machine's Python (scripts/device-python.sh), then runs
# tests/python (the CUDA tests included), bench/python_bench.py (also with --keep-pool),
# bench/python_call_overhead.py (CUDA) and bench/transformers_prefill_bench.py.
# Each step has its own time limit and runs whatever became of the others; logs and JSON go to $OUT,
# a summary line per step is printed as it ends (and kept in $OUT/summary.txt), the benchmarks' tables last.
# Usage: scripts/device-python-check.sh BUNDLE_DIR BUILD_DIR [STEPS]
#   STEPS: comma-separated, of pytest,python_bench,keep_pool,call_overhead,prefill_bench (default all; the
#   module's build always runs, and takes a second or two when python-module/build is there from an earlier
#   run); PYTHON (default python3) picks the interpreter, PREFILL_TOKENS (default 131072) the prefill length.
set -u
bundle=${1:?bundle dir}; build=${2:?build dir}
steps=",build,${3:-pytest,python_bench,keep_pool,call_overhead,prefill_bench},"
out=${OUT:-/tmp/device-python-check}; mkdir -p "$out"
python=${PYTHON:-python3}
# unless scripts/device-check.sh or an earlier run unpacked it
[ -d python-module ] && [ -d lib ] && [ -x "$build/src/cli/dattn" ] || tar -C . -xJf "$bundle/bundle.tar.xz"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
: > "$out/summary.txt"

# step NAME LIMIT_S COMMAND...: runs it if STEPS names it, output in $OUT/NAME.log
step() {
  local name=$1 limit=$2 started rc
  shift 2
  [[ $steps == *",$name,"* ]] || return 0
  started=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  local result="ok"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && result="TIMED OUT after $limit s"
  [ $rc -ne 0 ] && [ "$result" = ok ] && result="FAILED (exit $rc)"
  echo "$name: $result, $(( $(date +%s) - started )) s; $(grep -v -e '^\s*$' -e '^export ' "$out/$name.log" | tail -n 1 | cut -c1-200)" \
    | tee -a "$out/summary.txt"
}

"$python" -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__,
  "cuda", torch.version.cuda, "transformers", transformers.__version__)' 2>&1 | tee "$out/versions.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | tee -a "$out/versions.txt"

step build 240 scripts/device-python.sh build python-module "$python"
# the last two lines of the build's output: PYTHONPATH and LD_LIBRARY_PATH for the module
if [ -f "$out/build.log" ]; then eval "$(grep '^export ' "$out/build.log")"; fi
"$python" -c 'import dattn; print("dattn from", dattn.__file__, "cuda_available", dattn.cuda_available())' 2>&1 \
  | tail -n 1 | tee -a "$out/summary.txt"

export DATTN_CLI=$build/src/cli/dattn
step pytest 420 "$python" -m pytest -v -rs -p no:cacheprovider \
  --junitxml "$out/pytest.xml" tests/python
grep -E "^(FAILED|ERROR|SKIPPED)" "$out/pytest.log" 2>/dev/null | cut -c1-240 | head -20

step python_bench 300 "$python" bench/python_bench.py --bench-binary "$build/bench/cuda/cuda_attention_bench" \
  --json "$out/python_bench.json"
step keep_pool 300 "$python" bench/python_bench.py --bench-binary "$build/bench/cuda/cuda_attention_bench" \
  --keep-pool --json "$out/python_bench_keep_pool.json"
step call_overhead 120 "$python" bench/python_call_overhead.py --device cuda --json "$out/python_call_overhead.json"
step prefill_bench 540 "$python" bench/transformers_prefill_bench.py --tokens "${PREFILL_TOKENS:-131072}" \
  --json "$out/transformers_prefill_bench.json"

for name in python_bench keep_pool call_overhead prefill_bench; do  # their Markdown tables
  [ -f "$out/$name.log" ] && { echo; echo "== $name"; sed -n '/^| /p; /^[^ ].*median of/p' "$out/$name.log"; }
done
echo; echo "== summary"; cat "$out/summary.txt"
