// Distractor text for the needle tasks: natural English paragraphs, by default the narrative books of the
// King James Version (public domain) embedded in the binary (data/haystack/, see docs/EVAL.md).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace dattn::eval {

class Haystack {
 public:
  // The embedded default text.
  static const Haystack& builtin();
  // Paragraphs separated by blank lines or single newlines; throws dattn::Error for an empty or
  // unreadable file.
  static Haystack from_file(const std::filesystem::path& path);
  static Haystack from_text(std::string_view text, std::string_view origin = "haystack text");

  // The first n words of an endless stream: the paragraphs in file order, then passes over the
  // paragraphs in a fixed shuffled order (a different one each pass). Words are whitespace-separated,
  // as RULER splits its essays. The stream does not depend on n, so a longer haystack extends a shorter.
  std::string first_words(int64_t n) const;
  int64_t word_count_per_pass() const { return total_words_; }
  const std::vector<std::string>& paragraphs() const { return paragraphs_; }

 private:
  struct WordSpan {
    uint32_t begin, length;  // bytes within its paragraph
  };
  std::vector<std::string> paragraphs_;
  std::vector<std::vector<WordSpan>> words_;  // per paragraph
  int64_t total_words_ = 0;
};

// Splits text into sentences after '.', '!' or '?' (and any closing quote or bracket) that is
// followed by whitespace; the pieces keep their punctuation and lose the whitespace between them.
std::vector<std::string_view> split_sentences(std::string_view text);

}  // namespace dattn::eval
