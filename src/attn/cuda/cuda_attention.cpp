// Host side of the cuda backend: validates what the kernels need beyond dattn::delta_attention's checks,
// derives the kernel parameters and the row plan, and launches the kernels of each mode in order.
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include <vector>

#include "anchor_gaps.h"
#include "block_select.h"
#include "cuda_check.h"
#include "device_scratch.h"
#include "unchecked_backends.h"
#include "dattn/core/error.h"
#include "launch.h"
#include "non_finite.h"
#include "split_kv.h"
#include "tma_maps.h"

namespace dattn::cuda {
namespace detail {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("cuda backend: {} failed: {} ({})", what, cudaGetErrorString(status), int(status));
}

void unsupported_kernel(const char* what) { fail("cuda backend: internal error: {}", what); }

int current_device_attribute(cudaDeviceAttr attribute, const char* what) {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "querying the current device");
  static std::mutex mutex;
  static std::map<std::pair<int, int>, int> cache;  // (device, attribute) -> value
  const std::lock_guard<std::mutex> lock(mutex);
  const auto [it, inserted] = cache.try_emplace({device, int(attribute)}, 0);
  if (inserted) {
    const cudaError_t status = cudaDeviceGetAttribute(&it->second, attribute, device);
    if (status != cudaSuccess) cache.erase(it);
    check_cuda(status, what);
  }
  return it->second;
}

namespace {

// A build option so that the anchors' sparse pass in the dense-rows kernel can be timed against the
// sparse kernel's epilogue doing it (kernel_params.h, RowEpilogue::delta_from_tile).
#ifndef DATTN_CUDA_DELTA_IN_SPARSE_EPILOGUE
#define DATTN_CUDA_DELTA_IN_SPARSE_EPILOGUE 1
#endif
constexpr bool kDeltaInSparseEpilogue = DATTN_CUDA_DELTA_IN_SPARSE_EPILOGUE != 0;

OperandPtr operand(const TensorView& t) { return {t.data, t.stride[0], t.stride[1], t.stride[2]}; }

// cp.async moves 16-byte chunks, so every row start of q, k, v must be 16-byte aligned.
void check_input_layout(const TensorView& t, const char* name) {
  DATTN_CHECK(t.stride[3] == 1, "cuda backend: {} must have head_dim contiguous (stride[3] == 1), got stride {}",
              name, t.stride[3]);
  DATTN_CHECK(reinterpret_cast<uintptr_t>(t.data) % 16 == 0, "cuda backend: {} data must be 16-byte aligned", name);
  for (int i = 0; i < 3; ++i)
    DATTN_CHECK(t.stride[i] % 8 == 0,
                "cuda backend: {} stride[{}] = {} elements is not a multiple of 8 (rows must start 16-byte aligned)",
                name, i, t.stride[i]);
}

// The epilogue stores two adjacent elements at once.
void check_output_layout(const TensorView& t) {
  DATTN_CHECK(t.stride[3] == 1, "cuda backend: out must have head_dim contiguous (stride[3] == 1), got stride {}",
              t.stride[3]);
  DATTN_CHECK(reinterpret_cast<uintptr_t>(t.data) % (2 * dtype_size(t.dtype)) == 0,
              "cuda backend: out data must be aligned to two elements");
  for (int i = 0; i < 3; ++i)
    DATTN_CHECK(t.stride[i] % 2 == 0, "cuda backend: out stride[{}] = {} must be even", i, t.stride[i]);
}

// Where q, k or v holds its first NaN / Inf, as the CPU backends' refusal words it (dattn::check_finite).
void refuse_non_finite_input(const TensorView& t, const char* name, cudaStream_t stream) {
  const uint16_t mask = t.dtype == DType::bf16 ? 0x7f80 : 0x7c00;
  const int64_t bad = find_non_finite_16bit(t.data, t.shape.data(), t.stride.data(), mask, stream);
  if (bad < 0) return;
  const int64_t c = bad % t.shape[3], h = bad / t.shape[3] % t.shape[2], r = bad / t.shape[3] / t.shape[2] % t.shape[1],
                b = bad / t.shape[3] / t.shape[2] / t.shape[1];
  fail("{} holds a non-finite value (NaN or Inf) at [{}, {}, {}, {}]: attention refuses NaN and Inf inputs", name, b,
       r, h, c);
}

// NaN / Inf refusal at no cost to the kernels: every output store flags a non-finite value (store_pair), the
// flag is read back once after the kernels (the call's one wait), and only then are q, k and v searched, so
// that the error names the bad input. A non-finite value no output row sees is not refused here.
class NonFiniteCheck {
 public:
  NonFiniteCheck(bool enabled, cudaStream_t stream) : stream_(stream) {
    if (!enabled) return;
    check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&flag_), sizeof(int), stream), "allocating the NaN/Inf flag");
    check_cuda(cudaMemsetAsync(flag_, 0, sizeof(int), stream), "clearing the NaN/Inf flag");
  }
  ~NonFiniteCheck() {
    if (flag_) cudaFreeAsync(flag_, stream_);
  }
  NonFiniteCheck(const NonFiniteCheck&) = delete;
  NonFiniteCheck& operator=(const NonFiniteCheck&) = delete;
  int* flag() const { return flag_; }

  void refuse_if_flagged(const TensorView& q, const TensorView& k, const TensorView& v, double scale) const {
    if (!flag_) return;
    int flagged = 0;
    check_cuda(cudaMemcpyAsync(&flagged, flag_, sizeof(int), cudaMemcpyDeviceToHost, stream_), "reading the NaN/Inf flag");
    check_cuda(cudaStreamSynchronize(stream_), "reading the NaN/Inf flag");
    if (!flagged) return;
    refuse_non_finite_input(q, "q", stream_);
    refuse_non_finite_input(k, "k", stream_);
    refuse_non_finite_input(v, "v", stream_);
    fail("attention produced a non-finite output from finite q, k and v: the scores exceed the fp32 range "
         "(scale {:g}); scale the inputs down", scale);
  }

 private:
  cudaStream_t stream_;
  int* flag_ = nullptr;
};

OutType out_type(DType t) {
  switch (t) {
    case DType::f32: return OutType::f32;
    case DType::bf16: return OutType::bf16;
    case DType::f16: return OutType::f16;
  }
  fail("cuda backend: unknown output dtype {}", int(t));
}

// The mode behaviour of the kernels (kernel_params.h), chosen once per call by kernel_variants().
struct KernelVariants {
  AnchorOutput anchors = AnchorOutput::dense_rows;
  RowEpilogue sparse_epilogue = RowEpilogue::skip_anchor_rows;
};

// dense: dense rows only. sparse: the sparse kernel alone, with no anchor rows to skip (sparse_rows = 0).
// recompute: the dense-rows kernel writes the anchors' rows, the sparse kernel skips them. delta: Δ from
// the dense-rows kernel (two passes over the anchors) added by the sparse kernel, or formed in the sparse
// kernel's epilogue when every block of gamma rows lies in one 64-row group of its tile: always for block
// top-k (checked by the caller), for window + sink on the warp-specialised kernels (gamma >= 2; not with
// interpolation, which needs the next block's Δ too). p.block_list: block top-k with sparse rows to run
// (without any, there are no anchors either, and the choice does not matter).
KernelVariants kernel_variants(const AttentionParams& params, const AttentionKernelParams& p) {
  if (params.mode != AttentionMode::delta) return {};
  const bool interpolate = params.delta_variant == DeltaVariant::interpolate;
  const bool delta_from_tile = p.block_list || (kDeltaInSparseEpilogue && !interpolate && p.warp_specialized &&
                                                p.gamma >= 2 && 64 % p.gamma == 0);
  if (delta_from_tile) return {AnchorOutput::dense_into_delta, RowEpilogue::delta_from_tile};
  return {AnchorOutput::delta, interpolate ? RowEpilogue::interpolate : RowEpilogue::add_delta};
}

enum class RowsKernel { dense, sparse };

template <ElemType kElem>
void launch_for_head_dim(int head_dim, RowsKernel kernel, const KernelVariants& variants,
                         const AttentionKernelParams& p, cudaStream_t stream) {
  switch (kernel) {
    case RowsKernel::dense:
      return head_dim == 64 ? launch_dense_rows<kElem, 64>(variants.anchors, p, stream)
                            : launch_dense_rows<kElem, 128>(variants.anchors, p, stream);
    case RowsKernel::sparse:
      return head_dim == 64 ? launch_sparse_rows<kElem, 64>(variants.sparse_epilogue, p, stream)
                            : launch_sparse_rows<kElem, 128>(variants.sparse_epilogue, p, stream);
  }
}

void launch(DType dtype, int head_dim, RowsKernel kernel, const KernelVariants& variants,
            const AttentionKernelParams& p, cudaStream_t stream) {
  if (dtype == DType::bf16)
    launch_for_head_dim<ElemType::bf16>(head_dim, kernel, variants, p, stream);
  else
    launch_for_head_dim<ElemType::f16>(head_dim, kernel, variants, p, stream);
}

// fp32 scratch of a call: Δ, split-KV partials, anchor gaps.
using ScratchBuffer = DeviceScratch<float>;

// Chooses split-KV for the dense-rows tiles in p (sets p.kv_splits, p.split_key_tiles); forced_splits > 0
// fixes the chunk count (CudaKernelConfig::kv_splits).
void plan_dense_rows_splits(AttentionKernelParams& p, int forced_splits) {
  const SplitPlan plan = plan_kv_splits(p, current_device_sm_count(), forced_splits,
                                        p.warp_specialized ? kWsCtasPerSm : kCtasPerSm,
                                        p.warp_specialized ? kWsKeyTileKeys : kKeyTileKeys);
  p.kv_splits = plan.kv_splits;
  p.split_key_tiles = plan.split_key_tiles;
}

// The dense-rows tiles in p (split as planned, with their partials' scratch), then the kernel(s).
void launch_dense_rows_tiles(DType dtype, int head_dim, const KernelVariants& variants, AttentionKernelParams& p,
                             cudaStream_t stream) {
  const bool split = p.kv_splits > 1;
  ScratchBuffer split_o(split ? split_o_floats(p, kQueryTileRows, head_dim) : 0, stream, "allocating split-KV partials");
  ScratchBuffer split_lse(split ? split_lse_floats(p, kQueryTileRows) : 0, stream, "allocating split-KV partials");
  p.split_o = split_o.data();
  p.split_lse = split_lse.data();
  launch(dtype, head_dim, RowsKernel::dense, variants, p, stream);
}

}  // namespace
}  // namespace detail

bool available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return false;
  }
  return count > 0;
}

void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params) {
  using namespace detail;
  DATTN_CHECK(q.dtype == DType::bf16 || q.dtype == DType::f16,
              "cuda backend supports bf16 and fp16 inputs, got {} (use the cpu backend for fp32)", dtype_name(q.dtype));
  const AttentionShape s = attention_shape(q, k);
  DATTN_CHECK(s.head_dim == 64 || s.head_dim == 128, "cuda backend supports head_dim 64 and 128, got {}", s.head_dim);
  check_input_layout(q, "q");
  check_input_layout(k, "k");
  check_input_layout(v, "v");
  check_output_layout(out);
  constexpr int64_t kMaxKeys = int64_t(1) << 30;  // positions + window stay inside int32 in the kernels
  DATTN_CHECK(s.n_kv < kMaxKeys, "cuda backend supports n_kv < 2^30, got {}", s.n_kv);
  DATTN_CHECK(s.n_q / kQueryTileRows < 65535, "cuda backend supports n_q < {}, got {}", 65535 * kQueryTileRows,
              s.n_q);
  DATTN_CHECK(s.batch * s.h_q < (int64_t(1) << 31), "cuda backend: batch * h_q = {} is too large", s.batch * s.h_q);

  const AttentionMode mode = params.mode;
  const bool delta = mode == AttentionMode::delta;
  const bool block_topk = mode != AttentionMode::dense && params.pattern == KeyPattern::block_topk;
  const bool interpolate = delta && params.delta_variant == DeltaVariant::interpolate;
  const RowPlan plan = make_row_plan(s.n_q, params);
  if (block_topk) {
    check_block_topk_params(params);
    // the sparse kernels form Δ in their epilogue from the anchor's own row of the same tile
    DATTN_CHECK(!delta || 64 % plan.gamma == 0,
                "cuda backend: block_topk with delta needs gamma dividing 64, got gamma = {} (use recompute, or the cpu "
                "backend)", plan.gamma);
    DATTN_CHECK(!interpolate, "cuda backend: block_topk supports the delta variant repeat only, got interpolate (use "
                              "the cpu backend)");
  }

  AttentionKernelParams p{};
  p.kv_splits = 1;
  p.q = operand(q);
  p.k = operand(k);
  p.v = operand(v);
  p.out = out.data;
  p.out_batch_stride = out.stride[0];
  p.out_row_stride = out.stride[1];
  p.out_head_stride = out.stride[2];
  p.out_type = out_type(out.dtype);
  p.lse = static_cast<float*>(lse.data);
  if (p.lse) {
    p.lse_batch_stride = lse.stride[0];
    p.lse_head_stride = lse.stride[1];
    p.lse_row_stride = lse.stride[2];
  }
  p.batch = int(s.batch);
  p.h_q = int(s.h_q);
  p.h_kv = int(s.h_kv);
  p.group = int(s.group());
  p.n_q = int(s.n_q);
  p.n_kv = int(s.n_kv);
  const double scale = params.scale != 0.0 ? params.scale : 1.0 / std::sqrt(double(s.head_dim));
  p.scale_log2 = float(scale * 1.4426950408889634);
  const CudaKernelConfig& config = params.cuda;
  p.use_tma = config.tma && tma_available() && encode_kv_tma_map(k, p.tma_k) && encode_kv_tma_map(v, p.tma_v);
  p.warp_specialized = p.use_tma && config.warp_specialized && hopper_kernels_loaded();
  p.window = int(std::min<int64_t>(params.window, s.n_kv + 1));
  p.sink = int(std::min<int64_t>(params.sink, s.n_kv + 1));

  cudaStream_t stream = static_cast<cudaStream_t>(params.stream);
  const NonFiniteCheck non_finite(!params.skip_finite_check, stream);
  p.non_finite_output = non_finite.flag();

  p.gamma = int(std::min<int64_t>(plan.gamma, s.n_q + 1));
  p.sparse_rows = mode == AttentionMode::dense || mode == AttentionMode::sparse ? 0 : int(plan.sparse_rows);
  // Every row of [0, sparse_rows) belongs to the block of its anchor (row / gamma) * gamma; when tail_min
  // is not a multiple of gamma the last block is partial but still has its anchor, so round up.
  p.num_anchors = (p.sparse_rows + p.gamma - 1) / p.gamma;
  const auto tiles_of = [](int64_t rows) { return int((rows + kQueryTileRows - 1) / kQueryTileRows); };

  const int head_dim = int(s.head_dim);
  if (mode == AttentionMode::dense) {
    p.contiguous_row_begin = 0;
    p.contiguous_tiles = tiles_of(s.n_q);
    plan_dense_rows_splits(p, config.kv_splits);
    launch_dense_rows_tiles(q.dtype, head_dim, kernel_variants(params, p), p, stream);
    non_finite.refuse_if_flagged(q, k, v, scale);
    return;
  }
  p.sparse_row_end = mode == AttentionMode::sparse ? int(s.n_q) : p.sparse_rows;
  std::optional<DeviceBlockSelection> selection;
  if (block_topk && p.sparse_row_end > 0) {
    selection.emplace(q, k, params, p.sparse_row_end, kQueryTileRows, stream);
    p.block_list = true;
    p.key_units = selection->units();
    p.key_unit_counts = selection->unit_counts();
    p.key_unit_capacity = selection->unit_capacity();
    p.query_tiles = selection->query_tiles();
  }
  if (mode == AttentionMode::sparse) {
    launch(q.dtype, head_dim, RowsKernel::sparse, kernel_variants(params, p), p, stream);
    non_finite.refuse_if_flagged(q, k, v, scale);
    return;
  }
  // recompute and delta: anchors and the dense tail first, then the sparse rows.
  ScratchBuffer delta_buffer(delta ? size_t(s.batch) * size_t(s.h_q) * size_t(p.num_anchors) * size_t(s.head_dim) : 0,
                             stream, "allocating the delta buffer");
  const bool want_gap = delta && params.anchor_gap != nullptr;
  ScratchBuffer gap_buffer(want_gap ? size_t(s.batch) * size_t(s.h_q) * size_t(p.num_anchors) : 0, stream,
                           "allocating the anchor gaps");
  p.delta = delta_buffer.data();
  p.anchor_gap = gap_buffer.data();
  p.contiguous_row_begin = p.sparse_rows;
  p.contiguous_tiles = tiles_of(s.n_q - p.sparse_rows);
  p.anchor_tiles = tiles_of(p.num_anchors);
  const KernelVariants variants = kernel_variants(params, p);
  plan_dense_rows_splits(p, config.kv_splits);
  launch_dense_rows_tiles(q.dtype, head_dim, variants, p, stream);
  launch(q.dtype, head_dim, RowsKernel::sparse, variants, p, stream);
  non_finite.refuse_if_flagged(q, k, v, scale);
  if (want_gap) *params.anchor_gap = reduce_anchor_gaps(gap_buffer.to_host(), s.batch * s.h_q, p.num_anchors);
}

namespace detail {

BlockSelection device_block_selection(const TensorView& q, const TensorView& k, const AttentionParams& params) {
  const AttentionShape s = attention_shape(q, k);
  const DeviceBlockSelection selection(q, k, params, s.n_q, kQueryTileRows, static_cast<cudaStream_t>(params.stream));
  return selection.selection_to_host();
}

}  // namespace detail
}  // namespace dattn::cuda
