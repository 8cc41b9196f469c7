// One next-token choice (Sampler::sample) over logits shaped like a model's: Llama 3's 128256-token and
// Qwen's 151936-token vocabularies, logits drawn N(0, 2.5^2) with a few peaked tokens. The engine makes
// one such choice per running sequence and step, on its own thread.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "dattn/model/sampler.h"

namespace {

std::vector<float> model_like_logits(size_t vocab) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 2.5f);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  for (size_t i = 0; i < 8; ++i) logits[(i * 7919) % vocab] = 18.0f - float(i);  // a confident head
  return logits;
}

void run(benchmark::State& state, dattn::model::SamplingParams params) {
  const std::vector<float> logits = model_like_logits(size_t(state.range(0)));
  dattn::model::Sampler sampler(params);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits));
}

void greedy(benchmark::State& s) { run(s, {}); }
void temperature_only(benchmark::State& s) { run(s, {.temperature = 1.0, .seed = 1}); }
void top_p_095(benchmark::State& s) { run(s, {.temperature = 1.0, .top_p = 0.95, .seed = 1}); }
void top_k_50(benchmark::State& s) { run(s, {.temperature = 0.8, .top_k = 50, .top_p = 0.9, .seed = 1}); }

}  // namespace

BENCHMARK(greedy)->Arg(128256)->Arg(151936)->Unit(benchmark::kMicrosecond);
BENCHMARK(temperature_only)->Arg(128256)->Arg(151936)->Unit(benchmark::kMicrosecond);
BENCHMARK(top_p_095)->Arg(128256)->Arg(151936)->Unit(benchmark::kMicrosecond);
BENCHMARK(top_k_50)->Arg(128256)->Arg(151936)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
