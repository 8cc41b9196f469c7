// Whole-file reads for the files users hand us (config.json, tokenizer.json, prompts, texts).
#pragma once
#include <filesystem>
#include <string>

namespace dattn {

// The file's bytes; throws dattn::Error naming the path when it cannot be opened or read.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace dattn
