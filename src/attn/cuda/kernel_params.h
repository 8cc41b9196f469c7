// The plain parameter struct of the CUDA attention kernel family (FlashAttention style): everything a
// launch needs, derived once on the host from the views and AttentionParams. No CUDA types here.
#pragma once
#include <cstdint>

namespace dattn::cuda::detail {

enum class OutType : int { f32 = 0, bf16 = 1, f16 = 2 };

// The mode behaviour of the kernels, chosen once on the host (cuda_attention.cpp) and compiled into each
// kernel as a template parameter, so that an instantiation holds only its own epilogue and key passes.
//
// What the dense-rows kernel writes for its anchor tiles (and combine_splits_kernel after a split).
enum class AnchorOutput {
  dense_rows,        // dense and recompute modes: the anchors' dense output rows, like every other row
  delta,             // delta: Δ = dense(anchor) - sparse(anchor) into p.delta (a window + sink pass, then dense)
  dense_into_delta,  // delta with RowEpilogue::delta_from_tile: dense(anchor) alone into p.delta
};
// How a kernel's epilogue writes its rows. The dense-rows kernel writes them as they are (plain); the
// sparse-rows kernel takes one of the others. Sparse mode uses skip_anchor_rows, which skips nothing there
// (sparse_rows = 0): one instantiation fewer per key mode and schedule.
enum class RowEpilogue {
  plain,
  skip_anchor_rows,  // recompute: anchor rows are left to the dense-rows kernel
  add_delta,         // delta, variant repeat: each row adds Δ of its anchor, read from p.delta
  interpolate,       // delta, variant interpolate: (1 - t) Δ_j + t Δ_{j+1}, t = (row - a_j) / gamma (window + sink)
  // Delta when every block of gamma rows lies inside one 64-row group of its sparse tile (gamma divides 64),
  // which then also holds sparse(anchor): the dense-rows kernel skips the anchors' sparse pass and writes
  // dense(anchor) into p.delta (AnchorOutput::dense_into_delta), and the sparse kernel forms Δ = dense(anchor)
  // - sparse(anchor) in its epilogue (same bits: the anchor's sparse row visits the same key tiles in the same
  // order either way). Block top-k always; window + sink on the warp-specialised kernels.
  delta_from_tile,
};

// A TMA tensor map (CUtensorMap: 128 bytes, 128-byte aligned), opaque here; tma_maps.cpp fills it with
// cuTensorMapEncodeTiled.
struct alignas(128) TmaDescriptor {
  uint64_t words[16];
};

// One 4-D operand: (batch, seq, head, dim) with dim contiguous; strides in elements.
struct OperandPtr {
  const void* data;
  int64_t batch_stride, row_stride, head_stride;
};

struct AttentionKernelParams {
  OperandPtr q, k, v;
  void* out;
  int64_t out_batch_stride, out_row_stride, out_head_stride;
  OutType out_type;
  float* lse;  // nullptr: not requested
  int64_t lse_batch_stride, lse_head_stride, lse_row_stride;

  int batch, h_q, h_kv, group;  // group = h_q / h_kv
  int n_q, n_kv;                // query row i sits at position n_kv - n_q + i
  float scale_log2;             // softmax scale * log2(e): scores live in the exp2 domain
  int window, sink;             // clamped to n_kv + 1 on the host, so int arithmetic cannot overflow

  // Row plan (make_row_plan): rows [0, sparse_rows) form blocks of gamma rows led by an anchor.
  int gamma, sparse_rows, num_anchors;
  // (batch, h_q, num_anchors, head_dim) fp32: Δ = dense(anchor) - sparse(anchor), or dense(anchor) alone
  // (AnchorOutput::dense_into_delta)
  float* delta;

  // Dense-rows kernel work list: first `contiguous_tiles` tiles of consecutive rows starting at
  // `contiguous_row_begin` (dense mode or the dense tail), then `anchor_tiles` tiles of gathered anchors.
  int contiguous_row_begin, contiguous_tiles, anchor_tiles;

  // Split-KV for the dense-rows kernel (split_kv.cuh), used when its tiles are too few to fill the GPU:
  // blockIdx.z = split s runs the causal key tiles [max(total - (s+1)*split_key_tiles, 0),
  // total - s*split_key_tiles) of its tile (counted from the diagonal, so z = 0 holds the longest, masked
  // chunk); z = kv_splits is the anchors' sparse pass (AnchorOutput::delta). kv_splits == 1: no split.
  int kv_splits, split_key_tiles;
  float* split_o;    // (batch*h_q, tiles, kv_splits, kBlockM, head_dim) fp32, normalised per split
  float* split_lse;  // (batch*h_q, tiles, kv_splits, kBlockM) natural log; -inf: the split saw no key of the row

  // Sparse kernel: rows [0, sparse_row_end); what it does with rows < sparse_rows is its RowEpilogue.
  int sparse_row_end;

  // sm_90a: K and V tiles arrive by TMA through these maps (4-D: dim, row, head, batch; 64 x 64 boxes,
  // 128-byte swizzle) when use_tma; otherwise (layouts TMA cannot describe, DATTN_CUDA_TMA=0) by cp.async.
  bool use_tma;
  TmaDescriptor tma_k, tma_v;
  // With use_tma: the warp-specialised kernels (ws_kernels.cuh: producer warp + two consumer warpgroups)
  // instead of the one-warpgroup ones (DATTN_CUDA_WS=0 keeps the latter, to compare).
  bool warp_specialized;

  // Block top-k (block_list): the sparse rows visit, instead of window + sink, the key units (64 keys each)
  // that block_select.cu listed for their query tile: per (batch, kv head, 128-row query tile t) the
  // key_unit_counts[(b * h_kv + kv_head) * query_tiles + t] entries at key_units + that index *
  // key_unit_capacity, ascending; an entry is (unit << 2) | owners, where bit g says that the tile's 64-row
  // group g (rows 128 t + 64 g ...) keeps the unit (a row sees the unit's keys <= its position).
  bool block_list;
  const int32_t* key_units;
  const int32_t* key_unit_counts;
  int key_unit_capacity, query_tiles;

  // The anchor gap (delta mode, when requested): the epilogue that forms an anchor's Δ also writes
  // ||Δ|| / ||dense(anchor)|| into anchor_gap[(b * h_q + h) * num_anchors + anchor].
  float* anchor_gap;
  // When not null: set to 1 by any store of a non-finite output value (a NaN / Inf input that a row sees,
  // or scores past the fp32 range); the host then finds and reports the bad input.
  int* non_finite_output;
};

}  // namespace dattn::cuda::detail
