// Times the cuda backend's dense, sparse, recompute and delta modes (key pattern window + sink or block
// top-k) on bf16 inputs with CUDA events (warm-up first, median of the repeats) and prints one JSON object
// per (length, mode) line for bench/gpu_bench.py and bench/flex_block_topk.py. With block top-k it also
// times the selection alone (block means, scores, top-k, unit lists) and can write the selection to .npy
// files, so that another implementation can run the very same blocks. With --digest each line also carries a
// hash of the output's bytes, so that two builds can be checked for bit-identical results.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "block_select.h"
#include "dattn/attn/key_pattern.h"
#include "dattn/attn/params.h"
#include "dattn/delta/delta_attention.h"
#include "dattn/io/npy.h"
#include "fill_random.h"

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(fmt::format("{}: {}", what, cudaGetErrorString(status)));
}

struct Timing {
  float ms = 0;       // CUDA events on the default stream around the call
  float wall_ms = 0;  // host clock from before the first event's record to after the second one's wait
};

Timing time_once(const std::function<void()>& call) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  const auto wall_start = std::chrono::steady_clock::now();
  check(cudaEventRecord(start), "record");
  call();
  check(cudaEventRecord(stop), "record");
  check(cudaEventSynchronize(stop), "synchronize");
  Timing t;
  t.wall_ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - wall_start).count();
  check(cudaEventElapsedTime(&t.ms, start, stop), "elapsed");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return t;
}

struct MedianTiming {
  float ms = 0, wall_ms = 0;  // medians (element size / 2 of the sorted times) of each
  int reps = 0;
};

// Median milliseconds of `call`: repeats until budget_ms is spent, at most max_reps times.
MedianTiming median_ms(const std::function<void()>& call, double budget_ms, int max_reps) {
  std::vector<float> times, walls;
  float spent = 0;
  do {
    const Timing t = time_once(call);
    times.push_back(t.ms);
    walls.push_back(t.wall_ms);
    spent += t.ms;
  } while (spent < budget_ms && int(times.size()) < max_reps);
  check(cudaGetLastError(), "kernels");
  std::sort(times.begin(), times.end());
  std::sort(walls.begin(), walls.end());
  return {times[times.size() / 2], walls[walls.size() / 2], int(times.size())};
}

// Query-key pairs the sparse rows of a block top-k selection attend to (rows < `rows`), over every kv head
// of batch 0: each listed block's keys up to the row's position.
double selected_pairs(const dattn::BlockSelection& sel, int64_t n, int64_t rows) {
  double pairs = 0;
  for (int64_t kv = 0; kv < sel.h_kv; ++kv)
    for (int64_t qb = 0; qb < sel.q_blocks; ++qb) {
      const int64_t r0 = qb * sel.block_q, r1 = std::min(rows, r0 + sel.block_q);
      for (int32_t kb : sel.blocks(0, kv, qb)) {
        const int64_t j0 = int64_t(kb) * sel.block_k, j1 = std::min(n, j0 + sel.block_k);
        for (int64_t r = r0; r < r1; ++r) pairs += double(std::max<int64_t>(0, std::min(j1, r + 1) - j0));
      }
    }
  return pairs;
}

// The selection as two int32 arrays: counts (h_kv, q_blocks) and blocks (h_kv, q_blocks, longest list),
// padded with -1.
void save_selection(const std::string& prefix, const dattn::BlockSelection& sel) {
  using dattn::npy::Array;
  int64_t longest = 0;
  const int64_t lists = sel.h_kv * sel.q_blocks;
  for (int64_t i = 0; i < lists; ++i) longest = std::max(longest, sel.offsets[size_t(i + 1)] - sel.offsets[size_t(i)]);
  std::vector<int32_t> counts(static_cast<size_t>(lists));
  std::vector<int32_t> blocks(static_cast<size_t>(lists * longest), -1);
  for (int64_t i = 0; i < lists; ++i) {
    counts[size_t(i)] = int32_t(sel.offsets[size_t(i + 1)] - sel.offsets[size_t(i)]);
    std::copy(sel.key_blocks.begin() + sel.offsets[size_t(i)], sel.key_blocks.begin() + sel.offsets[size_t(i + 1)],
              blocks.begin() + i * longest);
  }
  auto as_array = [](const std::vector<int32_t>& values, std::vector<int64_t> shape) {
    Array a{dattn::npy::ElementType::i32, std::move(shape), {}};
    a.bytes.resize(values.size() * sizeof(int32_t));
    std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
    return a;
  };
  dattn::npy::save(prefix + "_counts.npy", as_array(counts, {sel.h_kv, sel.q_blocks}));
  dattn::npy::save(prefix + "_blocks.npy", as_array(blocks, {sel.h_kv, sel.q_blocks, longest}));
}

// A bf16 device tensor as a .npy file of its bits (uint16, the layout dattn::npy calls bf16_as_u16).
void save_bf16(const std::string& path, const dattn::Tensor& t) {
  dattn::npy::Array a{dattn::npy::ElementType::bf16_as_u16, {}, {}};
  a.shape.assign(t.view().shape.begin(), t.view().shape.end());
  a.bytes.resize(t.nbytes());
  check(cudaMemcpy(a.bytes.data(), t.data(), t.nbytes(), cudaMemcpyDeviceToHost), "copying inputs to the host");
  dattn::npy::save(path, a);
}

// FNV-1a (64 bit) of a device buffer's bytes: equal digests mean bit-identical outputs (the kernels are
// deterministic: fixed reduction orders, no atomics on the output).
uint64_t device_digest(const void* data, size_t bytes) {
  std::vector<unsigned char> host(bytes);
  check(cudaMemcpy(host.data(), data, bytes, cudaMemcpyDeviceToHost), "digest copy");
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char byte : host) hash = (hash ^ byte) * 1099511628211ull;
  return hash;
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
  bool skip_finite_check = false;  // time the kernels alone, without the operator's NaN/Inf check
  app.add_flag("--skip-finite-check", skip_finite_check);
  bool with_lse = false;
  app.add_flag("--lse", with_lse,
               "also write the log-sum-exp (delta_attention_lse), as dattn.attention(return_lse=True) does");
  bool keep_pool = false;
  app.add_flag("--keep-pool", keep_pool,
               "keep the call's freed scratch in the device's default memory pool (release threshold: max) instead "
               "of the pool returning it at every synchronisation, so that the next call's cudaMallocAsync maps "
               "nothing");
  std::string inputs_out;
  app.add_option("--inputs-out", inputs_out,
                 "write PREFIX_n<N>_{q,k,v}.npy (bf16 bits as uint16) with each length's inputs, to check that "
                 "another benchmark generates the same ones (bench/python_bench.py)");
  std::string pattern = "window_sink", selection_out, delta_variant = "repeat";
  bool digest = false;
  app.add_option("--delta-variant", delta_variant, "repeat or interpolate");
  app.add_flag("--digest", digest, "add out_digest: a hash of the output's bytes after the timed calls");
  int64_t block_q = 64, block_k = 64, topk = 8;
  app.add_option("--pattern", pattern, "window_sink or block_topk");
  app.add_option("--block-q", block_q);
  app.add_option("--block-k", block_k);
  app.add_option("--topk", topk);
  app.add_option("--selection-out", selection_out,
                 "block_topk: write PREFIX_n<N>_{counts,blocks}.npy with the selection of each length");
  dattn::CudaKernelConfig config;
  bool no_tma = false, no_ws = false;
  app.add_flag("--no-tma", no_tma, "K/V by cp.async instead of TMA");
  app.add_flag("--no-ws", no_ws, "one-warpgroup kernels instead of the warp-specialised ones");
  app.add_option("--kv-splits", config.kv_splits, "dense rows' split-KV: 0 = planned, 1 = never, n = n chunks");
  CLI11_PARSE(app, argc, argv);
  config.tma = !no_tma;
  config.warp_specialized = !no_ws;

  using namespace dattn;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "device properties");
  fmt::print(stderr, "device: {}\n", prop.name);
  if (keep_pool) {
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, 0), "default memory pool");
    uint64_t threshold = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "pool release threshold");
  }
  bool warmed_up = false;
  for (int64_t n : lengths) {
    Tensor q({1, n, heads, head_dim}, DType::bf16, Device::cuda);
    Tensor k({1, n, kv_heads, head_dim}, DType::bf16, Device::cuda);
    Tensor v({1, n, kv_heads, head_dim}, DType::bf16, Device::cuda);
    Tensor out({1, n, heads, head_dim}, DType::bf16, Device::cuda);
    Tensor lse;  // fp32 (batch, heads, n_q) viewed as {batch, heads, n_q, 1}
    if (with_lse) lse = Tensor({1, heads, n, 1}, DType::f32, Device::cuda);
    fill_random_bf16(q.data(), q.view().numel(), 1);
    fill_random_bf16(k.data(), k.view().numel(), 2);
    fill_random_bf16(v.data(), v.view().numel(), 3);
    check(cudaDeviceSynchronize(), "fill");
    if (!inputs_out.empty())
      for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"q", &q}, {"k", &k}, {"v", &v}})
        save_bf16(fmt::format("{}_n{}_{}.npy", inputs_out, n, name), *t);
    for (const std::string& mode_text : modes) {
      AttentionParams p;
      p.mode = parse_mode(mode_text);
      p.pattern = parse_pattern(pattern);
      p.window = window;
      p.sink = sink;
      p.gamma = gamma;
      p.delta_variant = parse_delta_variant(delta_variant);
      p.block_q = block_q;
      p.block_k = block_k;
      p.topk = topk;
      p.backend = Backend::cuda;
      p.skip_finite_check = skip_finite_check;
      p.cuda = config;
      auto call = [&] {
        if (with_lse)
          delta_attention_lse(q, k, v, out, lse, p);
        else
          delta_attention(q, k, v, out, p);
      };
      if (!warmed_up) {  // module load and the first launch stay out of the numbers
        call();
        check(cudaDeviceSynchronize(), "warm-up");
      }
      const auto [median, wall_median, reps] = median_ms(call, budget_ms, max_reps);
      const AttentionShape shape{1, n, n, heads, kv_heads, head_dim};
      double pairs = mode_pairs(shape, p) * double(heads);
      std::string extra;
      if (p.pattern == KeyPattern::block_topk && p.mode != AttentionMode::dense) {
        // exact pairs of the selected blocks (mode_pairs bounds them), and the selection's own time
        const RowPlan plan = make_row_plan(n, p);
        const int64_t rows = p.mode == AttentionMode::sparse ? n : plan.sparse_rows;
        const BlockSelection sel = cuda::detail::device_block_selection(q, k, p);
        const double sparse_pairs = selected_pairs(sel, n, rows) * double(heads / kv_heads);
        double dense_rows_pairs = 0;  // the anchors' and the tail's dense rows
        if (p.mode != AttentionMode::sparse) {
          for (int64_t j = 0; j < plan.num_anchors(); ++j) dense_rows_pairs += double(j * plan.gamma + 1);
          for (int64_t row = plan.sparse_rows; row < n; ++row) dense_rows_pairs += double(row + 1);
        }
        pairs = sparse_pairs + dense_rows_pairs * double(heads);
        auto select = [&] {
          const cuda::detail::DeviceBlockSelection s(q, k, p, rows, 128, nullptr);
        };
        const float select_ms = median_ms(select, budget_ms / 4, max_reps).ms;
        extra = fmt::format(", \"select_ms\": {:.4f}, \"block_q\": {}, \"block_k\": {}, \"topk\": {}", select_ms,
                            block_q, block_k, topk);
        if (!selection_out.empty() && mode_text == modes.front()) save_selection(fmt::format("{}_n{}", selection_out, n), sel);
      }
      if (p.delta_variant != DeltaVariant::repeat) extra += fmt::format(", \"delta_variant\": \"{}\"", delta_variant);
      if (digest)
        extra += fmt::format(", \"gamma\": {}, \"out_digest\": \"{:016x}\"", gamma,
                             device_digest(out.data(), size_t(out.view().numel()) * 2));
      const double tflops = 4.0 * double(head_dim) * pairs / (double(median) * 1e-3) / 1e12;
      fmt::print("{{\"impl\": \"dattn\", \"mode\": \"{}\", \"pattern\": \"{}\", \"n\": {}, \"ms\": {:.4f}, "
                 "\"wall_ms\": {:.4f}, \"reps\": {}, \"pairs\": {:.6e}, \"tflops\": {:.2f}, \"finite_check\": {}, "
                 "\"lse\": {}, \"keep_pool\": {}, \"tma\": {}, \"ws\": {}, \"kv_splits\": {}{}, "
                 "\"device\": \"{}\"}}\n",
                 mode_text, pattern, n, median, wall_median, reps, pairs, tflops, !skip_finite_check, with_lse,
                 keep_pool, config.tma, config.warp_specialized, config.kv_splits, extra, prop.name);
      std::fflush(stdout);
    }
    warmed_up = true;
  }
  return 0;
}
