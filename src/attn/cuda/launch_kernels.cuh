// Definitions of the launchers declared in launch.h; included only by the instantiation files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attention_kernels.cuh"
#include "cuda_check.h"
#include "launch.h"
#include "split_kv.h"
#include "ws_kernels.cuh"

namespace dattn::cuda::detail {

template <ElemType kElem>
using ElemOf = std::conditional_t<kElem == ElemType::bf16, __nv_bfloat16, __half>;

template <typename Kernel>
void launch_tiles(Kernel kernel, int threads, int smem_bytes, const AttentionKernelParams& p, int tiles, int slices,
                  cudaStream_t stream, const char* name) {
  if (tiles == 0) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
  const dim3 grid(unsigned(p.batch) * unsigned(p.h_q), unsigned(tiles), unsigned(slices));
  kernel<<<grid, threads, smem_bytes, stream>>>(p);
  check_cuda(cudaGetLastError(), name);
}

// The kernels of either schedule (p.warp_specialized: ws_kernels.cuh) for one AnchorOutput / RowEpilogue:
// each launcher below references only its own instantiations, so that a .cu file compiles only those.
template <typename Elem, int kHeadDim, AnchorOutput kAnchors>
void launch_dense_rows_kernel(const AttentionKernelParams& p, int tiles, int slices, cudaStream_t stream,
                              const char* name) {
  if (p.warp_specialized) {
    using S = WsTileShape<kHeadDim>;
    launch_tiles(dense_rows_ws_kernel<Elem, kHeadDim, kAnchors>, S::kThreads, S::kSmemBytes, p, tiles, slices, stream,
                 name);
    return;
  }
  using S = TileShape<kHeadDim>;
  launch_tiles(dense_rows_kernel<Elem, kHeadDim, kAnchors>, S::kThreads, S::kSmemBytes, p, tiles, slices, stream, name);
}

// Split or not (p.kv_splits, chosen on the host by split_kv.h), then the combine of the partials.
template <typename Elem, int kHeadDim, AnchorOutput kAnchors>
void launch_dense_rows_for(const AttentionKernelParams& p, cudaStream_t stream) {
  const int tiles = p.contiguous_tiles + p.anchor_tiles;
  if (p.kv_splits <= 1) {
    launch_dense_rows_kernel<Elem, kHeadDim, kAnchors>(p, tiles, 1, stream, "launching dense_rows_kernel");
    return;
  }
  launch_dense_rows_kernel<Elem, kHeadDim, kAnchors>(p, tiles, split_kv_slices(p, kAnchors), stream,
                                                     "launching dense_rows_kernel (split keys)");
  launch_tiles(combine_splits_kernel<kHeadDim, kQueryTileRows, kAnchors>, 128, 0, p, tiles, 1, stream,
               "launching combine_splits_kernel");
}

template <ElemType kElem, int kHeadDim>
void launch_dense_rows(AnchorOutput anchors, const AttentionKernelParams& p, cudaStream_t stream) {
  static_assert(TileShape<kHeadDim>::kBlockM == kQueryTileRows && TileShape<kHeadDim>::kBlockN == kKeyTileKeys &&
                TileShape<kHeadDim>::kMinBlocksPerSm == kCtasPerSm &&
                WsTileShape<kHeadDim>::kMinBlocksPerSm == kWsCtasPerSm &&
                WsTileShape<kHeadDim>::kBlockN == kWsKeyTileKeys);
  using Elem = ElemOf<kElem>;
  switch (anchors) {
    case AnchorOutput::dense_rows: return launch_dense_rows_for<Elem, kHeadDim, AnchorOutput::dense_rows>(p, stream);
    case AnchorOutput::delta: return launch_dense_rows_for<Elem, kHeadDim, AnchorOutput::delta>(p, stream);
    case AnchorOutput::dense_into_delta:
      return launch_dense_rows_for<Elem, kHeadDim, AnchorOutput::dense_into_delta>(p, stream);
  }
  unsupported_kernel("dense_rows_kernel: unknown AnchorOutput");
}

template <typename Elem, int kHeadDim, KeyMode kMode, RowEpilogue kEpilogue>
void launch_sparse_rows_for(const AttentionKernelParams& p, cudaStream_t stream) {
  const int tiles = (p.sparse_row_end + kQueryTileRows - 1) / kQueryTileRows;
  const char* name = "launching sparse_rows_kernel";
  if (p.warp_specialized) {
    using S = WsTileShape<kHeadDim>;
    launch_tiles(sparse_rows_ws_kernel<Elem, kHeadDim, kMode, kEpilogue>, S::kThreads, S::kSmemBytes, p, tiles, 1,
                 stream, name);
    return;
  }
  // The host forms Δ in the one-warpgroup window + sink epilogue nowhere (cuda_attention.cpp): not compiled.
  if constexpr (kMode == KeyMode::window_sink && kEpilogue == RowEpilogue::delta_from_tile) {
    unsupported_kernel("sparse_rows_kernel: delta_from_tile with window + sink needs the warp-specialised kernels");
  } else {
    using S = TileShape<kHeadDim>;
    launch_tiles(sparse_rows_kernel<Elem, kHeadDim, kMode, kEpilogue>, S::kThreads, S::kSmemBytes, p, tiles, 1, stream,
                 name);
  }
}

// Only the combinations that occur: block top-k (p.block_list) has no Δ buffer to read (its Δ is always
// formed in the epilogue) and no interpolation.
template <ElemType kElem, int kHeadDim>
void launch_sparse_rows(RowEpilogue epilogue, const AttentionKernelParams& p, cudaStream_t stream) {
  using Elem = ElemOf<kElem>;
  constexpr KeyMode kWs = KeyMode::window_sink, kList = KeyMode::block_list;
  switch (epilogue) {
    case RowEpilogue::skip_anchor_rows:
      return p.block_list ? launch_sparse_rows_for<Elem, kHeadDim, kList, RowEpilogue::skip_anchor_rows>(p, stream)
                          : launch_sparse_rows_for<Elem, kHeadDim, kWs, RowEpilogue::skip_anchor_rows>(p, stream);
    case RowEpilogue::delta_from_tile:
      return p.block_list ? launch_sparse_rows_for<Elem, kHeadDim, kList, RowEpilogue::delta_from_tile>(p, stream)
                          : launch_sparse_rows_for<Elem, kHeadDim, kWs, RowEpilogue::delta_from_tile>(p, stream);
    case RowEpilogue::add_delta:
      if (!p.block_list) return launch_sparse_rows_for<Elem, kHeadDim, kWs, RowEpilogue::add_delta>(p, stream);
      break;
    case RowEpilogue::interpolate:
      if (!p.block_list) return launch_sparse_rows_for<Elem, kHeadDim, kWs, RowEpilogue::interpolate>(p, stream);
      break;
    case RowEpilogue::plain: break;
  }
  unsupported_kernel("sparse_rows_kernel: no instantiation for this epilogue and key mode");
}

}  // namespace dattn::cuda::detail
