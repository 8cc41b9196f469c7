// `dattn bench attention`: dense, sparse and delta time per length, speedup and effective GFLOP/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"

namespace dattn::cli {
namespace {

struct BenchOptions {
  std::string lengths = "4096,16384,65536";
  int64_t heads = 4, kv_heads = 1, head_dim = 128, window = 2048, sink = 1024, gamma = 64;
  std::string dtype = "fp32", backend = "cpu";
  int repeats = 3, threads = 0;
  bool json = false;
};

std::vector<int64_t> parse_lengths(const std::string& text) {
  std::vector<int64_t> lengths;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      size_t used = 0;
      long long n = std::stoll(item, &used);
      DATTN_CHECK(used == item.size() && n > 0, "--lengths: '{}' is not a positive integer", item);
      lengths.push_back(n);
    } catch (const std::logic_error&) {
      fail("--lengths: '{}' is not a positive integer", item);
    }
  }
  DATTN_CHECK(!lengths.empty(), "--lengths is empty");
  return lengths;
}

Tensor random_tensor(std::array<int64_t, 4> shape, DType dtype, Device device, std::mt19937& rng) {
  Tensor host(shape, DType::f32);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* p = static_cast<float*>(host.data());
  for (int64_t i = 0; i < host.view().numel(); ++i) p[i] = normal(rng);
  return Tensor::copy_of(host, dtype, device);
}

void run_bench(const BenchOptions& o) {
  const std::vector<int64_t> lengths = parse_lengths(o.lengths);
  const DType dtype = parse_dtype(o.dtype);
  const Backend backend = parse_backend(o.backend);
  const Device device = backend == Backend::cuda ? Device::cuda : Device::cpu;
  DATTN_CHECK(device == Device::cpu || cuda::available(), "--backend cuda: no CUDA device is available");
  DATTN_CHECK(o.repeats >= 1, "--repeats must be >= 1, got {}", o.repeats);
  const AttentionMode modes[] = {AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta};
  std::mt19937 rng(7);
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> table;
  for (int64_t n : lengths) {
    Tensor q = random_tensor({1, n, o.heads, o.head_dim}, dtype, device, rng);
    Tensor k = random_tensor({1, n, o.kv_heads, o.head_dim}, dtype, device, rng);
    Tensor v = random_tensor({1, n, o.kv_heads, o.head_dim}, dtype, device, rng);
    Tensor out({1, n, o.heads, o.head_dim}, device == Device::cuda ? dtype : DType::f32, device);
    AttentionShape shape{1, n, n, o.heads, o.kv_heads, o.head_dim};
    double dense_ms = 0;
    for (AttentionMode mode : modes) {
      AttentionParams params;
      params.mode = mode;
      params.window = o.window;
      params.sink = o.sink;
      params.gamma = o.gamma;
      params.backend = backend;
      params.num_threads = o.threads;
      std::vector<double> times;
      for (int r = 0; r <= o.repeats; ++r) {  // run 0 is the warm-up
        fmt::print(stderr, "\r  n={:<8} {:<7} run {}/{}   ", n, mode_name(mode), r, o.repeats);
        std::fflush(stderr);
        auto start = std::chrono::steady_clock::now();
        delta_attention(q, k, v, out, params);
        if (device == Device::cuda) device_synchronize();
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) times.push_back(ms);
      }
      std::sort(times.begin(), times.end());
      double median = times[times.size() / 2];
      if (mode == AttentionMode::dense) dense_ms = median;
      double pairs = mode_pairs(shape, params) * double(o.heads);
      double gflops = 4.0 * double(o.head_dim) * pairs / (median * 1e6);
      results.push_back({{"n", n}, {"mode", mode_name(mode)}, {"ms", median}, {"speedup_vs_dense", dense_ms / median},
                         {"gflops", gflops}, {"pairs", pairs}});
      table.push_back(fmt::format("{:>8} {:<7} {:>11.2f} {:>8.2f}x {:>10.1f}", n, mode_name(mode), median,
                                  dense_ms / median, gflops));
    }
  }
  fmt::print(stderr, "\r{:60}\r", "");
  if (o.json) {
    fmt::print("{}\n", results.dump(2));
    return;
  }
  fmt::print("backend {}, {} heads / {} kv heads, head_dim {}, {}, window {}, sink {}, gamma {}, median of {}\n",
             o.backend, o.heads, o.kv_heads, o.head_dim, o.dtype, o.window, o.sink, o.gamma, o.repeats);
  fmt::print("{:>8} {:<7} {:>11} {:>9} {:>10}\n", "n", "mode", "time (ms)", "speedup", "GFLOP/s");
  for (const auto& line : table) fmt::print("{}\n", line);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  CLI::App* cmd = bench->add_subcommand("attention", "Time dense, sparse and delta attention per length");
  cmd->add_option("--lengths", o->lengths, "comma-separated sequence lengths")->capture_default_str();
  cmd->add_option("--heads", o->heads, "query heads")->capture_default_str();
  cmd->add_option("--kv-heads", o->kv_heads, "kv heads")->capture_default_str();
  cmd->add_option("--head-dim", o->head_dim, "head dimension")->capture_default_str();
  cmd->add_option("--window", o->window, "sliding window")->capture_default_str();
  cmd->add_option("--sink", o->sink, "sink keys")->capture_default_str();
  cmd->add_option("--gamma", o->gamma, "anchor stride")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "fp32|bf16|fp16")->capture_default_str();
  cmd->add_option("--backend", o->backend, "cpu|reference|cuda")->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "timed runs per point (median reported)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)");
  cmd->add_flag("--json", o->json, "print JSON instead of a table");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace dattn::cli
