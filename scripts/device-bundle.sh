#!/usr/bin/env bash
# Packs a CUDA build for a GPU machine that lacks this machine's libraries: the dattn binary, the
# `cuda`-labelled test binaries with their ctest files, the shared libraries they need that a bare
# CUDA image may not have, and what building the Python module there needs (python-module/), into one
# compressed tarball (the device tool carries at most 64 MiB).
# Usage: scripts/device-bundle.sh BUILD_DIR OUT_DIR   (then scripts/device-check.sh on the GPU machine)
set -euo pipefail
build=${1:?build dir}; out=${2:?output dir}
mkdir -p "$out"
stage=$(mktemp -d)
mkdir -p "$stage/$build/src/cli" "$stage/lib"
cp "$build/src/cli/dattn" "$stage/$build/src/cli/"
# the benchmark drivers (bench/model_bench.py, bench/gpu_bench.py, the engine bench), when built
for bin in src/model/cuda/dattn_model_cuda_bench bench/cuda/cuda_attention_bench bench/engine/dattn_engine_bench; do
  if [ -x "$build/$bin" ]; then mkdir -p "$stage/$build/$(dirname $bin)" && cp "$build/$bin" "$stage/$build/$bin"; fi
done
# every test binary of the `cuda`-labelled directories; of tests/server only its cuda test
for entry in "tests/cuda test_*" "tests/model_cuda test_*" "tests/server test_server_engine_cuda*"; do
  read -r dir pattern <<<"$entry"
  mkdir -p "$stage/$build/$dir"
  cp "$build/$dir"/$pattern "$build/$dir"/CTestTestfile.cmake "$stage/$build/$dir/" 2>/dev/null || true
done
strip --strip-unneeded "$stage/$build/src/cli/dattn" "$stage/$build"/src/model/cuda/dattn_model_cuda_bench "$stage/$build"/bench/cuda/cuda_attention_bench "$stage/$build"/bench/engine/dattn_engine_bench "$stage/$build"/tests/*/test_*[!e] 2>/dev/null || true
for lib in libfmt.so.9 libcpp-httplib.so.0.11 libpcre2-8.so.0 libicuuc.so.72 libicudata.so.72 libgfortran.so.5 libquadmath.so.0; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$stage/lib/"
done
cp -L /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 "$stage/lib/"
# libdattn, fmt's headers and nanobind's sources: scripts/device-python.sh compiles the Python module there
"$(dirname "$0")/device-python.sh" stage "$build" "$stage/python-module"
# every binary links the same kernels: xz with a window spanning the whole tarball (1 GiB: ~11 GiB of memory
# to compress, 1 GiB to unpack) stores them once; the default -9 window (64 MiB) spans only one or two binaries
tar -C "$stage" -cf - . | xz --lzma2=preset=9,dict=1GiB -T1 > "$out/bundle.tar.xz"
rm -rf "$stage"
ls -la "$out/bundle.tar.xz"
