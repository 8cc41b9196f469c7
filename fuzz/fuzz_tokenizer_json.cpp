// libFuzzer target: tokenizer.json, optionally followed by a NUL byte and tokenizer_config.json (and a
// second NUL and generation_config.json); a loaded tokenizer also encodes and decodes a short text. Any
// outcome but that or a dattn::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string_view parts[3];
  for (std::string_view& part : parts) {
    const size_t split = rest.find('\0');
    part = rest.substr(0, split);
    rest = split == std::string_view::npos ? std::string_view() : rest.substr(split + 1);
  }
  try {
    const dattn::Tokenizer tokenizer = dattn::Tokenizer::from_json(parts[0], parts[1], parts[2]);
    const std::vector<int32_t> ids = tokenizer.encode("Hello world, 42 times!", true);
    tokenizer.decode(ids, false);
  } catch (const dattn::Error&) {
  }
  return 0;
}
