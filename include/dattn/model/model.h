// A loaded causal LM: its config and its weights as fp32 (for the CPU forward pass).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "dattn/model/config.h"
#include "dattn/model/safetensors.h"

namespace dattn::model {

// y = x W^T + b with W stored (out_features, in_features) as in torch.nn.Linear.
struct Linear {
  F32Tensor weight;
  std::optional<F32Tensor> bias;
  int64_t out_features = 0;
  int64_t in_features = 0;
};

struct LayerWeights {
  F32Tensor input_norm;      // (hidden)
  Linear q_proj, k_proj, v_proj, o_proj;
  std::optional<F32Tensor> q_norm, k_norm;  // (head_dim), Qwen3
  F32Tensor post_attention_norm;            // (hidden)
  Linear gate_proj, up_proj, down_proj;
};

class Model {
 public:
  // Reads config.json (+ generation_config.json) and the safetensors weights of a model directory, or a
  // GGUF file (weights dequantized to fp32).
  static std::shared_ptr<const Model> load(const std::filesystem::path& dir);
  // The same from an already-parsed config and an opened checkpoint (tests build odd inputs this way).
  static std::shared_ptr<const Model> from_checkpoint(ModelConfig config, std::shared_ptr<const Checkpoint> weights);

  const ModelConfig& config() const { return config_; }
  const F32Tensor& embed_tokens() const { return embed_tokens_; }  // (vocab, hidden)
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const F32Tensor& final_norm() const { return final_norm_; }
  // (vocab, hidden); the embedding matrix when the embeddings are tied.
  const F32Tensor& lm_head() const { return config_.tie_word_embeddings ? embed_tokens_ : lm_head_; }
  const std::vector<float>& rope_inv_freq() const { return rope_inv_freq_; }
  const Checkpoint& checkpoint() const { return *checkpoint_; }  // the tensors as stored (the GPU uploads these)
  // Bytes of fp32 weights the model holds beyond the mapped checkpoint (widened bf16/f16 tensors).
  uint64_t owned_weight_bytes() const;

 private:
  ModelConfig config_;
  std::shared_ptr<const Checkpoint> checkpoint_;  // keeps borrowed f32 tensors mapped
  F32Tensor embed_tokens_;
  std::vector<LayerWeights> layers_;
  F32Tensor final_norm_;
  F32Tensor lm_head_;
  std::vector<float> rope_inv_freq_;
};

}  // namespace dattn::model
