#!/usr/bin/env bash
# RULER and per-layer fidelity on SmolLM2-135M-Instruct (GGUF, Q4_1; 30 layers, 9 query / 3 KV heads of 64,
# trained to 8K). RULER runs on the GPU runtime by default; `eval fidelity` always uses the CPU runtime (fp32).
# Usage: scripts/eval-smollm2.sh MODEL.gguf [OUT_DIR] [DEVICE]   (defaults: eval-smollm2, cuda)
#   DATTN (default build-gpu/src/cli/dattn), SAMPLES (default 20 per task and length),
#   LENGTHS (default "4096 8192"), DIVISORS (default "64 16"), PARTS (default "ruler fidelity"): run a
#   piece at a time, e.g. LENGTHS=8192 DIVISORS=64 PARTS=ruler.
#
# Sparsity: window + sink at the paper's fractions of the context (2048 + 1024 of 131072 tokens, i.e.
# 1/64 + 1/128: 64 + 32 at 4K, 128 + 64 at 8K) and at 4x that budget (1/16 + 1/32: 256 + 128 at 4K,
# 512 + 256 at 8K); gamma 64 as in the paper. The window and sink scale with the length, so each length is
# its own run.
set -euo pipefail
model=${1:?usage: $0 MODEL.gguf [OUT_DIR] [DEVICE]}
out=${2:-eval-smollm2}
device=${3:-cuda}
dattn=${DATTN:-build-gpu/src/cli/dattn}
samples=${SAMPLES:-20}
tasks=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3
tasks=$tasks,niah_multivalue,niah_multiquery,vt,cwe,fwe
lengths=${LENGTHS:-4096 8192}
divisors=${DIVISORS:-64 16}
parts=${PARTS:-ruler fidelity}
mkdir -p "$out"
[[ " $parts " == *" ruler "* ]] && for length in $lengths; do
  for divisor in $divisors; do  # window = length / divisor, sink = window / 2
    window=$((length / divisor)); sink=$((window / 2))
    "$dattn" eval ruler --model "$model" --device "$device" --lengths "$length" --tasks "$tasks" \
      --samples "$samples" --attention dense,sparse,recompute,delta --window "$window" --sink "$sink" --gamma 64 \
      --out "$out/ruler_${length}_w${window}_s${sink}"
  done
done
[[ " $parts " == *" fidelity "* ]] && for length in $lengths; do
  for divisor in $divisors; do
    window=$((length / divisor)); sink=$((window / 2))
    "$dattn" eval fidelity --model "$model" --task niah_multikey_2 --length "$length" \
      --attention sparse,recompute,delta --window "$window" --sink "$sink" --gamma 64 \
      --out "$out/fidelity_${length}_w${window}_s${sink}"
  done
done
true
