// Whole-file reads for the files users hand us (config.json, tokenizer.json, prompts, texts).
#pragma once
#include <filesystem>
#include <string>

#include "dattn/core/input_file.h"

namespace dattn {

// Prompts and texts above this are refused: far beyond any model's context, and a bound on what a
// FIFO or a mistaken path can make us hold.
inline constexpr uint64_t kMaxTextFileBytes = uint64_t{256} << 20;

// The file's bytes; throws dattn::Error naming the path when it cannot be opened or read, is not of
// `kind` (directories and devices never are), or holds more than max_bytes.
std::string read_text_file(const std::filesystem::path& path, uint64_t max_bytes = kMaxTextFileBytes,
                           InputKind kind = InputKind::file_or_pipe);

}  // namespace dattn
