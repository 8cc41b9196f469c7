// Definitions of the launchers declared in launch.h; included only by the instantiation files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attention_kernels.cuh"
#include "cuda_check.h"
#include "launch.h"

namespace dattn::cuda::detail {

template <ElemType kElem>
using ElemOf = std::conditional_t<kElem == ElemType::bf16, __nv_bfloat16, __half>;

template <typename Kernel>
void launch_tiles(Kernel kernel, int smem_bytes, const AttentionKernelParams& p, int tiles, cudaStream_t stream,
                  const char* name) {
  if (tiles == 0) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
  const dim3 grid(unsigned(p.batch) * unsigned(p.h_q), unsigned(tiles));
  kernel<<<grid, TileShape<64>::kThreads, smem_bytes, stream>>>(p);
  check_cuda(cudaGetLastError(), name);
}

template <ElemType kElem, int kHeadDim>
void launch_dense_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  static_assert(TileShape<kHeadDim>::kBlockM == kQueryTileRows);
  launch_tiles(dense_rows_kernel<ElemOf<kElem>, kHeadDim>, TileShape<kHeadDim>::kSmemBytes, p,
               p.contiguous_tiles + p.anchor_tiles, stream, "launching dense_rows_kernel");
}

template <ElemType kElem, int kHeadDim>
void launch_sparse_rows(const AttentionKernelParams& p, cudaStream_t stream) {
  const int tiles = (p.sparse_row_end + kQueryTileRows - 1) / kQueryTileRows;
  launch_tiles(sparse_rows_kernel<ElemOf<kElem>, kHeadDim>, TileShape<kHeadDim>::kSmemBytes, p, tiles, stream,
               "launching sparse_rows_kernel");
}

}  // namespace dattn::cuda::detail
