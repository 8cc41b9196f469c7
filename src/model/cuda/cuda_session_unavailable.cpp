// The GPU session entry points of a build without CUDA: a clear error instead of a missing symbol.
#include "dattn/core/error.h"
#include "dattn/model/cuda_session.h"

namespace dattn::model {

bool cuda_session_available() { return false; }

std::unique_ptr<InferenceSession> make_cuda_session(const std::filesystem::path&, SessionOptions) {
  fail("--device cuda: dattn was built without CUDA (configure with -DDATTN_CUDA=ON); use --device cpu");
}

std::unique_ptr<ForwardBackend> make_cuda_forward(const ModelConfig&, const Checkpoint&, const CudaForwardOptions&) {
  fail("device cuda: dattn was built without CUDA (configure with -DDATTN_CUDA=ON); use the cpu");
}

uint64_t cuda_kv_bytes_per_token(const ModelConfig&) {
  fail("device cuda: dattn was built without CUDA (configure with -DDATTN_CUDA=ON); use the cpu");
}

}  // namespace dattn::model
