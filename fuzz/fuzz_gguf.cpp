// libFuzzer target: the GGUF header parser on arbitrary bytes (the whole input is the file), then every
// metadata value read back and every tensor dequantized. Any outcome but in-bounds, consistent tensors
// or a dattn::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "dattn/core/error.h"
#include "dattn/io/gguf.h"

using namespace dattn::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto bytes = std::as_bytes(std::span(data, size));
    const GgufHeader h = parse_gguf_header(bytes, "fuzz input");
    for (const auto& [key, value] : h.metadata) {
      try {
        if (value.type() == GgufValueType::array) {
          if (value.element_type() == GgufValueType::string) value.as_strings(key);
          else value.as_floats(key);
        } else if (value.type() == GgufValueType::string) {
          value.as_string(key);
        } else {
          value.as_float(key);
        }
      } catch (const dattn::Error&) {
      }
    }
    for (const GgufTensorInfo& t : h.tensors) {
      if (t.offset > size || h.data_offset + t.offset + t.bytes > size) std::abort();
      if (t.numel > (1 << 20)) continue;  // decoding is checked on small tensors; big ones only in bounds
      std::vector<float> out(size_t(t.numel));
      dequantize_to_f32(t.type, bytes.subspan(size_t(h.data_offset + t.offset), size_t(t.bytes)), t.numel, out.data());
    }
  } catch (const dattn::Error&) {
  }
  return 0;
}
