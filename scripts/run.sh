#!/usr/bin/env bash
# Installs build dependencies, builds, and runs the main job: `dattn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec ./build/src/cli/dattn demo "$@"
