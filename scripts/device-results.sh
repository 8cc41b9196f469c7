#!/usr/bin/env bash
# The GPU-machine run behind docs/RESULTS.md: RULER's needle tasks on the embedded model with the GPU
# runtime (dattn eval ruler --device cuda) at the paper's window/sink and at the same fractions of a 16K
# context, the per-layer fidelity probe and perplexity (CPU runtime, the machine's cores). Results are tarred into
# $OUT/results.tgz (the device tool returns at most 8 files).
# Usage (repository root, after unpacking a CUDA bundle from scripts/device-bundle.sh):
#   scripts/device-results.sh BUILD_DIR [SAMPLES]
set -u
BUILD=${1:?build dir}
SAMPLES=${2:-20}
OUT=${OUT:-/tmp/dattn_results}
mkdir -p "$OUT/results"
D="$BUILD/src/cli/dattn"
M=models/dattn-tiny-16k
TASKS=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_multivalue,niah_multiquery
start=$(date +%s)
for cfg in "2048 1024" "256 128"; do
  set -- $cfg
  "$D" eval ruler --model $M --device cuda --lengths 4096,8192,16384 --tasks $TASKS --samples "$SAMPLES" \
    --attention dense,sparse,recompute,delta --window "$1" --sink "$2" --gamma 64 \
    --out "$OUT/results/ruler_w$1_s$2" > "$OUT/results/ruler_w$1_s$2.log" 2>&1 &
done
for cfg in "2048 1024" "256 128"; do
  set -- $cfg
  "$D" eval fidelity --model $M --task niah_multikey_2 --length 16384 --window "$1" --sink "$2" --gamma 64 \
    --threads 6 --out "$OUT/results/fidelity_w$1_s$2" > "$OUT/results/fidelity_w$1_s$2.log" 2>&1 &
done
# perplexity: an unseen English text from Debian's base-files (the GPL-3) and the training haystack
for text in /usr/share/common-licenses/GPL-3 data/haystack/kjv_narrative.txt; do
  [ -f "$text" ] || { echo "no $text here: skipped"; continue; }
  name=$(basename "$text" .txt)
  "$D" eval ppl --model $M --text "$text" --length 12288 --attention dense,sparse,recompute,delta --window 256 \
    --sink 128 --gamma 64 --threads 2 --out "$OUT/results/ppl_$name" > "$OUT/results/ppl_$name.log" 2>&1 &
done
wait
echo "results in $(( $(date +%s) - start )) s"
for f in "$OUT"/results/*.log; do echo "== $f"; grep -v "progress\|ETA" "$f" | tail -40; done
tar -C "$OUT" -czf "$OUT/results.tgz" results && rm -rf "$OUT/results"
