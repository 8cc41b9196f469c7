// Sampling follows the usual order of transformers' logits warpers: temperature, top-k, then top-p.
// A choice costs a few passes over the vocabulary, never a sort of it: the server makes one per running
// sequence and step, and sorting a 128K vocabulary (what a plain top-p does) took ~19 ms of one core, so
// 32 sampled streams spent 0.6 s a step in it (bench/sampling).
#include "dattn/model/sampler.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu/simd.h"  // the attention kernels' exp2_ps: one vector exp in the project
#include "dattn/core/error.h"

namespace dattn::model {

namespace {

constexpr size_t kBlock = 256;  // weights summed per block, so that the draw skips whole blocks

// The largest logit (NaN never wins, as in a scan with '>') and whether there is a NaN, in one pass.
// (omp simd: GCC vectorises these reductions only when told that their order does not matter.)
std::pair<float, bool> max_and_nan(std::span<const float> logits) {
  float best = -std::numeric_limits<float>::infinity();
  int nan = 0;
  const float* l = logits.data();
#pragma omp simd reduction(max : best) reduction(| : nan)
  for (size_t i = 0; i < logits.size(); ++i) {
    best = l[i] > best ? l[i] : best;
    nan |= l[i] != l[i];
  }
  return {best, nan != 0};
}

// The largest logit; a NaN fails with its index.
float checked_max(std::span<const float> logits) {
  const auto [best, nan] = max_and_nan(logits);
  if (nan) {
    const auto bad = std::find_if(logits.begin(), logits.end(), [](float l) { return std::isnan(l); });
    fail("logit {} is NaN: the model produced invalid values", bad - logits.begin());
  }
  return best;
}

size_t first_index_of(std::span<const float> logits, float value) {
  const auto it = std::find(logits.begin(), logits.end(), value);
  return it == logits.end() ? 0 : size_t(it - logits.begin());
}

// Per-thread scratch: a sampler belongs to one sequence, and a vocabulary-sized buffer per sequence would
// cost half a megabyte each on a server holding hundreds.
struct Scratch {
  std::vector<float> weights;
  std::vector<double> block_sums;
  std::vector<std::pair<float, int32_t>> candidates;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// weights[i] = e^((logits[i] - max) / T); block sums and the total in double.
double softmax_weights(std::span<const float> logits, float max_logit, double temperature, Scratch& s) {
  const size_t n = logits.size();
  s.weights.resize(n);
  s.block_sums.resize((n + kBlock - 1) / kBlock);
  // e^x = 2^(x log2 e); -inf logits (and weights below 2^-125) give exactly 0
  const __m256 scale = _mm256_set1_ps(float(1.4426950408889634 / temperature)), max = _mm256_set1_ps(max_logit);
  float* w = s.weights.data();
  const float* l = logits.data();
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(w + i, cpu::exp2_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(l + i), max), scale)));
  if (i < n) {  // the last few through an -inf-padded vector
    alignas(32) float tail[8];
    std::fill(tail, tail + 8, -std::numeric_limits<float>::infinity());
    std::copy(l + i, l + n, tail);
    _mm256_store_ps(tail, cpu::exp2_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(tail), max), scale)));
    std::copy(tail, tail + (n - i), w + i);
  }
  double total = 0;
  for (size_t b = 0; b < s.block_sums.size(); ++b) {
    float sum = 0;  // 256 terms in [0, 1]: fp32 loses ~1e-5 of a block's mass, far below sampling noise
    for (size_t i = b * kBlock, end = std::min(n, i + kBlock); i < end; ++i) sum += w[i];
    s.block_sums[b] = sum;
    total += sum;
  }
  return total;
}

// The token whose cumulative weight (in index order) first exceeds target. Rounding (block sums in fp32,
// the walk in fp64) can leave a sliver at the end of a block: it goes to the block's last token of
// non-zero weight, or the vocabulary's when the target lies past every block.
int32_t draw_in_index_order(const Scratch& s, double target) {
  const size_t n = s.weights.size();
  size_t b = 0;
  for (; b + 1 < s.block_sums.size() && target >= s.block_sums[b]; ++b) target -= s.block_sums[b];
  int64_t last_weighted = -1;
  for (size_t i = b * kBlock, end = std::min(n, i + kBlock); i < end; ++i) {
    if (s.weights[i] > 0) last_weighted = int64_t(i);
    target -= s.weights[i];
    if (target < 0) return int32_t(i);
  }
  if (last_weighted >= 0) return int32_t(last_weighted);
  for (size_t i = n; i-- > 0;)
    if (s.weights[i] > 0) return int32_t(i);
  return 0;
}

// Higher weight first, then lower id: the order the nucleus is defined in.
bool heavier(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Reorders c so that c[0, k) is the smallest prefix, in heavier() order, whose weight reaches target (all
// of c if none does); returns k and its weight. Quickselect on mass: expected O(n), no full sort.
std::pair<size_t, double> nucleus(std::vector<std::pair<float, int32_t>>& c, double target) {
  size_t lo = 0, hi = c.size();
  double before = 0;  // weight of c[0, lo): taken
  while (hi - lo > 64) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(c.begin() + std::ptrdiff_t(lo), c.begin() + std::ptrdiff_t(mid), c.begin() + std::ptrdiff_t(hi),
                     heavier);
    double half = 0;
    for (size_t i = lo; i < mid; ++i) half += c[i].first;
    if (before + half >= target) {
      hi = mid;
    } else {
      before += half;
      lo = mid;
    }
  }
  std::sort(c.begin() + std::ptrdiff_t(lo), c.begin() + std::ptrdiff_t(hi), heavier);
  while (lo < hi) {
    before += c[lo++].first;
    if (before >= target) break;
  }
  return {lo, before};
}

// c = the k best logits as (weight, id): a heap whose front is the lightest kept, so most tokens fail one
// comparison. Returns their total weight (std::exp: k is small).
double top_k_weights(std::span<const float> logits, float max_logit, size_t k, double temperature,
                     std::vector<std::pair<float, int32_t>>& c) {
  c.clear();
  float lightest_kept = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] < lightest_kept) continue;  // the common case once the heap is full
    const std::pair<float, int32_t> token{logits[i], int32_t(i)};
    if (c.size() < k) {
      c.push_back(token);
      std::push_heap(c.begin(), c.end(), heavier);
      if (c.size() == k) lightest_kept = c.front().first;
    } else if (heavier(token, c.front())) {
      std::pop_heap(c.begin(), c.end(), heavier);
      c.back() = token;
      std::push_heap(c.begin(), c.end(), heavier);
      lightest_kept = c.front().first;
    }
  }
  double total = 0;
  for (auto& [w, id] : c) {
    w = float(std::exp(double(w - max_logit) / temperature));
    total += w;
  }
  return total;
}

// s.candidates = the tokens that can be in a top_p nucleus, as (weight, id); returns the weight of all
// tokens. Tokens lighter than (1 - top_p) total / vocab are never in it: together they weigh less than the
// (1 - top_p) total that the nucleus leaves out, and they are the lightest.
double nucleus_candidates(std::span<const float> logits, float max_logit, double temperature, double top_p,
                          Scratch& s) {
  const double total = softmax_weights(logits, max_logit, temperature, s);
  const float floor = float((1 - top_p) * total / double(logits.size()));
  s.candidates.clear();
  for (size_t i = 0; i < logits.size(); ++i)
    if (s.weights[i] >= floor) s.candidates.emplace_back(s.weights[i], int32_t(i));
  return total;
}

}  // namespace

int32_t argmax(std::span<const float> logits) {
  DATTN_CHECK(!logits.empty(), "argmax of empty logits");
  return int32_t(first_index_of(logits, max_and_nan(logits).first));
}

Sampler::Sampler(SamplingParams params) : params_(params), rng_(params.seed) {
  DATTN_CHECK(std::isfinite(params.temperature) && params.temperature >= 0, "temperature must be >= 0, got {}",
              params.temperature);
  DATTN_CHECK(params.top_k >= 0, "top-k must be >= 0 (0 = off), got {}", params.top_k);
  DATTN_CHECK(params.top_p > 0 && params.top_p <= 1, "top-p must be in (0, 1], got {}", params.top_p);
}

double Sampler::uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits) {
  DATTN_CHECK(!logits.empty(), "cannot sample from empty logits");
  const float max_logit = checked_max(logits);
  // an infinite maximum leaves no finite softmax: +inf takes all the mass, all -inf gives no preference
  if (params_.temperature < kGreedyBelowTemperature || std::isinf(max_logit))
    return int32_t(first_index_of(logits, max_logit));

  Scratch& s = scratch();
  const size_t vocab = logits.size();
  const bool top_k_cuts = params_.top_k > 0 && size_t(params_.top_k) < vocab;
  if (!top_k_cuts && params_.top_p >= 1) {  // the plain softmax: no order needed
    const double total = softmax_weights(logits, max_logit, params_.temperature, s);
    return draw_in_index_order(s, uniform() * total);
  }

  auto& c = s.candidates;
  // the weight top-p is a share of: the k best tokens', or all tokens'
  double kept = top_k_cuts ? top_k_weights(logits, max_logit, size_t(params_.top_k), params_.temperature, c)
                           : nucleus_candidates(logits, max_logit, params_.temperature, params_.top_p, s);
  size_t size = c.size();
  if (params_.top_p < 1) std::tie(size, kept) = nucleus(c, params_.top_p * kept);
  double target = uniform() * kept;
  for (size_t i = 0; i < size; ++i) {
    target -= c[i].first;
    if (target < 0) return c[i].second;
  }
  return c[size - 1].second;  // rounding left a sliver: the last kept token
}

}  // namespace dattn::model
