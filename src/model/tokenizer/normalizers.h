// Normalizers of tokenizer.json: rewrite each text piece before pre-tokenization.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "json_fields.h"
#include "regex.h"

namespace dattn::tokenizer_detail {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Strip, Lowercase; others throw naming the type.
std::unique_ptr<Normalizer> parse_normalizer(const Json& spec, std::string_view path, int depth = 0);

// A Replace pattern, {"String": literal} or {"Regex": pattern} (normalizers and decoders).
Regex parse_pattern(const Json& spec, std::string_view path);

// Components nest (Sequence of Sequence ...); a bound keeps hostile files from exhausting the stack.
inline constexpr int kMaxComponentDepth = 16;

}  // namespace dattn::tokenizer_detail
