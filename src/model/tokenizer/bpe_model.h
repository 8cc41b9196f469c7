// The BPE model of tokenizer.json: vocabulary, ranked merges, unknown-token and byte-fallback handling.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_fields.h"

namespace dattn::tokenizer_detail {

// Hash for unordered_map<std::string, ...> lookups by string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Parses tokenizer.json's "model" object (type BPE); throws dattn::Error naming a bad field.
  static BpeModel parse(const Json& spec, std::string_view path);

  // Appends the ids of one pre-tokenized word. Thread-safe (no shared mutable state).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  const TokenMap& vocab() const { return vocab_; }

 private:
  struct MergeResult {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void parse_merges(const Json& merges, std::string_view path);
  // Applies the merges to the symbols of one word, lowest rank first (leftmost on ties).
  void merge_symbols(std::vector<int32_t>& symbols) const;

  TokenMap vocab_;
  std::unordered_map<uint64_t, MergeResult> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>" per byte, -1 when absent
};

}  // namespace dattn::tokenizer_detail
