#!/usr/bin/env bash
# Builds the Python wheel of dattn into dist/ (scikit-build-core runs this repository's CMake build; the
# CUDA backend is compiled in when nvcc is found). Install it with `pip install dist/dattn-*.whl`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip wheel . --no-deps --wheel-dir dist "$@"
