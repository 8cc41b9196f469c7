#!/usr/bin/env bash
# install_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR CXX: installs BUILD_DIR into WORK_DIR/prefix and builds
# and runs examples/consumer against it three ways; fails on the first step that does not work.
set -euo pipefail
build=$1 source=$2 work=$3 cxx=$4
prefix=$work/prefix
# the README's C++ example is examples/consumer/main.cpp, verbatim
sed -n '/^```cpp$/,/^```$/p' "$source/README.md" | sed '1d;$d' | diff - "$source/examples/consumer/main.cpp" \
  || { echo "README.md's cpp block differs from examples/consumer/main.cpp" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null

if grep -rlE '#include *[<"](cuda|cuda_runtime|cuda_bf16|cuda_fp16)' "$prefix/include"; then
  echo "installed headers include CUDA headers (listed above)" >&2; exit 1
fi
for header in $(cd "$prefix/include" && find dattn -name '*.h' | sort); do  # each header compiles alone
  echo "#include <$header>" | "$cxx" -std=c++20 -fsyntax-only -I"$prefix/include" -x c++ - \
    || { echo "installed header $header does not compile on its own" >&2; exit 1; }
done

expect_output() {  # runs a consumer binary and checks both lines of its output
  local output
  output=$("$@")
  echo "$output"
  grep -q '^out\[0\.\.3\] = ' <<<"$output" && grep -q '^error: gamma must be >= 1, got 0 ' <<<"$output"
}
for kind in shared static; do
  static=OFF; [ "$kind" = static ] && static=ON
  cmake -S "$source/examples/consumer" -B "$work/consumer-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DDATTN_CONSUMER_STATIC=$static >/dev/null
  cmake --build "$work/consumer-$kind" >/dev/null
  expect_output "$work/consumer-$kind/consumer"
done

libdir=$(dirname "$(find "$prefix" -name dattn.pc)")
export PKG_CONFIG_PATH=$libdir
"$cxx" "$source/examples/consumer/main.cpp" -o "$work/consumer-pkgconfig" $(pkg-config --cflags --libs dattn)
LD_LIBRARY_PATH=$(dirname "$libdir") expect_output "$work/consumer-pkgconfig"
echo "installed tree OK: headers, find_package (shared, static), pkg-config"
