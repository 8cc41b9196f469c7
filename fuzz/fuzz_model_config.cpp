// libFuzzer target: config.json and generation_config.json. The input is config.json, optionally followed
// by a NUL byte and generation_config.json. Any outcome but a config within its stated bounds or a
// dattn::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dattn/core/error.h"
#include "dattn/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  try {
    dattn::model::ModelConfig config = dattn::model::parse_model_config(input.substr(0, split));
    if (split != std::string_view::npos) dattn::model::parse_generation_config(input.substr(split + 1), config);
    dattn::model::check_model_config(config);  // parsing must never hand out a config this refuses
    if (dattn::model::rope_inverse_frequencies(config.rope, config.head_dim).size() != size_t(config.head_dim / 2))
      std::abort();
  } catch (const dattn::Error&) {
  }
  return 0;
}
