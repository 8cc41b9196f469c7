// Definitions of the launchers declared in launch.h; included only by the instantiation files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attention_kernels.cuh"
#include "cuda_check.h"
#include "launch.h"
#include "split_kv.h"

namespace dattn::cuda::detail {

template <ElemType kElem>
using ElemOf = std::conditional_t<kElem == ElemType::bf16, __nv_bfloat16, __half>;

template <typename Kernel>
void launch_tiles(Kernel kernel, int smem_bytes, const AttentionKernelParams& p, int tiles, int slices,
                  cudaStream_t stream, const char* name) {
  if (tiles == 0) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
  const dim3 grid(unsigned(p.batch) * unsigned(p.h_q), unsigned(tiles), unsigned(slices));
  kernel<<<grid, TileShape<64>::kThreads, smem_bytes, stream>>>(p);
  check_cuda(cudaGetLastError(), name);
}

// Split or not (p.kv_splits, chosen on the host by split_kv.h), then the combine of the partials.
template <ElemType kElem, int kHeadDim>
void launch_dense_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  static_assert(TileShape<kHeadDim>::kBlockM == kQueryTileRows && TileShape<kHeadDim>::kBlockN == kKeyTileKeys &&
                TileShape<kHeadDim>::kMinBlocksPerSm == kCtasPerSm);
  const int tiles = p.contiguous_tiles + p.anchor_tiles;
  if (p.kv_splits <= 1) {
    launch_tiles(dense_rows_kernel<ElemOf<kElem>, kHeadDim>, TileShape<kHeadDim>::kSmemBytes, p, tiles, 1, stream,
                 "launching dense_rows_kernel");
    return;
  }
  launch_tiles(dense_rows_kernel<ElemOf<kElem>, kHeadDim>, TileShape<kHeadDim>::kSmemBytes, p, tiles,
               split_kv_slices(p), stream, "launching dense_rows_kernel (split keys)");
  launch_tiles(combine_splits_kernel<kHeadDim, kQueryTileRows>, 0, p, tiles, 1, stream,
               "launching combine_splits_kernel");
}

template <ElemType kElem, int kHeadDim>
void launch_sparse_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  const int tiles = (p.sparse_row_end + kQueryTileRows - 1) / kQueryTileRows;
  launch_tiles(sparse_rows_kernel<ElemOf<kElem>, kHeadDim>, TileShape<kHeadDim>::kSmemBytes, p, tiles, 1, stream,
               "launching sparse_rows_kernel");
}

}  // namespace dattn::cuda::detail
