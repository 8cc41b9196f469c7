// Next-token choice from logits: greedy, or temperature + top-k + top-p sampling with a seeded generator.
#pragma once
#include <cstdint>
#include <random>
#include <span>

namespace dattn::model {

// Temperatures below this decode greedily: logits / T would overflow for subnormal T, and at 1e-3 a
// logit gap of 0.02 already gives odds of e^20, i.e. argmax.
inline constexpr double kGreedyBelowTemperature = 1e-3;

struct SamplingParams {
  double temperature = 0.0;  // below kGreedyBelowTemperature (0 included): greedy (argmax)
  int64_t top_k = 0;         // 0: no top-k cut
  double top_p = 1.0;        // 1: no nucleus cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams params);  // throws dattn::Error on invalid values
  // The chosen token id. Ties in greedy mode go to the lowest id.
  int32_t sample(std::span<const float> logits);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  double uniform();  // [0, 1), the same sequence on every platform for a seed
};

int32_t argmax(std::span<const float> logits);

}  // namespace dattn::model
