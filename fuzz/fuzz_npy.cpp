// libFuzzer target: the .npy parser on arbitrary bytes (the whole input is the file). Any outcome but an
// array whose payload matches its shape and dtype, or a dattn::Error, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dattn/core/error.h"
#include "dattn/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dattn::npy::Array a = dattn::npy::parse(data, size, "fuzz input");
    const dattn::npy::Header h = dattn::npy::parse_header(data, size, "fuzz input");
    if (h.payload_bytes != a.bytes.size() || h.shape != a.shape || h.data_offset + a.bytes.size() != size) std::abort();
  } catch (const dattn::Error&) {
  }
  return 0;
}
