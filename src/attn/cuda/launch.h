// Launchers of the kernel family, one explicit instantiation per (element type, head_dim) in its own
// small .cu file. Private header: the public API never sees CUDA types.
#pragma once
#include <cuda_runtime.h>

#include "kernel_params.h"

#ifndef DATTN_CUDA_M_TILES
#define DATTN_CUDA_M_TILES 2
#endif

namespace dattn::cuda::detail {

enum class ElemType { bf16, f16 };

// Query tiles of consecutive rows and of gathered anchors, dense over causal keys (see attention_kernels.cuh);
// the anchor tiles write what `anchors` says.
template <ElemType kElem, int kHeadDim>
void launch_dense_rows(AnchorOutput anchors, const AttentionKernelParams& p, cudaStream_t stream);

// Window + sink (or, with p.block_list, block top-k) rows [0, p.sparse_row_end), written per `epilogue`
// (not plain).
template <ElemType kElem, int kHeadDim>
void launch_sparse_rows(RowEpilogue epilogue, const AttentionKernelParams& p, cudaStream_t stream);

// Whether the current device runs this build's sm_90a code (wgmma, TMA, the warp-specialised kernels):
// false on a Hopper when the build holds only sm_80 code, which the driver then JIT-compiles from its PTX
// (the kernels' PTX version is 80, not 90). Queried once per device.
bool hopper_kernels_loaded();

inline constexpr int kQueryTileRows = 64 * DATTN_CUDA_M_TILES;  // TileShape::kBlockM, needed by the host to size grids

}  // namespace dattn::cuda::detail
