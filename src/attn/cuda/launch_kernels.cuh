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

// The dense-rows or sparse-rows kernel of either schedule (p.warp_specialized: ws_kernels.cuh); the sparse
// rows walk window + sink or, with p.block_list, block top-k's listed key units.
template <typename Elem, int kHeadDim>
void launch_rows_kernel(bool dense_rows, const AttentionKernelParams& p, int tiles, int slices, cudaStream_t stream,
                        const char* name) {
  if (p.warp_specialized) {
    using S = WsTileShape<kHeadDim>;
    auto kernel = dense_rows       ? dense_rows_ws_kernel<Elem, kHeadDim>
                  : p.block_list ? sparse_rows_ws_kernel<Elem, kHeadDim, KeyMode::block_list>
                                 : sparse_rows_ws_kernel<Elem, kHeadDim, KeyMode::window_sink>;
    launch_tiles(kernel, S::kThreads, S::kSmemBytes, p, tiles, slices, stream, name);
    return;
  }
  using S = TileShape<kHeadDim>;
  auto kernel = dense_rows       ? dense_rows_kernel<Elem, kHeadDim>
                : p.block_list ? sparse_rows_kernel<Elem, kHeadDim, KeyMode::block_list>
                               : sparse_rows_kernel<Elem, kHeadDim, KeyMode::window_sink>;
  launch_tiles(kernel, S::kThreads, S::kSmemBytes, p, tiles, slices, stream, name);
}

// Split or not (p.kv_splits, chosen on the host by split_kv.h), then the combine of the partials.
template <ElemType kElem, int kHeadDim>
void launch_dense_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  static_assert(TileShape<kHeadDim>::kBlockM == kQueryTileRows && TileShape<kHeadDim>::kBlockN == kKeyTileKeys &&
                TileShape<kHeadDim>::kMinBlocksPerSm == kCtasPerSm &&
                WsTileShape<kHeadDim>::kMinBlocksPerSm == kWsCtasPerSm &&
                WsTileShape<kHeadDim>::kBlockN == kWsKeyTileKeys);
  const int tiles = p.contiguous_tiles + p.anchor_tiles;
  if (p.kv_splits <= 1) {
    launch_rows_kernel<ElemOf<kElem>, kHeadDim>(true, p, tiles, 1, stream, "launching dense_rows_kernel");
    return;
  }
  launch_rows_kernel<ElemOf<kElem>, kHeadDim>(true, p, tiles, split_kv_slices(p), stream,
                                              "launching dense_rows_kernel (split keys)");
  launch_tiles(combine_splits_kernel<kHeadDim, kQueryTileRows>, 128, 0, p, tiles, 1, stream,
               "launching combine_splits_kernel");
}

template <ElemType kElem, int kHeadDim>
void launch_sparse_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  const int tiles = (p.sparse_row_end + kQueryTileRows - 1) / kQueryTileRows;
  launch_rows_kernel<ElemOf<kElem>, kHeadDim>(false, p, tiles, 1, stream, "launching sparse_rows_kernel");
}

}  // namespace dattn::cuda::detail
