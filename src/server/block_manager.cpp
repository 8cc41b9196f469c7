#include "block_manager.h"

#include <algorithm>

#include "dattn/core/error.h"

namespace dattn::server {

BlockManager::BlockManager(int64_t num_blocks, int64_t block_tokens)
    : block_tokens_(block_tokens),
      refs_(size_t(num_blocks), 0),
      cached_(size_t(num_blocks)),
      evictable_at_(size_t(num_blocks), evictable_.end()) {
  DATTN_CHECK(num_blocks >= 1 && block_tokens >= 1, "block manager: {} blocks of {} tokens", num_blocks, block_tokens);
  free_.reserve(size_t(num_blocks));
  // a stack handing out low ids first: consecutive blocks let a sequence's K/V be read without a gather
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));
}

std::optional<std::vector<int32_t>> BlockManager::allocate(int64_t n) {
  if (n > available()) return std::nullopt;
  std::vector<int32_t> blocks;
  blocks.reserve(size_t(n));
  while (int64_t(blocks.size()) < n) {
    int32_t b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else {
      b = evictable_.front();
      forget(b);
    }
    refs_[size_t(b)] = 1;
    ++used_;
    blocks.push_back(b);
  }
  return blocks;
}

void BlockManager::release(std::span<const int32_t> blocks) {
  for (int32_t b : blocks) {
    DATTN_CHECK(refs_[size_t(b)] > 0, "block manager: block {} released without a reference", b);
    if (--refs_[size_t(b)] > 0) continue;
    --used_;
    if (cached_[size_t(b)]) {
      evictable_.push_back(b);
      evictable_at_[size_t(b)] = std::prev(evictable_.end());
    } else {
      free_.push_back(b);
    }
  }
}

void BlockManager::forget(int32_t b) {
  if (evictable_at_[size_t(b)] != evictable_.end()) {
    evictable_.erase(evictable_at_[size_t(b)]);
    evictable_at_[size_t(b)] = evictable_.end();
  }
  if (cached_[size_t(b)]) {
    auto it = by_hash_.find(cached_[size_t(b)]->hash);
    if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
    cached_[size_t(b)].reset();
  }
}

uint64_t BlockManager::chain_hash(uint64_t parent, uint64_t settings, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash, the settings and the token ids; acquire_cached compares the tokens too
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      h ^= (value >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(parent);
  mix(settings);
  for (int32_t t : tokens) mix(uint64_t(uint32_t(t)));
  return h;
}

std::optional<int32_t> BlockManager::acquire_cached(uint64_t hash, std::span<const int32_t> tokens) {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const int32_t b = it->second;
  const Cached& c = *cached_[size_t(b)];
  if (!std::equal(c.tokens.begin(), c.tokens.end(), tokens.begin(), tokens.end())) return std::nullopt;
  if (refs_[size_t(b)]++ == 0) {
    ++used_;
    evictable_.erase(evictable_at_[size_t(b)]);
    evictable_at_[size_t(b)] = evictable_.end();
  }
  return b;
}

void BlockManager::publish(int32_t block, uint64_t hash, std::span<const int32_t> tokens) {
  DATTN_CHECK(int64_t(tokens.size()) == block_tokens_, "block manager: publishing {} tokens, blocks hold {}",
              tokens.size(), block_tokens_);
  if (by_hash_.count(hash) || cached_[size_t(block)]) return;
  cached_[size_t(block)] = Cached{hash, std::vector<int32_t>(tokens.begin(), tokens.end())};
  by_hash_[hash] = block;
}

}  // namespace dattn::server
