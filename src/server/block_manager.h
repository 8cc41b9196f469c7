// Bookkeeping of the paged KV pool: which blocks are free, how many sequences hold each block, and the
// prefix cache (full blocks of prompt tokens found again by the hash of everything before and in them).
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace dattn::server {

class BlockManager {
 public:
  BlockManager(int64_t num_blocks, int64_t block_tokens);

  int64_t total() const { return int64_t(refs_.size()); }
  int64_t used() const { return used_; }  // blocks held by at least one sequence
  int64_t available() const { return total() - used_; }  // free, or cached and evictable

  // n blocks with one reference each: free ones first, then the least recently released cached ones.
  // nullopt (and nothing taken) when fewer than n are available.
  std::optional<std::vector<int32_t>> allocate(int64_t n);
  // Drops one reference of each block; a block left without references stays in the prefix cache (if it
  // was published) until allocate needs it.
  void release(std::span<const int32_t> blocks);

  // The hash that names a full block: its tokens, everything before it (parent) and the attention
  // settings its K/V were computed with.
  static uint64_t chain_hash(uint64_t parent, uint64_t settings, std::span<const int32_t> tokens);
  // The cached block with this hash and these tokens, with a reference taken; nullopt when not cached.
  std::optional<int32_t> acquire_cached(uint64_t hash, std::span<const int32_t> tokens);
  // Makes a full block (held by the caller) findable by acquire_cached. A hash already published keeps
  // its first block.
  void publish(int32_t block, uint64_t hash, std::span<const int32_t> tokens);

 private:
  struct Cached {
    uint64_t hash;
    std::vector<int32_t> tokens;
  };
  int64_t block_tokens_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // never-cached blocks with no reference (a stack)
  std::vector<std::optional<Cached>> cached_;  // per block, when published
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::list<int32_t> evictable_;  // published blocks with no reference, oldest first
  std::vector<std::list<int32_t>::iterator> evictable_at_;
  int64_t used_ = 0;

  void forget(int32_t block);  // drops a block from the prefix cache
};

}  // namespace dattn::server
