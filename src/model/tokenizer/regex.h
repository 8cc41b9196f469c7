// PCRE2 regular expressions (UTF-8, Unicode properties) standing in for the Oniguruma regexes of
// `tokenizers`.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dattn::tokenizer_detail {

struct ByteRange {
  size_t start;
  size_t end;
};

class Regex {
 public:
  // Throws dattn::Error naming the pattern and PCRE2's message when it does not compile.
  explicit Regex(std::string_view pattern);
  // A regex matching `literal` exactly.
  static Regex literal(std::string_view literal);

  // Non-overlapping matches, left to right, in valid UTF-8 text. Empty matches are reported (they split
  // text as in `tokenizers`), except one right at the end of the previous match.
  // Throws dattn::Error when the match limit is hit (pathological pattern).
  std::vector<ByteRange> find_all(std::string_view text) const;
  // Replaces every match with `replacement` (taken literally).
  std::string replace_all(std::string_view text, std::string_view replacement) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8, freed with pcre2_code_free_8
};

}  // namespace dattn::tokenizer_detail
