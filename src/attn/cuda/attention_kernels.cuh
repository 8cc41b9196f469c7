// The two kernels of the family, both built on attention_tile.cuh:
//  - dense_rows_kernel: query tiles of consecutive rows (dense mode, the dense tail) and tiles of gathered
//    anchor rows, dense over their causal keys. What an anchor tile writes is kAnchors (kernel_params.h):
//    its dense rows, Δ = dense - sparse (after a pass over its sparse keys), or dense alone.
//  - sparse_rows_kernel: window + sink (or block top-k) attention over consecutive rows; its epilogue
//    (kEpilogue) adds each row's Δ or leaves the anchor rows out.
// Both schedule the longest tiles first: blockIdx.y counts from the tile with the most keys down.
// With few tiles the dense-rows kernel splits each tile's keys over blockIdx.z (split_kv.cuh).
#pragma once
#include "attention_tile.cuh"
#include "key_pass.cuh"
#include "split_kv.cuh"

namespace dattn::cuda::detail {

template <typename Elem, int kHeadDim, AnchorOutput kAnchors>
__global__ void __launch_bounds__(TileShape<kHeadDim>::kThreads, TileShape<kHeadDim>::kMinBlocksPerSm)
    dense_rows_kernel(const __grid_constant__ AttentionKernelParams p) {
  using S = TileShape<kHeadDim>;
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  Elem* smem = aligned_smem<Elem>(smem_bytes);
  const int b = blockIdx.x / p.h_q, h = blockIdx.x % p.h_q, kv_head = h / p.group;
  bool anchor_tile;
  const QueryTile qt = dense_rows_tile<S::kBlockM>(p, blockIdx.y, anchor_tile);
  const bool delta_anchors = kAnchors != AnchorOutput::dense_rows && anchor_tile;

  // Split-KV (split_kv.cuh): z < kv_splits runs one chunk of the dense keys into a partial; z == kv_splits
  // is the delta anchors' sparse pass (AnchorOutput::delta). Every return here depends on blockIdx only (no
  // divergent barrier) and comes before any cp.async is issued.
  const bool split = p.kv_splits > 1;
  const int z = blockIdx.z;
  const bool sparse_slice = split && z == p.kv_splits;
  if (sparse_slice && !delta_anchors) return;
  KeyTileRanges dense_keys = dense_key_tiles<S::kBlockN>(qt);
  if (split && !sparse_slice) {
    dense_keys = chunk_key_tiles<S::kBlockN>(p, qt, z);
    if (dense_keys.begin0 == dense_keys.end0) {
      store_empty_split<S::kBlockM, S::kThreads>(p, qt, blockIdx.x, blockIdx.y, z);
      return;
    }
  }

  const Elem* k_base = head_base<Elem>(p.k, b, kv_head);
  const Elem* v_base = head_base<Elem>(p.v, b, kv_head);
  constexpr int kM = S::kMTiles;
  int pos[kM][2];
  load_query_tile<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);

  SoftmaxAccumulator<kHeadDim> acc;
  float lse[kM][2];
  // (AnchorOutput::dense_into_delta: the sparse kernel subtracts sparse(anchor) itself)
  if constexpr (kAnchors == AnchorOutput::delta) {
    if (delta_anchors && (!split || sparse_slice)) {
      acc.reset();
      attend_key_tiles<Elem, kHeadDim, KeyMode::window_sink, kDenseRowsPvWgmma>(
          p, qt, sparse_key_tiles<S::kBlockN>(p, qt), k_base, v_base, pos, smem, acc);
      acc.finish(p.scale_log2, lse);
      write_anchor_delta<AnchorDeltaWrite::minus_sparse>(p, qt, b, h, acc);
      if (sparse_slice) return;
    }
  }

  acc.reset();
  attend_key_tiles<Elem, kHeadDim, KeyMode::dense, kDenseRowsPvWgmma>(p, qt, dense_keys, k_base, v_base, pos, smem, acc);
  acc.finish(p.scale_log2, lse);
  if (split) {
    store_split_partial(p, qt, blockIdx.x, blockIdx.y, z, acc, lse);
    return;
  }
  if (delta_anchors) {
    write_anchor_delta<kDenseAnchorWrite<kAnchors>>(p, qt, b, h, acc);
    return;
  }
  store_rows<RowEpilogue::plain>(p, qt, b, h, acc, lse);
}

// kMode: window_sink, or block_list (block top-k's listed key units). kEpilogue: any RowEpilogue but plain.
template <typename Elem, int kHeadDim, KeyMode kMode, RowEpilogue kEpilogue>
__global__ void __launch_bounds__(TileShape<kHeadDim>::kThreads, TileShape<kHeadDim>::kMinBlocksPerSm)
    sparse_rows_kernel(const __grid_constant__ AttentionKernelParams p) {
  using S = TileShape<kHeadDim>;
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  Elem* smem = aligned_smem<Elem>(smem_bytes);
  const int b = blockIdx.x / p.h_q, h = blockIdx.x % p.h_q, kv_head = h / p.group;
  const int t = int(gridDim.y) - 1 - int(blockIdx.y);
  const int first = t * S::kBlockM;
  const QueryTile qt = make_query_tile(p, first, 1, min(S::kBlockM, p.sparse_row_end - first));
  const KeyTileRanges keys = kMode == KeyMode::block_list ? listed_key_units(p, b, kv_head, t)
                                                          : sparse_key_tiles<S::kBlockN>(p, qt);

  int pos[S::kMTiles][2];
  load_query_tile<Elem, kHeadDim>(p, qt, head_base<Elem>(p.q, b, h), smem, pos);
  SoftmaxAccumulator<kHeadDim> acc;
  acc.reset();
  attend_key_tiles<Elem, kHeadDim, kMode, kSparseRowsPvWgmma>(p, qt, keys, head_base<Elem>(p.k, b, kv_head),
                                                              head_base<Elem>(p.v, b, kv_head), pos, smem, acc);
  float lse[S::kMTiles][2];
  acc.finish(p.scale_log2, lse);
  if constexpr (kEpilogue == RowEpilogue::delta_from_tile) {
    // the anchors' sparse rows go through shared memory ((128 / gamma) x head_dim floats, free once the key
    // loop's last barrier passed): every row's anchor lies in the same tile
    float* staged = reinterpret_cast<float*>(smem);
    const auto slot = [&](int local, int col) { return staged + (local / p.gamma) * kHeadDim + col; };
    stage_anchor_rows(p, qt, acc, slot);
    __syncthreads();
    store_rows<kEpilogue>(p, qt, b, h, acc, lse, [&](int local, int col, float, float) {
      return *reinterpret_cast<const float2*>(slot(local, col));
    });
  } else {
    store_rows<kEpilogue>(p, qt, b, h, acc, lse);
  }
}

}  // namespace dattn::cuda::detail
