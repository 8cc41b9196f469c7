// The tokenizer.json / tokenizer_config.json / generation_config.json texts equivalent to a GGUF file's
// tokenizer.ggml.* metadata (see gguf_tokenizer.cpp). Throws dattn::Error naming a bad key.
#pragma once
#include <string>

#include "dattn/io/gguf.h"

namespace dattn::tokenizer_detail {

struct GgufTokenizerFiles {
  std::string tokenizer_json, config_json, generation_config_json;
};
GgufTokenizerFiles gguf_tokenizer_files(const io::GgufHeader& header);

}  // namespace dattn::tokenizer_detail
