// Times the cuda backend's dense, sparse and delta modes on bf16 inputs with CUDA events (warm-up
// first, median of the repeats) and prints one JSON object per (length, mode) line for bench/gpu_bench.py.
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dattn/attn/params.h"
#include "dattn/delta/delta_attention.h"
#include "fill_random.h"

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(fmt::format("{}: {}", what, cudaGetErrorString(status)));
}

// Milliseconds of one call, timed with events on the default stream.
float time_once(const std::function<void()>& call) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  check(cudaEventRecord(start), "record");
  call();
  check(cudaEventRecord(stop), "record");
  check(cudaEventSynchronize(stop), "synchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cuda attention benchmark (JSON lines)"};
  std::vector<int64_t> lengths{8192, 32768, 131072};
  std::vector<std::string> modes{"dense", "sparse", "delta"};
  int64_t heads = 32, kv_heads = 8, head_dim = 128, window = 2048, sink = 1024, gamma = 64;
  double budget_ms = 1500;  // per (length, mode): repeat until this much time is spent, at most max_reps
  int max_reps = 20;
  app.add_option("--lengths", lengths)->delimiter(',');
  app.add_option("--modes", modes)->delimiter(',');
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--head-dim", head_dim);
  app.add_option("--window", window);
  app.add_option("--sink", sink);
  app.add_option("--gamma", gamma);
  app.add_option("--budget-ms", budget_ms);
  app.add_option("--max-reps", max_reps);
  bool skip_finite_check = false;  // time the kernels alone, without the operator's NaN/Inf check of the inputs
  app.add_flag("--skip-finite-check", skip_finite_check);
  CLI11_PARSE(app, argc, argv);

  using namespace dattn;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "device properties");
  fmt::print(stderr, "device: {}\n", prop.name);
  bool warmed_up = false;
  for (int64_t n : lengths) {
    Tensor q({1, n, heads, head_dim}, DType::bf16, Device::cuda);
    Tensor k({1, n, kv_heads, head_dim}, DType::bf16, Device::cuda);
    Tensor v({1, n, kv_heads, head_dim}, DType::bf16, Device::cuda);
    Tensor out({1, n, heads, head_dim}, DType::bf16, Device::cuda);
    fill_random_bf16(q.data(), q.view().numel(), 1);
    fill_random_bf16(k.data(), k.view().numel(), 2);
    fill_random_bf16(v.data(), v.view().numel(), 3);
    check(cudaDeviceSynchronize(), "fill");
    for (const std::string& mode_text : modes) {
      AttentionParams p;
      p.mode = parse_mode(mode_text);
      p.window = window;
      p.sink = sink;
      p.gamma = gamma;
      p.backend = Backend::cuda;
      p.skip_finite_check = skip_finite_check;
      auto call = [&] { delta_attention(q, k, v, out, p); };
      if (!warmed_up) {  // module load and the first launch stay out of the numbers
        call();
        check(cudaDeviceSynchronize(), "warm-up");
      }
      std::vector<float> times;
      float spent = 0;
      do {
        times.push_back(time_once(call));
        spent += times.back();
      } while (spent < budget_ms && int(times.size()) < max_reps);
      check(cudaGetLastError(), "kernels");
      std::sort(times.begin(), times.end());
      const float median = times[times.size() / 2];
      const AttentionShape shape{1, n, n, heads, kv_heads, head_dim};
      const double pairs = mode_pairs(shape, p) * double(heads);
      const double tflops = 4.0 * double(head_dim) * pairs / (double(median) * 1e-3) / 1e12;
      fmt::print("{{\"impl\": \"dattn\", \"mode\": \"{}\", \"n\": {}, \"ms\": {:.4f}, \"reps\": {}, \"pairs\": {:.6e}, "
                 "\"tflops\": {:.2f}, \"finite_check\": {}, \"device\": \"{}\"}}\n",
                 mode_text, n, median, times.size(), pairs, tflops, !skip_finite_check, prop.name);
      std::fflush(stdout);
    }
    warmed_up = true;
  }
  return 0;
}
