// The warp-specialised sm_90a twins of attention_kernels.cuh (same work split and grids), built on
// ws_key_pass.cuh: one thread of a producer warpgroup issues every K/V tile of the CTA's key passes by
// TMA, two consumer warpgroups of 64 rows compute. Used when the K/V tiles can come by TMA on a Hopper
// (p.warp_specialized); the sm_80 binary holds only a trap (the host never launches it there).
// The bodies take their work item as arguments (not blockIdx), so that a persistent or fused schedule can
// reuse them.
#pragma once
#include "attention_tile.cuh"
#include "split_kv.cuh"
#include "ws_key_pass.cuh"

namespace dattn::cuda::detail {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Dense-rows tile `tile` of head bh (longest first, as dense_rows_kernel's blockIdx.y), key chunk `split`.
// Returns depend on the arguments only (no divergent barrier).
template <typename Elem, int kHeadDim, AnchorOutput kAnchors>
__device__ __forceinline__ void dense_rows_ws_work(const AttentionKernelParams& p, int bh, int tile, int split,
                                                   Elem* smem) {
  using S = WsTileShape<kHeadDim>;
  const int b = bh / p.h_q, h = bh % p.h_q, kv_head = h / p.group;
  bool anchor_tile;
  const QueryTile qt = dense_rows_tile<S::kBlockM>(p, tile, anchor_tile);
  const bool delta_anchors = kAnchors != AnchorOutput::dense_rows && anchor_tile;

  // The passes of dense_rows_kernel: the delta anchors' sparse pass (unsplit, or its own z-slice), then
  // the dense keys (all, or chunk `split`).
  const bool splits = p.kv_splits > 1;
  const bool sparse_slice = splits && split == p.kv_splits;
  if (sparse_slice && !delta_anchors) return;
  KeyTileRanges dense_keys = dense_key_tiles<S::kBlockN>(qt);
  if (splits && !sparse_slice) {
    dense_keys = chunk_key_tiles<S::kBlockN>(p, qt, split);
    if (dense_keys.begin0 == dense_keys.end0) {
      store_empty_split<S::kBlockM, S::kThreads>(p, qt, bh, tile, split);
      return;
    }
  }
  // the anchors' sparse pass: only AnchorOutput::delta has one (a constant, so that the other
  // instantiations hold no window + sink key pass)
  constexpr bool kSparsePass = kAnchors == AnchorOutput::delta;
  const bool sparse_pass = kSparsePass && delta_anchors && (!splits || sparse_slice);
  const bool dense_pass = !sparse_slice;
  const KeyTileRanges sparse_keys = sparse_key_tiles<S::kBlockN>(p, qt);

  KvRing<Elem, kHeadDim> ring(smem);
  if (threadIdx.x == 0) ring.init();
  __syncthreads();  // the last CTA-wide barrier: the producer warpgroup leaves when its copies are issued
  if (threadIdx.x / 128 == S::kProducerWarpgroup) {
    release_registers<S::kProducerRegisters>();
    if (threadIdx.x % 128 == 0) {
      if constexpr (kSparsePass)
        if (sparse_pass) produce_key_tiles<Elem, kHeadDim, KeyMode::window_sink>(p, qt, sparse_keys, b, kv_head, ring);
      if (dense_pass) produce_key_tiles<Elem, kHeadDim, KeyMode::dense>(p, qt, dense_keys, b, kv_head, ring);
    }
    return;
  }
  claim_registers<S::kConsumerRegisters>();

  int pos[1][2];
  ws_load_query_rows<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);
  SoftmaxAccumulator<kHeadDim, 1> acc;
  float lse[1][2];
  IssueTurns::start();
  if constexpr (kSparsePass) {
    if (sparse_pass) {
      acc.reset();
      ws_attend_key_tiles<Elem, kHeadDim, KeyMode::window_sink>(p, qt, sparse_keys, pos, smem, ring, acc);
      acc.finish(p.scale_log2, lse);
      write_anchor_delta<AnchorDeltaWrite::minus_sparse>(p, qt, b, h, acc);
    }
  }
  if (dense_pass) {
    acc.reset();
    ws_attend_key_tiles<Elem, kHeadDim, KeyMode::dense>(p, qt, dense_keys, pos, smem, ring, acc);
  }
  IssueTurns::finish();
  if (!dense_pass) return;
  acc.finish(p.scale_log2, lse);
  if (splits) {
    store_split_partial(p, qt, bh, tile, split, acc, lse);
  } else if (delta_anchors) {
    write_anchor_delta<kDenseAnchorWrite<kAnchors>>(p, qt, b, h, acc);
  } else {
    store_rows<RowEpilogue::plain>(p, qt, b, h, acc, lse);
  }
}

// RowEpilogue::delta_from_tile: each row gets Δ = dense(a) - sparse(a) of its anchor a, which starts a
// block inside the same warpgroup's 64 rows (gamma divides 64). The anchors' sparse rows go through the
// warpgroup's own Q rows in shared memory, free once its last wgmma is done: head_dim / 64 column blocks
// of 64 x 64 elements, i.e. 32 fp32 rows of 64 columns each (gamma >= 2; with gamma = 1 every row is its
// own anchor and needs no staging).
template <typename Elem, int kHeadDim>
__device__ __forceinline__ void store_rows_delta_from_tile(const AttentionKernelParams& p, const QueryTile& qt, int b,
                                                           int h, const SoftmaxAccumulator<kHeadDim, 1>& acc,
                                                           const float (&lse)[1][2], Elem* smem) {
  using S = WsTileShape<kHeadDim>;
  const int group = threadIdx.x / 128;
  const auto slot = [&](int local, int col) {  // the staged pair of local row `local`'s anchor
    float* column_block = reinterpret_cast<float*>(smem + (col / 64) * S::kBlockM * 64 + group * 64 * 64);
    return column_block + (local % 64) / p.gamma * 64 + col % 64;
  };
  const bool own_anchor = p.gamma == 1;
  if (!own_anchor) {
    stage_anchor_rows(p, qt, acc, slot);
    named_barrier_sync(1 + group, 128);
  }
  store_rows<RowEpilogue::delta_from_tile>(p, qt, b, h, acc, lse, [&](int local, int col, float x0, float x1) {
    return own_anchor ? make_float2(x0, x1) : *reinterpret_cast<const float2*>(slot(local, col));
  });
}

// Sparse tile `t` (rows 128 t ...) of head bh; kMode: window_sink or block_list; kEpilogue: not plain.
template <typename Elem, int kHeadDim, KeyMode kMode, RowEpilogue kEpilogue>
__device__ __forceinline__ void sparse_rows_ws_work(const AttentionKernelParams& p, int bh, int t, Elem* smem) {
  using S = WsTileShape<kHeadDim>;
  const int b = bh / p.h_q, h = bh % p.h_q, kv_head = h / p.group;
  const int first = t * S::kBlockM;
  const QueryTile qt = make_query_tile(p, first, 1, min(S::kBlockM, p.sparse_row_end - first));
  const KeyTileRanges keys =
      kMode == KeyMode::block_list ? listed_key_units(p, b, kv_head, t) : sparse_key_tiles<S::kBlockN>(p, qt);

  KvRing<Elem, kHeadDim> ring(smem);
  if (threadIdx.x == 0) ring.init();
  __syncthreads();
  if (threadIdx.x / 128 == S::kProducerWarpgroup) {
    release_registers<S::kProducerRegisters>();
    if (threadIdx.x % 128 == 0) produce_key_tiles<Elem, kHeadDim, kMode>(p, qt, keys, b, kv_head, ring);
    return;
  }
  claim_registers<S::kConsumerRegisters>();
  int pos[1][2];
  ws_load_query_rows<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);
  SoftmaxAccumulator<kHeadDim, 1> acc;
  acc.reset();
  IssueTurns::start();
  ws_attend_key_tiles<Elem, kHeadDim, kMode>(p, qt, keys, pos, smem, ring, acc);
  IssueTurns::finish();
  float lse[1][2];
  acc.finish(p.scale_log2, lse);
  if constexpr (kEpilogue == RowEpilogue::delta_from_tile)
    store_rows_delta_from_tile<Elem, kHeadDim>(p, qt, b, h, acc, lse, smem);
  else
    store_rows<kEpilogue>(p, qt, b, h, acc, lse);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <typename Elem, int kHeadDim, AnchorOutput kAnchors>
__global__ void __launch_bounds__(WsTileShape<kHeadDim>::kThreads, WsTileShape<kHeadDim>::kMinBlocksPerSm)
    dense_rows_ws_kernel(const __grid_constant__ AttentionKernelParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  dense_rows_ws_work<Elem, kHeadDim, kAnchors>(p, blockIdx.x, blockIdx.y, blockIdx.z, aligned_smem<Elem>(smem_bytes));
#else
  __trap();
#endif
}

template <typename Elem, int kHeadDim, KeyMode kMode, RowEpilogue kEpilogue>
__global__ void __launch_bounds__(WsTileShape<kHeadDim>::kThreads, WsTileShape<kHeadDim>::kMinBlocksPerSm)
    sparse_rows_ws_kernel(const __grid_constant__ AttentionKernelParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  // the longest tiles (the last rows) first, as sparse_rows_kernel
  sparse_rows_ws_work<Elem, kHeadDim, kMode, kEpilogue>(p, blockIdx.x, int(gridDim.y) - 1 - int(blockIdx.y),
                                                        aligned_smem<Elem>(smem_bytes));
#else
  __trap();
#endif
}

}  // namespace dattn::cuda::detail
