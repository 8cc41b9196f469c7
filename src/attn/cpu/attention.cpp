// Temporary CPU entry point until the tiled kernels land: forwards to the reference.
#include "dattn/attn/backends.h"

namespace dattn::cpu {
void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params) {
  reference::attention(q, k, v, out, lse, params);
}
}  // namespace dattn::cpu
