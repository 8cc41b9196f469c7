// The model's weights on the device, bf16 for every matrix and fp32 for norms and biases, laid out for
// the forward pass: q/k/v stacked into one matrix and gate/up into another (one GEMM each), and o_proj
// widened with zero columns when head_dim is padded up to the attention kernel's.
#pragma once
#include <cstdint>
#include <vector>

#include "dattn/model/config.h"
#include "dattn/model/safetensors.h"
#include "device_buffer.h"

namespace dattn::model::cuda_detail {

using bf16_bits = uint16_t;  // a bfloat16 as stored; the kernels reinterpret it

struct DeviceLayer {
  const bf16_bits* qkv_weight = nullptr;      // (q_dim + 2 kv_dim, hidden)
  const float* qkv_bias = nullptr;            // (q_dim + 2 kv_dim) or null
  const float* q_norm = nullptr;              // (head_dim) or null (Qwen3 only)
  const float* k_norm = nullptr;
  const bf16_bits* o_weight = nullptr;        // (hidden, h_q * padded_head_dim)
  const float* o_bias = nullptr;              // (hidden) or null
  const float* input_norm = nullptr;          // (hidden)
  const float* post_attention_norm = nullptr; // (hidden)
  const bf16_bits* gate_up_weight = nullptr;  // (2 intermediate, hidden): gate rows, then up rows
  const float* gate_up_bias = nullptr;        // (2 intermediate) or null
  const bf16_bits* down_weight = nullptr;     // (hidden, intermediate)
  const float* down_bias = nullptr;           // (hidden) or null
};

struct DeviceWeights {
  const bf16_bits* embed_tokens = nullptr;  // (vocab, hidden)
  const bf16_bits* lm_head = nullptr;       // (vocab, hidden), embed_tokens when tied
  const float* final_norm = nullptr;        // (hidden)
  std::vector<DeviceLayer> layers;
  uint64_t bytes = 0;
  std::vector<DeviceBuffer> storage;
};

// The head_dim the attention kernels run with: 64 or 128 (smaller heads are zero-padded).
int64_t padded_head_dim(int64_t head_dim);

// Reads, checks (names, shapes, dtypes) and uploads every tensor the config needs.
DeviceWeights upload_weights(const ModelConfig& config, const Checkpoint& checkpoint);

}  // namespace dattn::model::cuda_detail
