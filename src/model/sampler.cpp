// Sampling follows the usual order of transformers' logits warpers: temperature, top-k, then top-p.
// A choice costs a few passes over the vocabulary, never a sort of it: the server makes one per running
// sequence and step, and sorting a 128K vocabulary (what a plain top-p does) took ~19 ms of one core, so
// 32 sampled streams spent 0.6 s a step in it (bench/sampling).
#include "dattn/model/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "dattn/core/error.h"

namespace dattn::model {

namespace {

constexpr size_t kBlock = 256;  // weights summed per block, so that the draw skips whole blocks

// The largest logit; NaN never wins, as in a scan with '>'. (omp simd: GCC vectorises a max reduction
// only when told that the order does not matter.)
float max_logit_of(std::span<const float> logits) {
  float best = -std::numeric_limits<float>::infinity();
  const float* l = logits.data();
#pragma omp simd reduction(max : best)
  for (size_t i = 0; i < logits.size(); ++i) best = l[i] > best ? l[i] : best;
  return best;
}

// The largest logit; a NaN fails with its index.
float checked_max(std::span<const float> logits) {
  const float* l = logits.data();
  int nan = 0;
#pragma omp simd reduction(| : nan)
  for (size_t i = 0; i < logits.size(); ++i) nan |= l[i] != l[i];
  if (nan) {
    const auto bad = std::find_if(logits.begin(), logits.end(), [](float l) { return std::isnan(l); });
    fail("logit {} is NaN: the model produced invalid values", bad - logits.begin());
  }
  return max_logit_of(logits);
}

size_t first_index_of(std::span<const float> logits, float value) {
  const auto it = std::find(logits.begin(), logits.end(), value);
  return it == logits.end() ? 0 : size_t(it - logits.begin());
}

// e^x for x <= 0 in fp32: 2^(x log2 e) as 2^whole (the exponent bits) times a degree-7 Taylor series of
// 2^f, |f| <= 0.5; exactly 0 below 2^-126, the smallest normal. Relative error (against double exp, steps
// of 1e-4): < 1e-6 on [-20, 0], < 4e-6 down to -87, mostly from rounding x log2 e to fp32. Plain arithmetic
// on purpose: GCC vectorises the loop that calls it, where std::exp stays a libm call per element.
inline float exp_nonpositive(float x) {
  const float y = x * 1.44269504088896341f;
  const bool in_range = y >= -126.0f;
  const float clamped = in_range ? y : -126.0f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  const float whole = (clamped + kRound) - kRound;
  const float f = clamped - whole;
  float p = 1.5252733804059840e-05f;
  p = p * f + 1.5403530393381606e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.6181291076284770e-03f;
  p = p * f + 5.5504108664821580e-02f;
  p = p * f + 2.4022650695910071e-01f;
  p = p * f + 6.9314718055994531e-01f;
  p = p * f + 1.0f;
  const float scaled = std::bit_cast<float>(std::bit_cast<int32_t>(p) + (int32_t(whole) << 23));
  return in_range ? scaled : 0.0f;
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
  const float inv_t = float(1.0 / temperature);
  float* w = s.weights.data();
  const float* l = logits.data();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) w[i] = exp_nonpositive((l[i] - max_logit) * inv_t);
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

}  // namespace

int32_t argmax(std::span<const float> logits) {
  DATTN_CHECK(!logits.empty(), "argmax of empty logits");
  return int32_t(first_index_of(logits, max_logit_of(logits)));
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
  c.clear();
  double kept = 0;  // the weight top-p is a share of: all tokens', or the k best's
  if (top_k_cuts) {
    // the k best logits (a heap whose front is the lightest kept: most tokens fail one comparison), as
    // weights; top-p then cuts within them
    const size_t k = size_t(params_.top_k);
    float lightest_kept = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < vocab; ++i) {
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
    const float inv_t = float(1.0 / params_.temperature);
    for (auto& [w, id] : c) {
      w = exp_nonpositive((w - max_logit) * inv_t);
      kept += w;
    }
  } else {
    const double total = softmax_weights(logits, max_logit, params_.temperature, s);
    kept = total;
    // Tokens lighter than (1 - top_p) total / vocab are never in the nucleus: together they weigh less
    // than the (1 - top_p) total that the nucleus leaves out, and they are the lightest.
    const float floor = float((1 - params_.top_p) * total / double(vocab));
    for (size_t i = 0; i < vocab; ++i)
      if (s.weights[i] >= floor) c.emplace_back(s.weights[i], int32_t(i));
  }
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
