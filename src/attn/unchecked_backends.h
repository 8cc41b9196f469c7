// The backends' entry points, private to the operator: they assume arguments that dattn::delta_attention
// (src/delta/delta_attention.cpp) has already checked, so nothing else may call them.
// out: Q's shape, any dtype; lse: (batch, h_q, n_q) fp32 view or data == nullptr to skip.
#pragma once
#include "dattn/attn/backends.h"
#include "dattn/attn/params.h"

namespace dattn {

namespace reference {
// Naive, fp64 accumulation, never optimised: the ground truth for every other backend.
void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params);
}  // namespace reference

namespace cpu {
// Tiled online-softmax kernels, fp32 accumulation, multi-threaded, AVX2/FMA.
void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params);
}  // namespace cpu

namespace cuda {
// Device pointers in the views; params.stream is a cudaStream_t.
void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params);
}  // namespace cuda

}  // namespace dattn
