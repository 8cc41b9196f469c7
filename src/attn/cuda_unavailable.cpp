// The cuda backend of a build without CUDA: reports that clearly instead of failing later.
#include "dattn/core/error.h"
#include "unchecked_backends.h"

namespace dattn::cuda {
bool available() { return false; }
void attention(const TensorView&, const TensorView&, const TensorView&, const TensorView&, const TensorView&,
               const AttentionParams&) {
  fail("backend 'cuda' requested but dattn was built without CUDA (configure with -DDATTN_CUDA=ON)");
}
}  // namespace dattn::cuda
