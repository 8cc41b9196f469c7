#!/usr/bin/env bash
# Checks dattn on SmolLM2-135M-Instruct (GGUF, Q4_1) against tools/gguf_reference.py, a NumPy forward pass
# and `tokenizers` tokenizer that share no code with dattn: token ids, dense logits, greedy continuation.
# Not part of CI (downloads 93 MB). Needs a CPU build (BUILD_DIR, default build/).
#   DATTN_CACHE (default ~/.cache/dattn): the model and a Python venv with gguf, numpy, tokenizers.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DATTN_CACHE:-$HOME/.cache/dattn}
model=$(./scripts/get-smollm2.sh)
venv="$cache/venv-gguf"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "gguf==0.19.0" numpy tokenizers
fi
"$venv/bin/python" tools/gguf_reference.py --dattn "${BUILD_DIR:-build}/src/cli/dattn" --model "$model" "$@"
