// The two kernels of the family, both built on attention_tile.cuh:
//  - dense_rows_kernel: query tiles of consecutive rows (dense mode, the dense tail) and tiles of gathered
//    anchor rows, dense over their causal keys. In delta mode an anchor tile also runs its sparse keys and
//    writes Δ = dense - sparse into p.delta; in recompute mode it writes the anchors' dense rows.
//  - sparse_rows_kernel: window + sink attention over consecutive rows; its epilogue adds each row's Δ.
// Both schedule the longest tiles first: blockIdx.y counts from the tile with the most keys down.
// With few tiles the dense-rows kernel splits each tile's keys over blockIdx.z (split_kv.cuh).
#pragma once
#include "attention_tile.cuh"
#include "key_pass.cuh"
#include "split_kv.cuh"

namespace dattn::cuda::detail {

template <typename Elem, int kHeadDim>
__global__ void __launch_bounds__(TileShape<kHeadDim>::kThreads, TileShape<kHeadDim>::kMinBlocksPerSm)
    dense_rows_kernel(const __grid_constant__ AttentionKernelParams p) {
  using S = TileShape<kHeadDim>;
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  Elem* smem = aligned_smem<Elem>(smem_bytes);
  const int b = blockIdx.x / p.h_q, h = blockIdx.x % p.h_q, kv_head = h / p.group;
  bool anchor_tile;
  const QueryTile qt = dense_rows_tile<S::kBlockM>(p, blockIdx.y, anchor_tile);
  const bool delta_anchors = anchor_tile && p.anchors_to_delta;

  // Split-KV (split_kv.cuh): z < kv_splits runs one chunk of the dense keys into a partial; z == kv_splits
  // is the delta anchors' sparse pass. Every return here depends on blockIdx only (no divergent barrier)
  // and comes before any cp.async is issued.
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
  // With p.delta_in_sparse_epilogue the sparse kernel subtracts sparse(anchor) itself.
  if (delta_anchors && !p.delta_in_sparse_epilogue && (!split || sparse_slice)) {
    acc.reset();
    attend_key_tiles<Elem, kHeadDim, KeyMode::window_sink, kDenseRowsPvWgmma>(
        p, qt, sparse_key_tiles<S::kBlockN>(p, qt), k_base, v_base, pos, smem, acc);
    acc.finish(p.scale_log2, lse);
    write_anchor_delta<AnchorDeltaWrite::minus_sparse>(p, qt, b, h, acc);
    if (sparse_slice) return;
  }

  acc.reset();
  attend_key_tiles<Elem, kHeadDim, KeyMode::dense, kDenseRowsPvWgmma>(p, qt, dense_keys, k_base, v_base, pos, smem, acc);
  acc.finish(p.scale_log2, lse);
  if (split) {
    store_split_partial(p, qt, blockIdx.x, blockIdx.y, z, acc, lse);
    return;
  }
  if (delta_anchors) {
    if (p.delta_in_sparse_epilogue)
      write_anchor_delta<AnchorDeltaWrite::dense>(p, qt, b, h, acc);
    else
      write_anchor_delta<AnchorDeltaWrite::add_dense>(p, qt, b, h, acc);
    return;
  }
  store_rows<kHeadDim>(p, qt, b, h, acc, lse, /*add_delta=*/false, /*skip_anchor_rows=*/false);
}

// kMode: window_sink, or block_list (block top-k's listed key units; Δ formed in the epilogue).
template <typename Elem, int kHeadDim, KeyMode kMode>
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
  if (p.add_delta && p.delta_in_sparse_epilogue)
    store_rows_delta_staged<kHeadDim>(p, qt, b, h, acc, lse, reinterpret_cast<float*>(smem));
  else
    store_rows<kHeadDim>(p, qt, b, h, acc, lse, p.add_delta, p.skip_anchor_rows);
}

}  // namespace dattn::cuda::detail
