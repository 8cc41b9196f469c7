#!/usr/bin/env bash
# The Python module dattn._dattn for a machine whose Python differs from the build machine's (a GPU
# machine with its own Python, torch and compilers and no network): the build machine stages a prebuilt
# libdattn with what compiling the module needs, the target machine compiles only the module's two files
# (cmake/python-module) against its own Python, in well under a minute.
#
#   scripts/device-python.sh stage BUILD_DIR DEST    build machine (scripts/device-bundle.sh calls it):
#       DEST/lib/libdattn.so.X.Y (stripped) and libfmt, DEST/include/fmt (the public headers need it),
#       DEST/nanobind (its CMake package and sources) and DEST/pytest (pytest, pure Python, for a target
#       machine without it), both from the test venv (scripts/python-env.sh)
#   scripts/device-python.sh build DEST [PYTHON]     target machine, repository root (PYTHON: python3):
#       builds DEST/build/python/dattn (the package, importable) and prints the two variables to export
#       (PYTHONPATH, and LD_LIBRARY_PATH for libdattn, fmt and the CUDA runtime) as its last lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
stage)
  build=${2:?build dir}; dest=${3:?destination dir}
  venv_python=$("$root/scripts/python-env.sh")
  nanobind=$(dirname "$("$venv_python" -m nanobind --cmake_dir)")
  library=$(readlink -f "$build/src/package/libdattn.so")
  soname=$(objdump -p "$library" | awk '$1 == "SONAME" {print $2}')
  mkdir -p "$dest/lib" "$dest/include" "$dest/nanobind"
  cp "$library" "$dest/lib/$soname"
  cp -L "$(ldd "$library" | awk '$1 ~ /^libfmt/ {print $3}')" "$dest/lib/"  # target machines may lack fmt
  strip --strip-unneeded "$dest/lib/$soname"
  cp -r "$nanobind"/cmake "$nanobind"/include "$nanobind"/src "$nanobind"/ext "$dest/nanobind/"
  rm -rf "$dest/nanobind/cmake/__pycache__"
  cp -r "$(dirname "$(echo '#include <fmt/format.h>' | c++ -xc++ -E -M - | grep -o '[^ ]*/fmt/format.h')")" "$dest/include/"
  "$venv_python" - "$dest/pytest" <<'PY'
import importlib.metadata, pathlib, shutil, sys
for name in ("pytest", "pluggy", "iniconfig", "pygments"):  # pytest and what it needs beyond torch's needs
    dist = importlib.metadata.distribution(name)
    for file in dist.files:
        if ".." in file.parts or "__pycache__" in file.parts or file.parts[0].endswith(".dist-info"):
            continue
        target = pathlib.Path(sys.argv[1], file)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dist.locate_file(file), target)
PY
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
  pythonpath=$dest/build/python
  if ! "$python" -c "import pytest" 2> /dev/null; then
    echo "device-python: $python has no pytest; the staged one is on PYTHONPATH" >&2
    pythonpath=$pythonpath:$dest/pytest
  fi
  echo "device-python: built $(ls "$dest"/build/python/dattn/_dattn*) for $python" >&2
  echo "export PYTHONPATH=$pythonpath\${PYTHONPATH:+:\$PYTHONPATH}"
  echo "export LD_LIBRARY_PATH=$dest/lib$cuda_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  ;;
*)
  echo "usage: $0 stage BUILD_DIR DEST | build DEST [PYTHON]" >&2
  exit 2
  ;;
esac
