// Host side of block top-k's device selection; see block_select.h. The scores come from cuBLAS's fp32 GEMM
// (its own summation order), so the lists equal select_key_blocks' except where two scores tie within fp32
// rounding (which the spec allows).
#include "block_select.h"

#include <cublas_v2.h>

#include <algorithm>
#include <limits>
#include <map>
#include <vector>

#include "block_select_kernels.h"
#include "cuda_check.h"
#include "dattn/core/error.h"

namespace dattn::cuda::detail {
namespace {

// cuBLAS handles are not to be shared between host threads: one per (thread, device).
cublasHandle_t blas_handle() {
  thread_local std::map<int, cublasHandle_t> handles;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "querying the current device");
  auto [it, inserted] = handles.try_emplace(device, nullptr);
  if (inserted) {
    const cublasStatus_t status = cublasCreate(&it->second);
    if (status != CUBLAS_STATUS_SUCCESS) {
      handles.erase(it);
      fail("cuda backend: cublasCreate failed for block top-k scores (status {})", int(status));
    }
  }
  return it->second;
}

void check_blas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("cuda backend: {} failed (cuBLAS status {})", what, int(status));
}

}  // namespace

void check_block_topk_params(const AttentionParams& params) {
  DATTN_CHECK(params.block_q % 64 == 0, "cuda backend: block_topk needs block_q to be a multiple of 64, got {}",
              params.block_q);
  DATTN_CHECK(params.block_k % kUnitKeys == 0,
              "cuda backend: block_topk needs block_k to be a multiple of 64, got {}", params.block_k);
  DATTN_CHECK(params.topk <= kMaxDeviceTopk, "cuda backend: block_topk keeps at most topk = {} blocks, got {}",
              kMaxDeviceTopk, params.topk);
}

DeviceBlockSelection::DeviceBlockSelection(const TensorView& q, const TensorView& k, const AttentionParams& params,
                                           int64_t rows, int tile_rows, cudaStream_t stream) {
  check_block_topk_params(params);
  SelectGeometry g{};
  g.batch = q.shape[0];
  g.n_q = q.shape[1];
  g.h_q = q.shape[2];
  g.head_dim = q.shape[3];
  g.n_kv = k.shape[1];
  g.h_kv = k.shape[2];
  g.group = g.h_q / g.h_kv;
  g.block_q = params.block_q;
  g.block_k = params.block_k;
  g.window = std::min<int64_t>(params.window, g.n_kv + 1);
  g.sink = std::min<int64_t>(params.sink, g.n_kv + 1);
  g.topk = params.topk;
  g.q_blocks = (rows + g.block_q - 1) / g.block_q;
  g.k_blocks = (g.n_kv + g.block_k - 1) / g.block_k;
  // sink blocks + window and query-block span (+ a partial block at each end) + topk, never more than all
  const int64_t sink_blocks = (std::min(g.sink, g.n_kv) + g.block_k - 1) / g.block_k;
  const int64_t window_blocks = (g.block_q + g.window + g.block_k - 1) / g.block_k + 2;
  g.list_capacity = std::min(g.k_blocks, sink_blocks + window_blocks + g.topk);
  g.q = q.data;
  g.k = k.data;
  g.q_batch_stride = q.stride[0];
  g.q_row_stride = q.stride[1];
  g.q_head_stride = q.stride[2];
  g.k_batch_stride = k.stride[0];
  g.k_row_stride = k.stride[1];
  g.k_head_stride = k.stride[2];
  DATTN_CHECK(g.k_blocks < std::numeric_limits<int32_t>::max() / 4, "block_topk: {} key blocks exceed the lists' int32",
              g.k_blocks);

  batch_ = g.batch;
  h_kv_ = g.h_kv;
  q_blocks_ = g.q_blocks;
  block_q_ = g.block_q;
  block_k_ = g.block_k;
  list_capacity_ = g.list_capacity;
  const int64_t bh = g.batch * g.h_kv;
  if (g.q_blocks == 0) return;

  const DeviceScratch<float> key_means(bh * g.k_blocks * g.head_dim, stream, "allocating key block means");
  const DeviceScratch<float> query_means(bh * g.q_blocks * g.head_dim, stream, "allocating query block means");
  lists_ = DeviceScratch<int32_t>(bh * g.q_blocks * g.list_capacity, stream, "allocating block lists");
  list_counts_ = DeviceScratch<int32_t>(bh * g.q_blocks, stream, "allocating block lists");
  launch_block_means(g, q.dtype == DType::bf16, key_means.data(), query_means.data(), stream);

  // Scores of a chunk of query blocks against the candidate key blocks any of them has (the blocks before
  // the latest window start): chunks small enough for ~256 MB of fp32 scores.
  cublasHandle_t blas = blas_handle();
  check_blas(cublasSetStream(blas, stream), "cublasSetStream");
  const int64_t max_scores = int64_t(64) << 20;
  int64_t chunk = std::max<int64_t>(1, max_scores / std::max<int64_t>(1, bh * g.k_blocks));
  chunk = std::min(chunk, g.q_blocks);
  const DeviceScratch<float> scores(bh * chunk * g.k_blocks, stream, "allocating block scores");
  for (int64_t qb0 = 0; qb0 < g.q_blocks; qb0 += chunk) {
    const int64_t count = std::min(chunk, g.q_blocks - qb0);
    const int64_t columns = std::max<int64_t>(query_block_keys(g, qb0 + count - 1).window_block, 1);
    const float one = 1.f, zero = 0.f;
    // column-major: C (columns x count) = KM^T (columns x d) * QM (d x count), i.e. row-major scores[qb][kb]
    check_blas(cublasSgemmStridedBatched(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(columns), int(count), int(g.head_dim), &one,
                                         key_means.data(), int(g.head_dim), g.k_blocks * g.head_dim,
                                         query_means.data() + qb0 * g.head_dim, int(g.head_dim),
                                         g.q_blocks * g.head_dim, &zero, scores.data(), int(columns),
                                         count * columns, int(bh)),
               "block top-k score GEMM");
    launch_top_blocks(g, qb0, count, scores.data(), columns, lists_.data(), list_counts_.data(), stream);
  }

  query_tiles_ = (rows + tile_rows - 1) / tile_rows;
  unit_capacity_ = std::min((g.n_kv + kUnitKeys - 1) / kUnitKeys, 2 * g.list_capacity * (g.block_k / kUnitKeys));
  units_ = DeviceScratch<int32_t>(bh * query_tiles_ * unit_capacity_, stream, "allocating key unit lists");
  unit_counts_ = DeviceScratch<int32_t>(bh * query_tiles_, stream, "allocating key unit lists");
  launch_tile_units(g, rows, tile_rows, query_tiles_, lists_.data(), list_counts_.data(), unit_capacity_,
                    units_.data(), unit_counts_.data(), stream);
}

BlockSelection DeviceBlockSelection::selection_to_host() const {
  BlockSelection sel;
  sel.batch = batch_;
  sel.h_kv = h_kv_;
  sel.q_blocks = q_blocks_;
  sel.block_q = block_q_;
  sel.block_k = block_k_;
  const int64_t lists = batch_ * h_kv_ * q_blocks_;
  const std::vector<int32_t> counts = list_counts_.to_host(), entries = lists_.to_host();
  sel.offsets.push_back(0);
  for (int64_t i = 0; i < lists; ++i) {
    const auto* first = entries.data() + i * list_capacity_;
    sel.key_blocks.insert(sel.key_blocks.end(), first, first + counts[size_t(i)]);
    sel.offsets.push_back(int64_t(sel.key_blocks.size()));
  }
  return sel;
}

}  // namespace dattn::cuda::detail
