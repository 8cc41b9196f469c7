// Split-KV for the dense-rows kernel. With few query tiles (chunked prefill: n_q = 4096 over up to 128K
// keys, or delta at 8K-32K: ~2-5 tiles per head) one CTA per tile leaves most SMs idle while each CTA walks
// the whole key range. Then every tile's causal key tiles are cut into chunks of p.split_key_tiles, one
// CTA per chunk (blockIdx.z), each writing an fp32 partial (normalised O and its LSE); combine_splits_kernel
// merges them by log-sum-exp and does what the tile epilogue would have done (output rows and LSE, or Δ).
// With AnchorOutput::delta the anchors' sparse pass (window + sink keys) gets its own z-slice, z =
// p.kv_splits: it writes -sparse into p.delta like the unsplit kernel, and the combine adds the merged
// dense part.
#pragma once
#include "attention_tile.cuh"

namespace dattn::cuda::detail {

// Tile `work` of the dense-rows kernel: consecutive-row tiles (dense mode or the dense tail, the last one
// longest) first, then anchor tiles, each from the last (most keys) to the first.
template <int kBlockM>
__device__ inline QueryTile dense_rows_tile(const AttentionKernelParams& p, int work, bool& anchor_tile) {
  anchor_tile = work >= p.contiguous_tiles;
  if (!anchor_tile) {
    const int first = p.contiguous_row_begin + (p.contiguous_tiles - 1 - work) * kBlockM;
    return make_query_tile(p, first, 1, min(kBlockM, p.n_q - first));
  }
  const int first_anchor = (p.anchor_tiles - 1 - (work - p.contiguous_tiles)) * kBlockM;
  return make_query_tile(p, first_anchor * p.gamma, p.gamma, min(kBlockM, p.num_anchors - first_anchor));
}

// Chunk `split` of the tile's causal key tiles [0, total), counted back from the diagonal; empty
// (begin0 == end0) when the tile has fewer than split + 1 chunks.
template <int kBlockN>
__device__ inline KeyTileRanges chunk_key_tiles(const AttentionKernelParams& p, const QueryTile& qt, int split) {
  const int total = dense_key_tiles<kBlockN>(qt).end0;
  const int end = max(total - split * p.split_key_tiles, 0);
  return {max(end - p.split_key_tiles, 0), end, 0, 0};
}

// Index of the partial of (batch*h_q index bh, dense-rows tile, split): layout (batch*h_q, tiles, kv_splits).
__device__ __forceinline__ int64_t split_partial_index(const AttentionKernelParams& p, int bh, int tile, int split) {
  const int tiles = p.contiguous_tiles + p.anchor_tiles;
  return (int64_t(bh) * tiles + tile) * p.kv_splits + split;
}

// An empty chunk: every row reports LSE = -inf, so the combine skips it (its O is never written or read).
template <int kBlockM, int kThreads>
__device__ __forceinline__ void store_empty_split(const AttentionKernelParams& p, const QueryTile& qt, int bh, int tile,
                                                  int split) {
  float* lse = p.split_lse + split_partial_index(p, bh, tile, split) * kBlockM;
  for (int local = threadIdx.x; local < qt.rows; local += kThreads) lse[local] = kNegInf;
}

// The thread's rows of a finished (normalised) accumulator into the split's partial.
template <int kHeadDim, int kM>
__device__ __forceinline__ void store_split_partial(const AttentionKernelParams& p, const QueryTile& qt, int bh,
                                                    int tile, int split, const SoftmaxAccumulator<kHeadDim, kM>& acc,
                                                    const float (&lse)[kM][2]) {
  constexpr int kBlockM = TileShape<kHeadDim>::kBlockM;  // the warp-specialised tiles have as many rows
  const int64_t index = split_partial_index(p, bh, tile, split);
  float* o = p.split_o + index * kBlockM * kHeadDim;
  float* l = p.split_lse + index * kBlockM;
  const int lane = threadIdx.x % 32;
  for_each_thread_row<kHeadDim, kM>(qt, [&](int m, int r, int local) {
    float* row = o + int64_t(local) * kHeadDim;
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d)
      *reinterpret_cast<float2*>(row + d * 8 + 2 * (lane % 4)) =
          make_float2(acc.o[m][d][2 * r], acc.o[m][d][2 * r + 1]);
    if (lane % 4 == 0) l[local] = lse[m][r];
  });
}

// One CTA per (batch*head, tile) of the dense-rows grid, one warp per row at a time, each lane owning
// kHeadDim / 32 adjacent columns. out = sum_s w_s O_s / sum_s w_s with w_s = exp(lse_s - max lse); a split
// with lse = -inf is skipped (not multiplied by 0: its O may be unwritten). Then the tile epilogue:
// delta anchors add the merged dense row to the -sparse already in p.delta (or write it alone:
// AnchorOutput::dense_into_delta); every other row (tail, dense mode, recompute anchors) writes its output
// row and its dense LSE.
template <int kHeadDim, int kBlockM, AnchorOutput kAnchors>
__global__ void __launch_bounds__(128) combine_splits_kernel(const __grid_constant__ AttentionKernelParams p) {
  constexpr int kPerLane = kHeadDim / 32;
  static_assert(kPerLane % 2 == 0, "lanes store column pairs");
  const int b = blockIdx.x / p.h_q, h = blockIdx.x % p.h_q;
  bool anchor_tile;
  const QueryTile qt = dense_rows_tile<kBlockM>(p, blockIdx.y, anchor_tile);
  const int64_t first_partial = split_partial_index(p, blockIdx.x, blockIdx.y, 0);
  const int lane = threadIdx.x % 32, col = lane * kPerLane;
  for (int local = threadIdx.x / 32; local < qt.rows; local += blockDim.x / 32) {
    float max_lse = kNegInf;
    for (int s = 0; s < p.kv_splits; ++s) max_lse = fmaxf(max_lse, p.split_lse[(first_partial + s) * kBlockM + local]);
    float sum = 0.f, x[kPerLane] = {};
    if (max_lse != kNegInf) {
      for (int s = 0; s < p.kv_splits; ++s) {
        const int64_t partial = (first_partial + s) * kBlockM + local;
        const float l = p.split_lse[partial];
        if (l == kNegInf) continue;
        const float w = expf(l - max_lse);
        sum += w;
        const float* o = p.split_o + partial * kHeadDim + col;
#pragma unroll
        for (int e = 0; e < kPerLane; e += 2) {
          const float2 v = *reinterpret_cast<const float2*>(o + e);
          x[e] += w * v.x;
          x[e + 1] += w * v.y;
        }
      }
    }
    // Every causal row sees key 0, so sum > 0 for a valid row; the guard only keeps a broken input finite.
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int row = qt.row(local);
    if (kAnchors != AnchorOutput::dense_rows && anchor_tile) {
      float* delta = anchor_row<kHeadDim>(p, b, h, row / p.gamma) + col;
#pragma unroll
      for (int e = 0; e < kPerLane; ++e) {
        if constexpr (kAnchors == AnchorOutput::dense_into_delta)
          delta[e] = x[e] * inv;  // dense(anchor); the sparse kernel subtracts sparse(anchor)
        else
          delta[e] += x[e] * inv;  // delta held -sparse(anchor)
      }
      continue;
    }
    const int64_t out_row = out_row_index(p, b, h, row);
#pragma unroll
    for (int e = 0; e < kPerLane; e += 2) store_pair(p, out_row + col + e, x[e] * inv, x[e + 1] * inv);
    if (lane == 0) store_row_lse(p, b, h, row, sum > 0.f ? max_lse + logf(sum) : kNegInf);
  }
}

}  // namespace dattn::cuda::detail
