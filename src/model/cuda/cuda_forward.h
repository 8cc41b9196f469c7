// The GPU backend of the forward pass (forward.h): bf16 weights and activations, fp32 residual stream and
// accumulation, one CUDA stream; K/V in a paged bf16 pool per layer (num_blocks, block_tokens, h_kv,
// padded_head_dim). A batch's decode rows come first (forward.h's engine order) and go through the
// paged split-KV decode kernel together; prefill rows go through the operator's cuda backend over the
// sequence's K/V (read in place when its blocks follow each other, else gathered). CudaSession is the
// special case of one block of `context` tokens. Private header of dattn_model_cuda.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dattn/model/cuda_session.h"
#include "dattn/model/forward.h"
#include "device_buffer.h"
#include "device_weights.h"
#include "gemm.h"
#include "stage_profiler.h"

namespace dattn::model::cuda_detail {

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class CudaForward final : public ForwardBackend {
 public:
  // Throws dattn::Error on an unsupported config (head_dim > 128) or when the device memory does not
  // suffice (the message gives the sizes).
  CudaForward(const ModelConfig& config, const Checkpoint& checkpoint, const CudaForwardOptions& options);

  void embed(const ForwardBatch& batch) override;
  void attention_inputs(int64_t layer, const ForwardBatch& batch) override;
  void attention(int64_t layer, const ForwardBatch& batch) override;
  void attention_output(int64_t layer, const ForwardBatch& batch) override;
  void mlp(int64_t layer, const ForwardBatch& batch) override;
  // copies the logits to the host and waits for the stream
  void logits(const ForwardBatch& batch, float* host_logits) override;
  void set_stage_profiling(bool enabled) override { profiler_.set_enabled(enabled); }
  std::vector<std::pair<std::string, double>> stage_profile() override;

  void synchronize();
  void sample_memory() { peak_in_use_ = std::max(peak_in_use_, device_bytes_in_use()); }
  const ModelConfig& config() const { return config_; }
  DeviceMemoryReport memory() const { return {weights_.bytes, kv_bytes_, workspace_bytes_, peak_in_use_}; }
  StageProfiler& profiler() { return profiler_; }

 private:
  ModelConfig config_;
  CudaForwardOptions options_;
  int64_t padded_head_dim_ = 0, max_blocks_ = 0, max_logit_rows_ = 0;
  Stream stream_;  // declared before every buffer: destroyed after them
  Gemm gemm_{stream_.get()};
  StageProfiler profiler_{stream_.get()};
  DeviceWeights weights_;
  DeviceBuffer inv_freq_;
  DeviceBuffer k_pool_, v_pool_;
  DeviceBuffer ids_, positions_, cache_rows_, tables_, lengths_;  // per batch: rows, then sequences
  DeviceBuffer x_, normed_, qkv_, q_, attn_, gate_up_, act_, logit_block_, decode_partials_, gathered_k_, gathered_v_;
  uint64_t kv_bytes_ = 0, workspace_bytes_ = 0, peak_in_use_ = 0;
  int64_t decode_sequences_ = 0, longest_decode_ = 0;  // of the current batch

  uint16_t* layer_pool(const DeviceBuffer& pool, int64_t layer) const;
};

}  // namespace dattn::model::cuda_detail
