// A small seeded generator whose sequence is the same on every platform and standard library
// (std::uniform_int_distribution is not), so a task sample is a pure function of its seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace dattn::eval {

class DeterministicRng {
 public:
  explicit DeterministicRng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();                        // SplitMix64
  uint64_t below(uint64_t n);                 // uniform in [0, n), n > 0, unbiased (rejection)
  int64_t between(int64_t lo, int64_t hi);    // uniform in [lo, hi], inclusive
  template <typename T>
  void shuffle(std::vector<T>& items) {      // Fisher-Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[size_t(below(i))]);
  }
  // k distinct indices of [0, n), in the order drawn (like Python's random.sample of a range).
  std::vector<int64_t> sample_indices(int64_t n, int64_t k);

 private:
  uint64_t state_;
};

// Mixes several values into one seed (task, length, sample index, user seed).
uint64_t mix_seed(std::initializer_list<uint64_t> parts);

}  // namespace dattn::eval
