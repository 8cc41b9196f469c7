// One decode step's projections of SmolLM2-135M (30 layers of q, k, v, o, gate, up, down and the 49152 x 576
// lm_head: 537 MB of fp32 weights, more than any cache, so every step streams them from memory) for a batch
// of `rows` tokens, on one thread: OpenBLAS sgemm (what every batch used before) against
// small_batch_linear. Random weights; the numbers depend only on the shapes.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>
#include <vector>

#include "small_batch_linear.h"

namespace {

struct Shape {
  int64_t features, k;
};

struct Weights {
  std::vector<Shape> shapes;
  std::vector<std::vector<float>> matrices;
  double bytes = 0;
  Weights() {
    const Shape layer[] = {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}};
    for (int l = 0; l < 30; ++l) shapes.insert(shapes.end(), std::begin(layer), std::end(layer));
    shapes.push_back({49152, 576});
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    for (const Shape& s : shapes) {
      matrices.emplace_back(size_t(s.features * s.k));
      bytes += 4.0 * double(s.features * s.k);
      for (float& v : matrices.back()) v = normal(rng);
    }
  }
};

const Weights& weights() {
  static const Weights w;
  return w;
}

template <bool kSmall>
void step(benchmark::State& state) {
  openblas_set_num_threads(1);
  const int64_t rows = state.range(0);
  const Weights& w = weights();
  std::vector<float> x(size_t(rows * 1536), 0.5f), out(size_t(rows * 49152));
  for (auto _ : state) {
    for (size_t m = 0; m < w.shapes.size(); ++m) {
      const Shape s = w.shapes[m];
      if (kSmall)
        dattn::model::cpu_ops::small_batch_linear(x.data(), w.matrices[m].data(), rows, s.features, s.k, out.data(),
                                                  s.features, false);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows), blasint(s.features), blasint(s.k), 1.0f,
                    x.data(), blasint(s.k), w.matrices[m].data(), blasint(s.k), 0.0f, out.data(), blasint(s.features));
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(w.bytes * double(state.iterations()), benchmark::Counter::kIsRate);
}

void sgemm(benchmark::State& s) { step<false>(s); }
void small_batch(benchmark::State& s) { step<true>(s); }

}  // namespace

BENCHMARK(sgemm)->Arg(2)->Arg(4)->Arg(8)->Arg(12)->Arg(16)->Arg(24)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(small_batch)->Arg(2)->Arg(4)->Arg(8)->Arg(12)->Arg(16)->Arg(24)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
