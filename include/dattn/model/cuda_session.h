// One inference stream on the GPU: the model's weights uploaded once as bf16, a bf16 KV cache
// preallocated on the device for the context, chunked prefill through the Delta Attention operator's cuda
// backend and dense single-token decode. No CUDA header here: the device state lives behind a pimpl.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dattn/model/config.h"
#include "dattn/model/forward.h"
#include "dattn/model/safetensors.h"
#include "dattn/model/session.h"

namespace dattn::model {

// Device memory the session owns, in bytes, and the most the device had in use while it ran.
struct DeviceMemoryReport {
  uint64_t weights = 0;
  uint64_t kv_cache = 0;
  uint64_t workspace = 0;      // activations of one chunk and the logits block
  uint64_t peak_in_use = 0;    // cudaMemGetInfo total - free, sampled after upload and after every forward pass
};

// True when this build has the GPU forward pass and a CUDA device is present.
bool cuda_session_available();

// A CudaSession for the model directory (config.json + safetensors), or a dattn::Error saying why not
// (no GPU, a build without CUDA). Lets the CLI pick the device without naming CUDA types.
std::unique_ptr<InferenceSession> make_cuda_session(const std::filesystem::path& model_dir, SessionOptions options);

// The device forward pass of a serving engine: weights on the GPU, a paged bf16 KV pool, batches of many
// sequences (forward.h). logits() leaves the host logits complete.
struct CudaForwardOptions {
  int64_t num_blocks = 1, block_tokens = 1;  // the KV pool
  int64_t max_rows = 1;                      // rows of one batch
  int64_t max_sequences = 1;                 // sequences of one batch
  int64_t max_context = 1;                   // tokens of the longest sequence
};
std::unique_ptr<ForwardBackend> make_cuda_forward(const ModelConfig& config, const Checkpoint& weights,
                                                  const CudaForwardOptions& options);
// Device KV bytes per token of every layer (K and V, bf16, head_dim padded to the kernels').
uint64_t cuda_kv_bytes_per_token(const ModelConfig& config);

class CudaSession final : public InferenceSession {
 public:
  // Converts every weight to bf16 on upload (f32/f16/bf16 checkpoints); the checkpoint may be closed after.
  // SessionOptions::num_threads is unused. Throws dattn::Error on an unsupported config (head_dim > 128),
  // a missing tensor or when the device memory does not suffice (the message gives the sizes).
  CudaSession(const ModelConfig& config, const Checkpoint& weights, SessionOptions options);
  ~CudaSession() override;
  CudaSession(const CudaSession&) = delete;
  CudaSession& operator=(const CudaSession&) = delete;

  std::vector<float> prefill(std::span<const int32_t> ids, const PrefillOptions& options = {}) override;
  std::vector<float> decode(int32_t id) override;
  void set_attention(AttentionPlan plan) override;
  int64_t position() const override;
  int64_t context() const override;
  uint64_t kv_cache_bytes() const override;
  uint64_t peak_device_bytes() const override;
  std::vector<LayerAnchorGap> anchor_gaps() const override;
  void reset() override;
  const ModelConfig& config() const;
  DeviceMemoryReport memory() const;
  // GPU time per stage of the forward pass (gemm qkv, attention, norms, ...), measured with CUDA events
  // while enabled (off by default: the events cost a little); take_profile returns the milliseconds
  // since the last call and clears them.
  void set_profiling(bool enabled);
  std::vector<std::pair<std::string, double>> take_profile();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dattn::model
