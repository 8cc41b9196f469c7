#include "synthetic.h"

#include <cmath>
#include <random>
#include <vector>

namespace dattn::cli {

SyntheticInputs make_structured_inputs(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim, uint64_t seed) {
  SyntheticInputs in{Tensor({1, n, heads, head_dim}, DType::f32), Tensor({1, n, kv_heads, head_dim}, DType::f32),
                     Tensor({1, n, kv_heads, head_dim}, DType::f32)};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t d = head_dim;
  const int64_t rotary = d / 2;        // dims [0, rotary) carry position
  const int64_t sink_dim = rotary;     // one dim that marks sink keys
  const int64_t needle_dims = d - rotary - 1;  // one dim per needle topic
  const int64_t num_sinks = 4;
  const int64_t num_needles = std::max<int64_t>(1, needle_dims);
  auto qv = in.q.view(), kv = in.k.view(), vv = in.v.view();
  // cos/sin pairs of slowly varying frequencies, so q_i . k_j ~ sum_f cos(w_f (i - j)): nearby keys score higher
  auto positional = [rotary](int64_t c, int64_t position) {
    double freq = std::pow(1.0 / 2048.0, double(c / 2) / double(rotary / 2));
    return float((c % 2 ? std::sin(freq * double(position)) : std::cos(freq * double(position))) * 0.4);
  };

  // Needle positions: spread over the first half of the context, far from the later queries.
  std::vector<int64_t> needle_position(static_cast<size_t>(num_needles));
  for (int64_t m = 0; m < num_needles; ++m) needle_position[size_t(m)] = num_sinks + (m * (n / 2)) / num_needles + 7;

  // Values: a shared mean plus a slowly varying component (AR(1) along the sequence), as hidden
  // states of neighbouring tokens are correlated; this is what makes the sparse/dense shift smooth.
  std::vector<float> value_mean(static_cast<size_t>(d)), value_state(static_cast<size_t>(kv_heads * d));
  for (float& x : value_mean) x = normal(rng);
  for (float& x : value_state) x = normal(rng);
  const float persistence = 0.95f, innovation = std::sqrt(1.0f - persistence * persistence);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t h = 0; h < kv_heads; ++h) {
      for (int64_t c = 0; c < d; ++c) {
        float value = 0.3f * normal(rng);
        if (c < rotary) value += positional(c, j);
        kv.set(0, j, h, c, value);
        float& state = value_state[size_t(h * d + c)];
        state = persistence * state + innovation * normal(rng);
        vv.set(0, j, h, c, value_mean[size_t(c)] + state);
      }
      if (j < num_sinks) kv.set(0, j, h, sink_dim, 6.0f);
    }
  }
  for (int64_t m = 0; m < num_needles; ++m) {
    int64_t j = needle_position[size_t(m)];
    if (j >= n) continue;
    for (int64_t h = 0; h < kv_heads; ++h) {
      kv.set(0, j, h, rotary + 1 + m, 9.0f);
      for (int64_t c = 0; c < d; ++c) vv.set(0, j, h, c, 3.0f * (((c + m) % 3) - 1.0f));
    }
  }
  // Queries: positional part, the sink direction, and a needle topic that changes every 256 rows.
  for (int64_t i = 0; i < n; ++i) {
    int64_t topic = (i / 256 * 7919) % num_needles;
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t c = 0; c < d; ++c) {
        float value = 0.3f * normal(rng);
        if (c < rotary) value += positional(c, i);
        qv.set(0, i, h, c, value);
      }
      qv.set(0, i, h, sink_dim, 1.0f);
      if (needle_position[size_t(topic)] < i) qv.set(0, i, h, rotary + 1 + topic, 1.2f + 0.1f * float(h));
    }
  }
  return in;
}

}  // namespace dattn::cli
