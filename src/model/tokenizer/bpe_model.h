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

// Open-addressing map from a token pair to its merge, much faster than std::unordered_map in the
// merge loop, which does a lookup for every adjacent pair.
class PairMergeMap {
 public:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void reserve(size_t count);
  void insert_or_assign(uint64_t key, Merge merge);
  const Merge* find(uint64_t key) const {
    if (keys_.empty()) return nullptr;
    for (size_t slot = hash(key);; slot = (slot + 1) & mask_) {
      if (keys_[slot] == key) return &values_[slot];
      if (keys_[slot] == kEmpty) return nullptr;
    }
  }
  bool empty() const { return size_ == 0; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of valid ids (< 2^24) has this key
  size_t hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

class BpeModel {
 public:
  // Parses tokenizer.json's "model" object (type BPE); throws dattn::Error naming a bad field.
  static BpeModel parse(const Json& spec, std::string_view path);

  // Appends the ids of one pre-tokenized word. Thread-safe (no shared mutable state).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  const TokenMap& vocab() const { return vocab_; }

 private:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void parse_merges(const Json& merges, std::string_view path);
  // Applies the merges to the symbols of one word, lowest rank first (leftmost on ties).
  void merge_symbols(std::vector<int32_t>& symbols) const;

  TokenMap vocab_;
  PairMergeMap merges_;
  std::array<int32_t, 128> ascii_ids_{};  // id of each one-byte character, -1 when absent
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>" per byte, -1 when absent
};

}  // namespace dattn::tokenizer_detail
