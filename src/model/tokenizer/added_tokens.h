// Added and special tokens: found in the text before the model runs, honouring lstrip, rstrip,
// single_word and normalized as `tokenizers`' AddedVocabulary does.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dattn::tokenizer_detail {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

// A span of the input: an added token (token_id >= 0) or plain text (token_id == -1).
struct TextSpan {
  size_t start, end;
  int32_t token_id;
};

// Leftmost-longest matching of a set of patterns (a byte trie), then the added-token rules.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // patterns[i] is what to look for in the text for tokens[i] (its content, normalized when needed).
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, const std::vector<std::string>& patterns);
  // Spans covering all of text, in order. Empty text gives no spans.
  std::vector<TextSpan> split(std::string_view text) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                  // index into tokens_ ending here
  };
  int32_t child(int32_t node, uint8_t byte) const;
  // Index of the longest pattern starting at pos and its length, or {-1, 0}.
  std::pair<int32_t, size_t> longest_match(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  std::array<bool, 256> first_bytes_{};
};

}  // namespace dattn::tokenizer_detail
