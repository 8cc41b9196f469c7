#include "bpe_model.h"

#include <algorithm>
#include <bit>
#include <queue>
#include <utility>

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

struct QueuedMerge {
  int32_t rank;
  int32_t position;
  int32_t left, right;  // the pair when queued; the entry is stale once either side changed
  // std::priority_queue pops the largest; make the lowest rank, then the leftmost position, largest.
  bool operator<(const QueuedMerge& other) const {
    if (rank != other.rank) return rank > other.rank;
    return position > other.position;
  }
};

std::pair<std::string, std::string> merge_parts(const Json& entry, std::string_view path) {
  if (entry.is_string()) {
    // The older "left right" form; tokens cannot contain spaces in this form.
    const std::string text = entry.get<std::string>();
    const size_t space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
      fail("tokenizer: {} = '{}' must be two tokens separated by one space", path, text);
    }
    return {text.substr(0, space), text.substr(space + 1)};
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    return {entry[0].get<std::string>(), entry[1].get<std::string>()};
  }
  fail("tokenizer: {} must be \"left right\" or [left, right], got {}", path, json_excerpt(entry));
}

}  // namespace

void PairMergeMap::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
}

void PairMergeMap::insert_or_assign(uint64_t key, Merge merge) {
  for (size_t slot = hash(key);; slot = (slot + 1) & mask_) {
    if (keys_[slot] == kEmpty) {
      keys_[slot] = key;
      ++size_;
    }
    if (keys_[slot] == key) {
      values_[slot] = merge;
      return;
    }
  }
}

BpeModel BpeModel::parse(const Json& spec, std::string_view path) {
  require_object(spec, path);
  if (const std::optional<std::string> type = optional_string(spec, "type", path); type && *type != "BPE") {
    fail("tokenizer: unsupported model type '{}' at {} (supported: BPE)", *type, join_path(path, "type"));
  }
  BpeModel model;
  const std::string vocab_path = join_path(path, "vocab");
  const Json& vocab = require_field(spec, "vocab", path);
  require_object(vocab, vocab_path);
  model.vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    const int32_t id = as_token_id(id_json, vocab_path + "[\"" + token + "\"]");
    model.vocab_.emplace(token, id);
  }

  if (const Json* dropout = optional_field(spec, "dropout", path)) {
    if (!dropout->is_number()) fail("tokenizer: {}.dropout must be a number, got {}", path, json_excerpt(*dropout));
    if (dropout->get<double>() != 0.0) fail("tokenizer: {}.dropout = {} is not supported (only null or 0)", path, json_excerpt(*dropout));
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::optional<std::string> value = optional_string(spec, field, path);
    if (value && !value->empty()) fail("tokenizer: {} = '{}' is not supported", join_path(path, field), *value);
  }
  if (const std::optional<std::string> unk = optional_string(spec, "unk_token", path)) {
    const auto it = model.vocab_.find(*unk);
    if (it == model.vocab_.end()) fail("tokenizer: {}.unk_token '{}' is not in the vocabulary", path, *unk);
    model.unk_id_ = it->second;
  }
  model.fuse_unk_ = bool_or(spec, "fuse_unk", path, false);
  model.byte_fallback_ = bool_or(spec, "byte_fallback", path, false);
  model.ignore_merges_ = bool_or(spec, "ignore_merges", path, false);
  for (int c = 0; c < 128; ++c) {
    const auto it = model.vocab_.find(std::string(1, static_cast<char>(c)));
    model.ascii_ids_[c] = it == model.vocab_.end() ? -1 : it->second;
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = model.vocab_.find(fmt::format("<0x{:02X}>", b));
    model.byte_ids_[b] = it == model.vocab_.end() ? -1 : it->second;
  }
  model.parse_merges(require_field(spec, "merges", path), join_path(path, "merges"));
  return model;
}

void BpeModel::parse_merges(const Json& merges, std::string_view path) {
  require_array(merges, path);
  if (merges.size() > static_cast<size_t>(kMaxTokenId)) fail("tokenizer: {} has too many entries ({})", path, merges.size());
  merges_.reserve(merges.size());  // the map never holds more than the list
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string entry_path = std::string(path) + "[" + std::to_string(rank) + "]";
    const auto [left, right] = merge_parts(merges[rank], entry_path);
    const auto find_token = [&](const std::string& token) {
      const auto it = vocab_.find(token);
      if (it == vocab_.end()) fail("tokenizer: {} names '{}', which is not in the vocabulary", entry_path, token);
      return it->second;
    };
    const int32_t left_id = find_token(left), right_id = find_token(right), new_id = find_token(left + right);
    // A repeated pair keeps its last rank, as a Rust HashMap built from the list does.
    merges_.insert_or_assign(pair_key(left_id, right_id), {static_cast<int32_t>(rank), new_id});
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  std::optional<int32_t> pending_unk;  // an unknown run not yet emitted (fused when fuse_unk)
  for (size_t pos = 0; pos < word.size();) {
    const size_t length = utf8_char_length(word, pos);
    const std::string_view character = word.substr(pos, length);
    pos += length;
    int32_t known_id = -1;
    if (length == 1) {
      known_id = ascii_ids_[static_cast<uint8_t>(character[0])];
    } else if (const auto it = vocab_.find(character); it != vocab_.end()) {
      known_id = it->second;
    }
    if (known_id >= 0) {
      if (pending_unk) symbols.push_back(*std::exchange(pending_unk, std::nullopt));
      symbols.push_back(known_id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes_known = true;
      for (const char c : character) all_bytes_known = all_bytes_known && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes_known) {
        // As in `tokenizers`, a pending unknown run is emitted only before the next known character.
        for (const char c : character) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !fuse_unk_) symbols.push_back(*pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk) symbols.push_back(*pending_unk);
  merge_symbols(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbols) const {
  const int32_t count = static_cast<int32_t>(symbols.size());
  if (count < 2 || merges_.empty()) return;
  // A doubly linked list over the symbols; merged-away symbols are marked dead (-1).
  std::vector<int32_t> previous(count), next(count);
  for (int32_t i = 0; i < count; ++i) {
    previous[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }
  std::priority_queue<QueuedMerge> queue;
  const auto enqueue = [&](int32_t position) {
    if (position < 0 || next[position] < 0) return;
    const int32_t left = symbols[position], right = symbols[next[position]];
    if (const PairMergeMap::Merge* merge = merges_.find(pair_key(left, right))) {
      queue.push({merge->rank, position, left, right});
    }
  };
  for (int32_t i = 0; i + 1 < count; ++i) enqueue(i);
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    const int32_t right = next[top.position];
    // Skip entries made stale by an earlier merge of either neighbour.
    if (right < 0 || symbols[top.position] != top.left || symbols[right] != top.right) continue;
    symbols[top.position] = merges_.find(pair_key(top.left, top.right))->new_id;
    symbols[right] = -1;
    next[top.position] = next[right];
    if (next[right] >= 0) previous[next[right]] = top.position;
    enqueue(previous[top.position]);
    enqueue(top.position);
  }
  symbols.erase(std::remove(symbols.begin(), symbols.end(), -1), symbols.end());
}

}  // namespace dattn::tokenizer_detail
