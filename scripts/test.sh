#!/usr/bin/env bash
# Installs build dependencies, builds, and runs the test suite with ctest.
#   ./scripts/test.sh             Release build (CUDA targets compiled when nvcc exists) with the Python
#                                 module, all CPU tests (pytest too, in the environment of python-env.sh)
#   ./scripts/test.sh --sanitize  ASan + UBSan build (CPU only) in build-sanitize/, tests without label `slow`
# GPU tests carry the label `cuda`; they run on a GPU machine with `ctest -L cuda`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ "${1:-}" = "--sanitize" ]; then
  BUILD_DIR=build-sanitize ./scripts/build.sh -DDATTN_SANITIZE=ON -DDATTN_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cd build-sanitize
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$(nproc)" -LE "cuda|slow"
else
  python=$(./scripts/python-env.sh)
  ./scripts/build.sh -DDATTN_PYTHON=ON -DPython_EXECUTABLE="$python"
  cd build
  ctest --output-on-failure -j "$(nproc)" -LE cuda
fi
