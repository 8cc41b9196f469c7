#include "dattn/eval/rng.h"

#include <unordered_set>

#include "dattn/core/error.h"

namespace dattn::eval {

uint64_t DeterministicRng::next_u64() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t DeterministicRng::below(uint64_t n) {
  DATTN_CHECK(n > 0, "random draw below 0");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the incomplete last bucket
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

int64_t DeterministicRng::between(int64_t lo, int64_t hi) {
  DATTN_CHECK(lo <= hi, "random range [{}, {}] is empty", lo, hi);
  return lo + int64_t(below(uint64_t(hi - lo) + 1));
}

std::vector<int64_t> DeterministicRng::sample_indices(int64_t n, int64_t k) {
  DATTN_CHECK(k >= 0 && k <= n, "cannot sample {} distinct values out of {}", k, n);
  std::vector<int64_t> picked;
  picked.reserve(size_t(k));
  if (k * 4 >= n) {  // dense: partial Fisher-Yates over the whole range
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
    for (int64_t i = 0; i < k; ++i) {
      std::swap(all[size_t(i)], all[size_t(i + int64_t(below(uint64_t(n - i))))]);
      picked.push_back(all[size_t(i)]);
    }
    return picked;
  }
  std::unordered_set<int64_t> seen;  // sparse: redraw on collision
  while (int64_t(picked.size()) < k) {
    const int64_t v = int64_t(below(uint64_t(n)));
    if (seen.insert(v).second) picked.push_back(v);
  }
  return picked;
}

uint64_t mix_seed(std::initializer_list<uint64_t> parts) {
  DeterministicRng mixer(0x5EEDull);
  uint64_t h = 0;
  for (uint64_t p : parts) {
    DeterministicRng r(h ^ p);
    h = r.next_u64() ^ mixer.next_u64();
  }
  return h;
}

}  // namespace dattn::eval
