// One instantiation per file keeps each nvcc job small.
#include "launch_kernels.cuh"
namespace dattn::cuda::detail {
template void launch_dense_rows<ElemType::f16, 64>(AnchorOutput, const AttentionKernelParams&, cudaStream_t);
}
