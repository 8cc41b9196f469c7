// `dattn bench attention`: dense, sparse and delta time per length, speedup and effective GFLOP/s, and
// the work ratio (dense pairs / mode pairs) with the efficiency (speedup / work ratio) it implies.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "attention_flags.h"
#include "commands.h"
#include "flag_values.h"
#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/core/output_files.h"
#include "dattn/core/threads.h"
#include "dattn/delta/delta_attention.h"
#include "dattn/eval/svg_plot.h"

namespace dattn::cli {
namespace {

struct BenchOptions {
  std::string lengths = "4096,16384,65536";
  int64_t heads = 4, kv_heads = 1, head_dim = 128;
  SparsityFlags sparsity;
  std::string dtype = "fp32", backend = "cpu";
  int repeats = 3, threads = 0;
  bool json = false, anchor_gap = false;
  std::string svg;  // latency-vs-length plot, one line per mode
};

Tensor random_tensor(std::array<int64_t, 4> shape, DType dtype, Device device, std::mt19937& rng) {
  Tensor host(shape, DType::f32);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* p = static_cast<float*>(host.data());
  for (int64_t i = 0; i < host.view().numel(); ++i) p[i] = normal(rng);
  return Tensor::copy_of(host, dtype, device);
}

std::string latency_plot_svg(const BenchOptions& o, const nlohmann::json& results) {
  eval::PlotSpec spec;
  spec.title = fmt::format("attention latency ({}, {} heads / {} kv heads, d {}, {})", o.backend, o.heads, o.kv_heads,
                           o.head_dim, o.dtype);
  spec.x_label = "sequence length (tokens)";
  spec.y_label = "time (ms)";
  spec.log2_x = true;
  for (const char* mode : {"dense", "sparse", "delta"}) {
    eval::PlotSeries series{mode, {}, {}};
    for (const auto& r : results)
      if (r["mode"] == mode) {
        series.x.push_back(r["n"].get<double>());
        series.y.push_back(r["ms"].get<double>());
      }
    spec.series.push_back(std::move(series));
  }
  return eval::render_svg_line_plot(spec);
}

void run_bench(const BenchOptions& o) {
  const std::vector<int64_t> lengths = parse_int_list("--lengths", o.lengths, 1, int64_t(1) << 30);
  OutputFiles files;
  if (!o.svg.empty()) files.add("--svg", o.svg);
  // progress redrawn in place on a terminal, plain lines otherwise (a log file gets no carriage returns)
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const DType dtype = parse_dtype(o.dtype);
  const Backend backend = parse_backend(o.backend);
  const Device device = backend == Backend::cuda ? Device::cuda : Device::cpu;
  DATTN_CHECK(device == Device::cpu || cuda::available(), "--backend cuda: no CUDA device is available");
  DATTN_CHECK(o.repeats >= 1, "--repeats must be >= 1, got {}", o.repeats);
  DATTN_CHECK(o.heads > 0 && o.kv_heads > 0 && o.heads % o.kv_heads == 0,
              "--heads ({}) must be a positive multiple of --kv-heads ({})", o.heads, o.kv_heads);
  // (mode, report the anchor gap): the gap row measures what computing it costs on top of plain delta
  std::vector<std::pair<AttentionMode, bool>> modes = {
      {AttentionMode::dense, false}, {AttentionMode::sparse, false}, {AttentionMode::delta, false}};
  if (o.anchor_gap) modes.push_back({AttentionMode::delta, true});
  const int threads = o.threads > 0 ? o.threads : default_num_threads();
  std::mt19937 rng(7);
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> table;
  for (int64_t n : lengths) {
    Tensor q = random_tensor({1, n, o.heads, o.head_dim}, dtype, device, rng);
    Tensor k = random_tensor({1, n, o.kv_heads, o.head_dim}, dtype, device, rng);
    Tensor v = random_tensor({1, n, o.kv_heads, o.head_dim}, dtype, device, rng);
    Tensor out({1, n, o.heads, o.head_dim}, dtype, device);
    const AttentionShape shape{1, n, n, o.heads, o.kv_heads, o.head_dim};
    const double dense_pairs_all_heads = dense_pairs(n, n) * double(o.heads);
    double dense_ms = 0;
    for (const auto& [mode, with_gap] : modes) {
      AttentionParams params = o.sparsity.params(mode);
      AnchorGap gap;
      if (with_gap) params.anchor_gap = &gap;
      const std::string label = with_gap ? "delta+gap" : std::string(mode_name(mode));
      params.backend = backend;
      params.num_threads = threads;
      std::vector<double> times, cpu_times;
      for (int r = 0; r <= o.repeats; ++r) {  // run 0 is the warm-up
        if (tty) {
          fmt::print(stderr, "\r  n={:<8} {:<9} run {}/{}   ", n, label, r, o.repeats);
          std::fflush(stderr);
        } else if (r == 0) {
          fmt::print(stderr, "  n={} {}: {} runs\n", n, label, o.repeats);
        }
        const std::clock_t cpu_start = std::clock();
        const auto start = std::chrono::steady_clock::now();
        delta_attention(q, k, v, out, params);
        if (device == Device::cuda) device_synchronize();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        const double cpu_ms = 1e3 * double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        if (r > 0) {
          times.push_back(ms);
          cpu_times.push_back(cpu_ms);
        }
      }
      std::sort(times.begin(), times.end());
      std::sort(cpu_times.begin(), cpu_times.end());
      const double median = times[times.size() / 2];
      // CPU time of all our threads: on a shared machine wall time also counts neighbours' load
      const double cpu_median = cpu_times[cpu_times.size() / 2];
      if (mode == AttentionMode::dense) dense_ms = median;
      const double pairs = mode_pairs(shape, params) * double(o.heads);
      const double gflops = 4.0 * double(o.head_dim) * pairs / (median * 1e6);
      const double speedup = dense_ms / median, work_ratio = dense_pairs_all_heads / pairs;
      // efficiency: the speedup as a fraction of the work saved (1.0 = as fast per pair as dense)
      results.push_back({{"n", n}, {"mode", label}, {"ms", median}, {"speedup_vs_dense", speedup},
                         {"gflops", gflops}, {"pairs", pairs}, {"work_ratio", work_ratio},
                         {"efficiency_vs_dense", speedup / work_ratio}, {"runs_ms", times},
                         {"cpu_ms", cpu_median}, {"gflops_per_cpu_second", gflops * median / cpu_median}});
      table.push_back(fmt::format("{:>8} {:<9} {:>11.2f} {:>8.2f}x {:>10.1f} {:>10.2f}x {:>10.2f} {:>11.1f} {:>11.1f}", n,
                                  label, median, speedup, gflops, work_ratio, speedup / work_ratio,
                                  cpu_median, gflops * median / cpu_median));
    }
  }
  if (tty) fmt::print(stderr, "\r{:60}\r", "");
  if (!o.svg.empty()) {
    files.stage(o.svg, {latency_plot_svg(o, results)});
    files.commit();
  }
  if (o.json) {
    nlohmann::json config = {{"backend", o.backend}, {"heads", o.heads},   {"kv_heads", o.kv_heads},
                             {"head_dim", o.head_dim}, {"dtype", o.dtype}, {"window", o.sparsity.window},
                             {"sink", o.sparsity.sink},         {"gamma", o.sparsity.gamma}, {"repeats", o.repeats},
                             {"pattern", o.sparsity.pattern}, {"block_q", o.sparsity.block_q},
                             {"block_k", o.sparsity.block_k}, {"topk", o.sparsity.topk},
                             {"threads", threads}};
    fmt::print("{}\n", nlohmann::json{{"config", config}, {"results", results}}.dump(2));
    return;
  }
  fmt::print("backend {}, {} threads, {} heads / {} kv heads, head_dim {}, {}, window {}, sink {}, gamma {}, median of {}\n",
             o.backend, threads, o.heads, o.kv_heads, o.head_dim, o.dtype, o.sparsity.window, o.sparsity.sink, o.sparsity.gamma, o.repeats);
  if (o.sparsity.pattern != "window_sink")
    fmt::print("pattern {}, block_q {}, block_k {}, topk {}\n", o.sparsity.pattern, o.sparsity.block_q, o.sparsity.block_k,
               o.sparsity.topk);
  fmt::print("{:>8} {:<9} {:>11} {:>9} {:>10} {:>11} {:>10} {:>11} {:>11}\n", "n", "mode", "time (ms)", "speedup",
             "GFLOP/s", "work ratio", "efficiency", "cpu ms", "GFLOP/cpu-s");
  for (const auto& line : table) fmt::print("{}\n", line);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  CLI::App* cmd = bench->add_subcommand("attention", "Time dense, sparse and delta attention per length");
  cmd->add_option("--lengths", o->lengths, "comma-separated sequence lengths")->capture_default_str();
  cmd->add_option("--heads", o->heads, "query heads")->capture_default_str()->check(int_range(1, 1024));
  cmd->add_option("--kv-heads", o->kv_heads, "kv heads")->capture_default_str()->check(int_range(1, 1024));
  cmd->add_option("--head-dim", o->head_dim, "head dimension")->capture_default_str()->check(int_range(1, 1024));
  add_sparsity_flags(*cmd, o->sparsity);
  cmd->add_option("--dtype", o->dtype, "fp32|bf16|fp16")->capture_default_str();
  cmd->add_option("--backend", o->backend, "cpu|reference|cuda")->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "timed runs per point (median reported)")
      ->capture_default_str()
      ->check(int_range(1, 100000));
  add_threads_flag(*cmd, o->threads);
  cmd->add_flag("--json", o->json, "print JSON instead of a table");
  cmd->add_flag("--anchor-gap", o->anchor_gap, "also time delta reporting the anchor gap (delta+gap)");
  cmd->add_option("--svg", o->svg, "also write a latency-vs-length plot (SVG)");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace dattn::cli
