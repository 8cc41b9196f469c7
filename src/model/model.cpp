// Binds checkpoint tensors to the layer structure the config describes, checking every shape.
#include "dattn/model/model.h"

#include <fmt/format.h>

#include "dattn/core/error.h"
#include "dattn/model/gguf_model.h"

namespace dattn::model {

namespace {

F32Tensor load_tensor(const Checkpoint& ckpt, const std::string& name, std::vector<int64_t> shape) {
  return F32Tensor::from(ckpt.get(name), shape);
}

Linear load_linear(const Checkpoint& ckpt, const std::string& prefix, int64_t out, int64_t in, bool bias) {
  Linear l;
  l.out_features = out;
  l.in_features = in;
  l.weight = load_tensor(ckpt, prefix + ".weight", {out, in});
  if (bias) l.bias = load_tensor(ckpt, prefix + ".bias", {out});
  return l;
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::filesystem::path& dir) {
  ModelConfig config = load_model_config(dir);
  auto checkpoint = std::make_shared<const Checkpoint>(open_any_checkpoint(dir, DType::f32));
  return from_checkpoint(std::move(config), std::move(checkpoint));
}

std::shared_ptr<const Model> Model::from_checkpoint(ModelConfig config, std::shared_ptr<const Checkpoint> weights) {
  auto model = std::make_shared<Model>();
  const Checkpoint& ckpt = *weights;
  const ModelConfig& c = config;
  // sizes a caller or a file gave are bounded before any product of them sizes a buffer
  check_model_config(c);
  ckpt.check_layer_count(c.num_layers);
  const int64_t hidden = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;

  model->embed_tokens_ = load_tensor(ckpt, "model.embed_tokens.weight", {c.vocab_size, hidden});
  model->final_norm_ = load_tensor(ckpt, "model.norm.weight", {hidden});
  if (!c.tie_word_embeddings) {
    DATTN_CHECK(ckpt.contains("lm_head.weight"),
                "tensor 'lm_head.weight' is missing from the checkpoint and tie_word_embeddings is false");
    model->lm_head_ = load_tensor(ckpt, "lm_head.weight", {c.vocab_size, hidden});
  }
  model->layers_.reserve(size_t(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    LayerWeights w;
    w.input_norm = load_tensor(ckpt, p + "input_layernorm.weight", {hidden});
    w.q_proj = load_linear(ckpt, p + "self_attn.q_proj", q_dim, hidden, c.qkv_bias);
    w.k_proj = load_linear(ckpt, p + "self_attn.k_proj", kv_dim, hidden, c.qkv_bias);
    w.v_proj = load_linear(ckpt, p + "self_attn.v_proj", kv_dim, hidden, c.qkv_bias);
    w.o_proj = load_linear(ckpt, p + "self_attn.o_proj", hidden, q_dim, c.o_bias);
    if (c.qk_norm) {
      w.q_norm = load_tensor(ckpt, p + "self_attn.q_norm.weight", {c.head_dim});
      w.k_norm = load_tensor(ckpt, p + "self_attn.k_norm.weight", {c.head_dim});
    }
    w.post_attention_norm = load_tensor(ckpt, p + "post_attention_layernorm.weight", {hidden});
    w.gate_proj = load_linear(ckpt, p + "mlp.gate_proj", c.intermediate_size, hidden, c.mlp_bias);
    w.up_proj = load_linear(ckpt, p + "mlp.up_proj", c.intermediate_size, hidden, c.mlp_bias);
    w.down_proj = load_linear(ckpt, p + "mlp.down_proj", hidden, c.intermediate_size, c.mlp_bias);
    model->layers_.push_back(std::move(w));
  }
  model->rope_inv_freq_ = rope_inverse_frequencies(c.rope, c.head_dim);
  model->config_ = std::move(config);
  model->checkpoint_ = std::move(weights);
  return model;
}

uint64_t Model::owned_weight_bytes() const {
  uint64_t total = 0;
  auto add = [&](const F32Tensor& t) {
    if (!t.borrowed()) total += uint64_t(t.size()) * 4;
  };
  auto add_linear = [&](const Linear& l) {
    add(l.weight);
    if (l.bias) add(*l.bias);
  };
  add(embed_tokens_);
  add(final_norm_);
  add(lm_head_);
  for (const LayerWeights& w : layers_) {
    add(w.input_norm);
    add(w.post_attention_norm);
    add_linear(w.q_proj);
    add_linear(w.k_proj);
    add_linear(w.v_proj);
    add_linear(w.o_proj);
    add_linear(w.gate_proj);
    add_linear(w.up_proj);
    add_linear(w.down_proj);
    if (w.q_norm) add(*w.q_norm);
    if (w.k_norm) add(*w.k_norm);
  }
  return total;
}

}  // namespace dattn::model
