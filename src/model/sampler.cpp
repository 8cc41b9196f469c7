// Sampling follows the usual order of transformers' logits warpers: temperature, top-k, then top-p.
#include "dattn/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "dattn/core/error.h"

namespace dattn::model {

int32_t argmax(std::span<const float> logits) {
  DATTN_CHECK(!logits.empty(), "argmax of empty logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
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
  for (size_t i = 0; i < logits.size(); ++i)
    DATTN_CHECK(!std::isnan(logits[i]), "logit {} is NaN: the model produced invalid values", i);
  if (params_.temperature < kGreedyBelowTemperature) return argmax(logits);

  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  auto higher = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  size_t keep = order.size();
  if (params_.top_k > 0 && size_t(params_.top_k) < keep) keep = size_t(params_.top_k);
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(), higher);
  order.resize(keep);

  const double max_logit = double(logits[size_t(order[0])]) / params_.temperature;
  std::vector<double> weights(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp(double(logits[size_t(order[i])]) / params_.temperature - max_logit);
    total += weights[i];
  }
  if (params_.top_p < 1) {
    // smallest prefix (highest probabilities first) whose mass reaches top_p; at least one token
    double mass = 0;
    size_t cut = 0;
    while (cut < keep) {
      mass += weights[cut++];
      if (mass >= params_.top_p * total) break;
    }
    weights.resize(cut);
    total = mass;
  }
  double target = uniform() * total;
  for (size_t i = 0; i < weights.size(); ++i) {
    target -= weights[i];
    if (target < 0) return order[i];
  }
  return order[weights.size() - 1];  // rounding left a sliver: the last kept token
}

}  // namespace dattn::model
