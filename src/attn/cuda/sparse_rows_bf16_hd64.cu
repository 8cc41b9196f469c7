// One instantiation per file keeps each nvcc job small.
#include "launch_kernels.cuh"
namespace dattn::cuda::detail {
template void launch_sparse_rows<ElemType::bf16, 64>(RowEpilogue, const AttentionKernelParams&, cudaStream_t);
}
