#!/usr/bin/env bash
# The Python module dattn._dattn for a machine whose Python differs from the build machine's (a GPU
# machine with its own Python, torch and compilers and no network): the build machine stages a prebuilt
# libdattn with what compiling the module needs, the target machine compiles only the module's two files
# (cmake/python-module) against its own Python, in well under a minute.
#
#   scripts/device-python.sh stage BUILD_DIR DEST    build machine (scripts/device-bundle.sh calls it):
#       DEST/lib/libdattn.so.X.Y (stripped) and libfmt, DEST/include/fmt (the public headers need it),
#       DEST/nanobind (its CMake package and sources, from the build's or the test venv's nanobind)
#   scripts/device-python.sh build DEST [PYTHON]     target machine, repository root (PYTHON: python3):
#       builds DEST/build/python/dattn (the package, importable) and prints the two variables to export
#       (PYTHONPATH, and LD_LIBRARY_PATH for libdattn, fmt and the CUDA runtime) as its last lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
stage)
  build=${2:?build dir}; dest=${3:?destination dir}
  nanobind=$(sed -n 's/^NB_DIR:INTERNAL=//p' "$build/CMakeCache.txt")  # the build's, when it has DATTN_PYTHON
  [ -n "$nanobind" ] || nanobind=$(dirname "$("$("$root/scripts/python-env.sh")" -m nanobind --cmake_dir)")
  library=$(readlink -f "$build/src/package/libdattn.so")
  soname=$(objdump -p "$library" | awk '$1 == "SONAME" {print $2}')
  mkdir -p "$dest/lib" "$dest/include" "$dest/nanobind"
  cp "$library" "$dest/lib/$soname"
  cp -L "$(ldd "$library" | awk '$1 ~ /^libfmt/ {print $3}')" "$dest/lib/"  # target machines may lack fmt
  strip --strip-unneeded "$dest/lib/$soname"
  cp -r "$nanobind"/cmake "$nanobind"/include "$nanobind"/src "$nanobind"/ext "$dest/nanobind/"
  rm -rf "$dest/nanobind/cmake/__pycache__"
  cp -r "$(dirname "$(echo '#include <fmt/format.h>' | c++ -xc++ -E -M - | grep -o '[^ ]*/fmt/format.h')")" "$dest/include/"
  ;;
build)
  dest=$(cd "${2:?staged dir}" && pwd); python=$(command -v "${3:-python3}")
  include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if [ ! -f "$include/Python.h" ]; then
    echo "device-python: $python has no C headers ($include/Python.h is missing); install its -dev package" >&2
    exit 1
  fi
  library=$(ls "$dest"/lib/libdattn.so.*)
  cuda=OFF
  objdump -p "$library" | grep -q 'NEEDED.*libcudart' && cuda=ON
  generator=()
  command -v ninja > /dev/null && generator=(-G Ninja)
  cmake -S "$root/cmake/python-module" -B "$dest/build" "${generator[@]}" -DPython_EXECUTABLE="$python" \
    -Dnanobind_DIR="$dest/nanobind/cmake" -DDATTN_LIBRARY="$library" -DDATTN_HEADER_DEPS="$dest/include" \
    -DDATTN_CUDA=$cuda > "$dest/configure.log" || { cat "$dest/configure.log" >&2; exit 1; }
  cmake --build "$dest/build" -j "$(nproc)" > "$dest/build.log" || { cat "$dest/build.log" >&2; exit 1; }
  cuda_lib=""
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$dir" ] && cuda_lib="$cuda_lib:$dir"; done
  echo "export PYTHONPATH=$dest/build/python\${PYTHONPATH:+:\$PYTHONPATH}"
  echo "export LD_LIBRARY_PATH=$dest/lib$cuda_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  ;;
*)
  echo "usage: $0 stage BUILD_DIR DEST | build DEST [PYTHON]" >&2
  exit 2
  ;;
esac
