#!/usr/bin/env bash
# Installs the Debian packages the build needs (idempotent; needs root or sudo).
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
          libcli11-dev libfmt-dev libpcre2-dev libopenblas-dev libcpp-httplib-dev libicu-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python packages of the server's end-to-end tests (the real openai client); skipped when present. A CI
# image's Debian python3 is "externally managed": install into it anyway, it exists for the tests.
requirements="$(dirname "$0")/../tests/server/requirements.txt"
if ! python3 -c "import openai, pytest" 2>/dev/null; then
  echo "installing: $(grep -v '^#' "$requirements" | xargs)"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check -r "$requirements"
fi
