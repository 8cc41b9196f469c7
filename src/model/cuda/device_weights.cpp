#include "device_weights.h"

#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dattn/core/dtype.h"
#include "dattn/core/error.h"

namespace dattn::model::cuda_detail {

int64_t padded_head_dim(int64_t head_dim) {
  DATTN_CHECK(head_dim >= 2 && head_dim % 2 == 0 && head_dim <= 128,
              "cuda session: head_dim {} is not supported (even values up to 128; the attention kernels run 64 or "
              "128)",
              head_dim);
  return head_dim <= 64 ? 64 : 128;
}

namespace {

const TensorInfo& checked_info(const TensorRef& ref, const std::vector<int64_t>& shape) {
  const TensorInfo& info = *ref.info;
  int64_t expected = 1;
  for (int64_t s : shape) expected *= s;
  DATTN_CHECK(info.numel() == expected, "tensor '{}' has shape [{}] but the config needs [{}]", info.name,
              fmt::join(info.shape, ", "), fmt::join(shape, ", "));
  DATTN_CHECK(info.dtype == StDType::f32 || info.dtype == StDType::bf16 || info.dtype == StDType::f16,
              "tensor '{}' has dtype {}; the runtime reads F32, BF16 and F16", info.name, st_dtype_name(info.dtype));
  return info;
}

float element_as_f32(const std::byte* data, StDType dtype, int64_t i) {
  switch (dtype) {
    case StDType::f32: {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      return f;
    }
    case StDType::bf16: {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      return bf16_to_f32(h);
    }
    default: {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      return f16_to_f32(h);
    }
  }
}

// Copies uploads into device buffers it allocates, counting the bytes.
class Uploader {
 public:
  Uploader(const Checkpoint& checkpoint, DeviceWeights& out) : ckpt_(checkpoint), out_(out) {}

  // bf16 copy of a matrix into `dst` (an element offset into a buffer this uploader made).
  void matrix_into(const std::string& name, std::vector<int64_t> shape, bf16_bits* dst) {
    const TensorRef ref = ckpt_.get(name);
    const TensorInfo& info = checked_info(ref, shape);
    const size_t n = size_t(info.numel());
    if (info.dtype == StDType::bf16) {
      check_cuda(cudaMemcpy(dst, ref.bytes.data(), n * 2, cudaMemcpyHostToDevice), "uploading a weight");
      return;
    }
    std::vector<bf16_bits> staged = to_bf16(ref.bytes.data(), info.dtype, n);
    check_cuda(cudaMemcpy(dst, staged.data(), n * 2, cudaMemcpyHostToDevice), "uploading a weight");
  }

  // o_proj (hidden, h_q * head_dim) widened to (hidden, h_q * padded) with zero columns.
  void padded_o_proj(const std::string& name, int64_t hidden, int64_t heads, int64_t head_dim, int64_t padded,
                     bf16_bits* dst) {
    const TensorRef ref = ckpt_.get(name);
    const TensorInfo& info = checked_info(ref, {hidden, heads * head_dim});
    std::vector<bf16_bits> dense = to_bf16(ref.bytes.data(), info.dtype, size_t(info.numel()));
    std::vector<bf16_bits> wide(size_t(hidden * heads * padded), 0);
    for (int64_t r = 0; r < hidden; ++r)
      for (int64_t h = 0; h < heads; ++h)
        std::memcpy(&wide[size_t((r * heads + h) * padded)], &dense[size_t((r * heads + h) * head_dim)],
                    size_t(head_dim) * 2);
    check_cuda(cudaMemcpy(dst, wide.data(), wide.size() * 2, cudaMemcpyHostToDevice), "uploading o_proj");
  }

  // fp32 vector (norm weights, biases) into `dst`.
  void vector_into(const std::string& name, int64_t size, float* dst) {
    const TensorRef ref = ckpt_.get(name);
    const TensorInfo& info = checked_info(ref, {size});
    std::vector<float> values(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) values[size_t(i)] = element_as_f32(ref.bytes.data(), info.dtype, i);
    check_cuda(cudaMemcpy(dst, values.data(), values.size() * 4, cudaMemcpyHostToDevice), "uploading a vector");
  }

  template <typename T>
  T* allocate(int64_t elements, const char* what) {
    out_.storage.emplace_back(size_t(elements) * sizeof(T), what);
    out_.bytes += out_.storage.back().bytes();
    return out_.storage.back().as<T>();
  }

  float* vector(const std::string& name, int64_t size) {
    float* dst = allocate<float>(size, "a norm or bias vector");
    vector_into(name, size, dst);
    return dst;
  }

 private:
  const Checkpoint& ckpt_;
  DeviceWeights& out_;

  static std::vector<bf16_bits> to_bf16(const std::byte* data, StDType dtype, size_t n) {
    std::vector<bf16_bits> out(n);
    if (dtype == StDType::bf16) {
      std::memcpy(out.data(), data, n * 2);
      return out;
    }
#pragma omp parallel for schedule(static) if (n > (1u << 20))
    for (int64_t i = 0; i < int64_t(n); ++i) out[size_t(i)] = f32_to_bf16(element_as_f32(data, dtype, i));
    return out;
  }
};

}  // namespace

DeviceWeights upload_weights(const ModelConfig& c, const Checkpoint& ckpt) {
  // sizes bounded and the checkpoint's layers matching the config before any buffer is sized from them
  check_model_config(c);
  ckpt.check_layer_count(c.num_layers);
  DeviceWeights w;
  Uploader up(ckpt, w);
  const int64_t hidden = c.hidden_size, d = c.head_dim, dp = padded_head_dim(c.head_dim);
  const int64_t q_dim = c.num_heads * d, kv_dim = c.num_kv_heads * d, qkv_dim = q_dim + 2 * kv_dim;
  const int64_t inter = c.intermediate_size;

  bf16_bits* embed = up.allocate<bf16_bits>(c.vocab_size * hidden, "the token embeddings");
  up.matrix_into("model.embed_tokens.weight", {c.vocab_size, hidden}, embed);
  w.embed_tokens = embed;
  w.final_norm = up.vector("model.norm.weight", hidden);
  if (c.tie_word_embeddings) {
    w.lm_head = embed;
  } else {
    DATTN_CHECK(ckpt.contains("lm_head.weight"),
                "tensor 'lm_head.weight' is missing from the checkpoint and tie_word_embeddings is false");
    bf16_bits* head = up.allocate<bf16_bits>(c.vocab_size * hidden, "lm_head");
    up.matrix_into("lm_head.weight", {c.vocab_size, hidden}, head);
    w.lm_head = head;
  }

  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    DeviceLayer l;
    l.input_norm = up.vector(p + "input_layernorm.weight", hidden);
    l.post_attention_norm = up.vector(p + "post_attention_layernorm.weight", hidden);

    bf16_bits* qkv = up.allocate<bf16_bits>(qkv_dim * hidden, "q/k/v projections");
    up.matrix_into(p + "self_attn.q_proj.weight", {q_dim, hidden}, qkv);
    up.matrix_into(p + "self_attn.k_proj.weight", {kv_dim, hidden}, qkv + q_dim * hidden);
    up.matrix_into(p + "self_attn.v_proj.weight", {kv_dim, hidden}, qkv + (q_dim + kv_dim) * hidden);
    l.qkv_weight = qkv;
    if (c.qkv_bias) {
      float* bias = up.allocate<float>(qkv_dim, "q/k/v biases");
      up.vector_into(p + "self_attn.q_proj.bias", q_dim, bias);
      up.vector_into(p + "self_attn.k_proj.bias", kv_dim, bias + q_dim);
      up.vector_into(p + "self_attn.v_proj.bias", kv_dim, bias + q_dim + kv_dim);
      l.qkv_bias = bias;
    }
    if (c.qk_norm) {
      l.q_norm = up.vector(p + "self_attn.q_norm.weight", d);
      l.k_norm = up.vector(p + "self_attn.k_norm.weight", d);
    }
    bf16_bits* o = up.allocate<bf16_bits>(hidden * c.num_heads * dp, "o_proj");
    up.padded_o_proj(p + "self_attn.o_proj.weight", hidden, c.num_heads, d, dp, o);
    l.o_weight = o;
    if (c.o_bias) l.o_bias = up.vector(p + "self_attn.o_proj.bias", hidden);

    bf16_bits* gate_up = up.allocate<bf16_bits>(2 * inter * hidden, "gate/up projections");
    up.matrix_into(p + "mlp.gate_proj.weight", {inter, hidden}, gate_up);
    up.matrix_into(p + "mlp.up_proj.weight", {inter, hidden}, gate_up + inter * hidden);
    l.gate_up_weight = gate_up;
    bf16_bits* down = up.allocate<bf16_bits>(hidden * inter, "down_proj");
    up.matrix_into(p + "mlp.down_proj.weight", {hidden, inter}, down);
    l.down_weight = down;
    if (c.mlp_bias) {
      float* bias = up.allocate<float>(2 * inter, "gate/up biases");
      up.vector_into(p + "mlp.gate_proj.bias", inter, bias);
      up.vector_into(p + "mlp.up_proj.bias", inter, bias + inter);
      l.gate_up_bias = bias;
      l.down_bias = up.vector(p + "mlp.down_proj.bias", hidden);
    }
    w.layers.push_back(l);
  }
  return w;
}

}  // namespace dattn::model::cuda_detail
