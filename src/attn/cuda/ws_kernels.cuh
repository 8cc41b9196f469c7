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
template <typename Elem, int kHeadDim>
__device__ __forceinline__ void dense_rows_ws_work(const AttentionKernelParams& p, int bh, int tile, int split,
                                                   Elem* smem) {
  using S = WsTileShape<kHeadDim>;
  const int b = bh / p.h_q, h = bh % p.h_q, kv_head = h / p.group;
  bool anchor_tile;
  const QueryTile qt = dense_rows_tile<S::kBlockM>(p, tile, anchor_tile);
  const bool delta_anchors = anchor_tile && p.anchors_to_delta;

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
  const bool sparse_pass = delta_anchors && (!splits || sparse_slice);
  const bool dense_pass = !sparse_slice;
  const KeyTileRanges sparse_keys = sparse_key_tiles<S::kBlockN>(p, qt);

  KvRing<Elem, kHeadDim> ring(smem);
  if (threadIdx.x == 0) ring.init();
  __syncthreads();  // the last CTA-wide barrier: the producer warpgroup leaves when its copies are issued
  if (threadIdx.x / 128 == S::kProducerWarpgroup) {
    release_registers<S::kProducerRegisters>();
    if (threadIdx.x % 128 == 0) {
      if (sparse_pass) produce_key_tiles<Elem, kHeadDim, true>(p, qt, sparse_keys, b, kv_head, ring);
      if (dense_pass) produce_key_tiles<Elem, kHeadDim, false>(p, qt, dense_keys, b, kv_head, ring);
    }
    return;
  }
  claim_registers<S::kConsumerRegisters>();

  int pos[1][2];
  ws_load_query_rows<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);
  SoftmaxAccumulator<kHeadDim, 1> acc;
  float lse[1][2];
  IssueTurns::start();
  if (sparse_pass) {
    acc.reset();
    ws_attend_key_tiles<Elem, kHeadDim, true>(p, qt, sparse_keys, pos, smem, ring, acc);
    acc.finish(p.scale_log2, lse);
    store_minus_sparse_delta(p, qt, b, h, acc);
  }
  if (dense_pass) {
    acc.reset();
    ws_attend_key_tiles<Elem, kHeadDim, false>(p, qt, dense_keys, pos, smem, ring, acc);
  }
  IssueTurns::finish();
  if (!dense_pass) return;
  acc.finish(p.scale_log2, lse);
  if (splits) {
    store_split_partial(p, qt, bh, tile, split, acc, lse);
  } else if (delta_anchors) {
    add_dense_to_delta(p, qt, b, h, acc);
  } else {
    store_rows<kHeadDim>(p, qt, b, h, acc, lse, /*add_delta=*/false, /*skip_anchor_rows=*/false);
  }
}

// Sparse tile `t` (rows 128 t ...) of head bh.
template <typename Elem, int kHeadDim>
__device__ __forceinline__ void sparse_rows_ws_work(const AttentionKernelParams& p, int bh, int t, Elem* smem) {
  using S = WsTileShape<kHeadDim>;
  const int b = bh / p.h_q, h = bh % p.h_q, kv_head = h / p.group;
  const int first = t * S::kBlockM;
  const QueryTile qt = make_query_tile(p, first, 1, min(S::kBlockM, p.sparse_row_end - first));
  const KeyTileRanges keys = sparse_key_tiles<S::kBlockN>(p, qt);

  KvRing<Elem, kHeadDim> ring(smem);
  if (threadIdx.x == 0) ring.init();
  __syncthreads();
  if (threadIdx.x / 128 == S::kProducerWarpgroup) {
    release_registers<S::kProducerRegisters>();
    if (threadIdx.x % 128 == 0) produce_key_tiles<Elem, kHeadDim, true>(p, qt, keys, b, kv_head, ring);
    return;
  }
  claim_registers<S::kConsumerRegisters>();
  int pos[1][2];
  ws_load_query_rows<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);
  SoftmaxAccumulator<kHeadDim, 1> acc;
  acc.reset();
  IssueTurns::start();
  ws_attend_key_tiles<Elem, kHeadDim, true>(p, qt, keys, pos, smem, ring, acc);
  IssueTurns::finish();
  float lse[1][2];
  acc.finish(p.scale_log2, lse);
  store_rows<kHeadDim>(p, qt, b, h, acc, lse, p.add_delta, p.skip_anchor_rows);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <typename Elem, int kHeadDim>
__global__ void __launch_bounds__(WsTileShape<kHeadDim>::kThreads, WsTileShape<kHeadDim>::kMinBlocksPerSm)
    dense_rows_ws_kernel(const __grid_constant__ AttentionKernelParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  dense_rows_ws_work<Elem, kHeadDim>(p, blockIdx.x, blockIdx.y, blockIdx.z, aligned_smem<Elem>(smem_bytes));
#else
  __trap();
#endif
}

template <typename Elem, int kHeadDim>
__global__ void __launch_bounds__(WsTileShape<kHeadDim>::kThreads, WsTileShape<kHeadDim>::kMinBlocksPerSm)
    sparse_rows_ws_kernel(const __grid_constant__ AttentionKernelParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  // the longest tiles (the last rows) first, as sparse_rows_kernel
  sparse_rows_ws_work<Elem, kHeadDim>(p, blockIdx.x, int(gridDim.y) - 1 - int(blockIdx.y),
                                      aligned_smem<Elem>(smem_bytes));
#else
  __trap();
#endif
}

}  // namespace dattn::cuda::detail
