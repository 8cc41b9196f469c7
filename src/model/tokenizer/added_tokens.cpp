#include "added_tokens.h"

#include <algorithm>

#include "regex.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

// Regex \w as Rust's regex crate defines it (single_word checks the characters around a match).
bool is_word_char(std::string_view character) {
  static const Regex word(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])");
  return !word.find_all(character).empty();
}

std::string_view last_char(std::string_view text) {
  size_t pos = text.size() - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  return text.substr(pos);
}

// Start of the whitespace run that ends text (text.size() when none).
size_t trailing_space_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t pos = end - 1;
    while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
    if (!is_unicode_whitespace(decode_utf8_at(text, pos))) break;
    end = pos;
  }
  return end;
}

size_t leading_space_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size() && is_unicode_whitespace(decode_utf8_at(text, pos))) pos += utf8_char_length(text, pos);
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, const std::vector<std::string>& patterns)
    : tokens_(tokens), nodes_(1) {
  for (size_t index = 0; index < patterns.size(); ++index) {
    const std::string& pattern = patterns[index];
    if (pattern.empty()) continue;  // an empty token can never be matched
    first_bytes_[static_cast<uint8_t>(pattern[0])] = true;
    int32_t node = 0;
    for (const char c : pattern) {
      const auto byte = static_cast<uint8_t>(c);
      int32_t next = child(node, byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        auto& children = nodes_[node].children;
        children.insert(std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1})),
                        {byte, next});
        nodes_.emplace_back();
      }
      node = next;
    }
    // Two tokens with the same pattern: the first one wins, as with aho-corasick.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(index);
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  const auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
  return it != children.end() && it->first == byte ? it->second : -1;
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_match(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token >= 0) best = {nodes_[node].token, i + 1 - pos};
  }
  return best;
}

std::vector<TextSpan> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSpan> spans;
  if (text.empty()) return spans;
  size_t covered = 0;  // end of the last emitted span
  for (size_t pos = 0; pos < text.size();) {
    if (!first_bytes_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [index, length] = longest_match(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos, stop = pos + length;
    pos = stop;  // matches never overlap, even when one is then discarded
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      const bool space_after = stop == text.size() || !is_word_char(text.substr(stop, utf8_char_length(text, stop)));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), covered);
    if (token.rstrip) stop += leading_space_length(text.substr(stop));
    if (start < covered) start = covered;  // an earlier rstrip already took these spaces
    if (covered < start) spans.push_back({covered, start, -1});
    spans.push_back({start, stop, token.id});
    covered = stop;
    pos = std::max(pos, stop);
  }
  if (covered < text.size()) spans.push_back({covered, text.size(), -1});
  return spans;
}

}  // namespace dattn::tokenizer_detail
