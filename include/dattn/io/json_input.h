// Untrusted JSON (config.json, generation_config.json, tokenizer files, safetensors headers and index):
// size and nesting depth are bounded while parsing, and messages never echo more than a short excerpt,
// so a document nested 100k levels deep or a 100 MB string ends in a short dattn::Error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dattn {

struct JsonLimits {
  uint64_t max_bytes;
  int max_depth;  // nesting of arrays and objects; the top-level value is depth 1
};

// config.json, generation_config.json, tokenizer_config.json, model.safetensors.index.json: kilobytes to a
// few megabytes in real models; the nesting of any Hugging Face file is below 10.
inline constexpr JsonLimits kModelJsonLimits{uint64_t{64} << 20, 64};
// tokenizer.json: tens of megabytes for the largest vocabularies.
inline constexpr JsonLimits kTokenizerJsonLimits{uint64_t{512} << 20, 64};

// Parses `text`; throws dattn::Error starting with `origin` when it is larger or deeper than the limits
// or not valid JSON ("<origin> is not valid JSON: ... at byte N").
nlohmann::json parse_json(std::string_view text, std::string_view origin, const JsonLimits& limits);

// Reads (regular files only, at most limits.max_bytes) and parses `path`; messages name the path.
nlohmann::json read_json_file(const std::filesystem::path& path, const JsonLimits& limits);

// A JSON value for an error message: its serialisation, cut to max_bytes.
std::string json_excerpt(const nlohmann::json& value, size_t max_bytes = 80);

}  // namespace dattn
