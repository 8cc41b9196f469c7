#!/usr/bin/env bash
# Prints the Python interpreter the tests use, after making its virtual environment if needed:
# $DATTN_VENV (default ~/.cache/dattn/venv) with tests/python/requirements.txt from PyPI. The first run
# downloads torch and its CUDA libraries (about 5 GB, 3-4 minutes); later runs reuse the environment.
set -euo pipefail
requirements=$(cd "$(dirname "$0")/.." && pwd)/tests/python/requirements.txt
venv=${DATTN_VENV:-$HOME/.cache/dattn/venv}
if ! [ -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
