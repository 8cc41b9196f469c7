// libFuzzer target: the safetensors header parser on arbitrary bytes (the whole input is the file).
// Any outcome but a parsed header with in-bounds, consistent tensors or a dattn::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dattn/core/error.h"
#include "dattn/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto bytes = std::as_bytes(std::span(data, size));
    dattn::model::SafetensorsHeader header = dattn::model::parse_safetensors_header(bytes, size, "fuzz input");
    const uint64_t data_size = size - header.data_offset;
    for (const auto& [name, t] : header.tensors) {
      if (t.begin > t.end || t.end > data_size) std::abort();
      if (t.end - t.begin != uint64_t(t.numel()) * dattn::model::st_dtype_size(t.dtype)) std::abort();
    }
  } catch (const dattn::Error&) {
  }
  return 0;
}
