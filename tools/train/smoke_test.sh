#!/usr/bin/env bash
# CPU smoke test of the training recipe and its export, checked with the C++ runtime:
#  1. train the tokenizer + the default architecture for 30 steps at 256-512 tokens on CPU, export;
#  2. `dattn tokenize` == tokenizers' ids; `dattn logits` == transformers' logits (relative L2 < 1e-4);
#  3. data.py's niah prompts == `dattn eval ruler`'s (same answers, same token counts) for all 8 niah tasks;
#  4. `dattn eval ruler --attention dense,delta` runs on the exported model.
# Usage: tools/train/smoke_test.sh [OUT_DIR]   (PYTHON=... DATTN=... to override; a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/venv-model/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DATTN=${DATTN:-build/src/cli/dattn}
OUT=${1:-/tmp/dattn-train-smoke}
if [ ! -x "$DATTN" ]; then
  cmake -S . -B build -G Ninja -DDATTN_CUDA=OFF && cmake --build build -j2 --target dattn
fi
rm -rf "$OUT"; mkdir -p "$OUT"
M=$OUT/model

echo "== train (CPU, 30 steps) + export"
"$PYTHON" tools/train/train.py --out "$M" --device cpu --max-steps 30 --minutes 10 --min-len 256 --max-len 512 \
  --tokens-per-step 1024 --warmup-steps 5 --log-every 5 --eval-lengths 512 --eval-samples 2 --eval-every 0 \
  --eval-tasks niah_single_1,niah_single_2
ls -la "$M" "$M/train"
"$PYTHON" - "$M" <<'PY'
import json, sys, pathlib
m = pathlib.Path(sys.argv[1])
size = (m / "model.safetensors").stat().st_size
print(f"model.safetensors: {size / 1e6:.1f} MB (limit 30 MB)")
assert size <= 30e6
for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "train/loss.csv",
          "train/eval.csv", "train/loss.svg", "train/summary.json"):
    assert (m / f).is_file(), f
PY

echo "== dattn tokenize vs tokenizers"
"$PYTHON" tools/train/check_export.py tokenize --model "$M" --dattn "$DATTN"
echo "== dattn logits vs transformers"
"$PYTHON" tools/train/check_export.py logits --model "$M" --dattn "$DATTN"

echo "== data.py's RULER niah prompts vs dattn eval ruler's"
"$DATTN" eval ruler --model "$M" --lengths 1024 --samples 1 --attention dense --max-new-tokens 1 \
  --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_multivalue,niah_multiquery \
  --out "$OUT/prompts" 2>/dev/null >/dev/null
"$PYTHON" tools/train/check_export.py ruler --model "$M" --results "$OUT/prompts/results.json"

echo "== dattn eval ruler dense,delta"
"$DATTN" eval ruler --model "$M" --lengths 1024 --tasks niah_single_1 --samples 2 --attention dense,delta \
  --window 256 --sink 64 --gamma 64 --out "$OUT/ruler" 2>/dev/null
echo "smoke test passed ($OUT)"
