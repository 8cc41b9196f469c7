// GGUF metadata -> ModelConfig (through the config.json parser, so the same checks apply) and GGUF
// tensors -> a Checkpoint under Hugging Face names.
#include "dattn/model/gguf_model.h"

#include <cmath>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"

namespace dattn::model {
namespace {

using io::GgufHeader;
using io::GgufTensorInfo;
using nlohmann::json;

struct ArchEntry {
  std::string_view gguf, hf;
};
constexpr ArchEntry kArchitectures[] = {
    {"llama", "LlamaForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};

// llama.cpp's per-layer tensor names (blk.N.<name>) and the Hugging Face ones (model.layers.N.<name>).
struct NameEntry {
  std::string_view gguf, hf;
};
constexpr NameEntry kLayerNames[] = {
    {"attn_norm", "input_layernorm"},   {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"}, {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"}, {"ffn_norm", "post_attention_layernorm"}, {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},          {"ffn_down", "mlp.down_proj"},
};
constexpr NameEntry kGlobalNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr std::string_view kRopeFreqs = "rope_freqs.weight";

std::optional<std::string> hf_name(const std::string& gguf) {
  for (const NameEntry& e : kGlobalNames)
    if (gguf == e.gguf) return std::string(e.hf);
  // blk.<layer>.<name>.(weight|bias)
  std::string_view rest = gguf;
  if (!rest.starts_with("blk.")) return std::nullopt;
  rest.remove_prefix(4);
  const size_t digits = rest.find_first_not_of("0123456789");
  if (digits == 0 || digits == std::string_view::npos || rest[digits] != '.') return std::nullopt;
  const std::string_view layer = rest.substr(0, digits);
  rest.remove_prefix(digits + 1);
  const size_t dot = rest.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view name = rest.substr(0, dot), kind = rest.substr(dot + 1);
  if (kind != "weight" && kind != "bias") return std::nullopt;
  for (const NameEntry& e : kLayerNames)
    if (name == e.gguf) return fmt::format("model.layers.{}.{}.{}", layer, e.hf, kind);
  return std::nullopt;
}

std::string_view architecture_of(const GgufHeader& h) {
  return h.at("general.architecture").as_string("general.architecture");
}

// The config.json transformers would have written for this GGUF file.
json config_json(const GgufHeader& h) {
  const std::string arch(architecture_of(h));
  const ArchEntry* entry = nullptr;
  for (const ArchEntry& e : kArchitectures)
    if (e.gguf == arch) entry = &e;
  DATTN_CHECK(entry, "general.architecture '{}' is not supported (llama, qwen2, qwen3)", arch);
  auto key = [&](std::string_view k) { return fmt::format("{}.{}", arch, k); };
  auto integer = [&](std::string_view k) { return h.at(key(k)).as_int(key(k)); };
  auto has = [&](std::string_view k) { return h.find(key(k)) != nullptr; };

  json c;
  c["architectures"] = json::array({entry->hf});
  c["hidden_size"] = integer("embedding_length");
  c["intermediate_size"] = integer("feed_forward_length");
  c["num_hidden_layers"] = integer("block_count");
  c["num_attention_heads"] = integer("attention.head_count");
  c["num_key_value_heads"] = has("attention.head_count_kv") ? integer("attention.head_count_kv")
                                                             : integer("attention.head_count");
  if (has("attention.key_length")) {
    const int64_t head_dim = integer("attention.key_length");
    if (has("attention.value_length"))
      DATTN_CHECK(integer("attention.value_length") == head_dim,
                  "{} {} differs from {} {} (different query/value head sizes are not supported)",
                  key("attention.value_length"), integer("attention.value_length"), key("attention.key_length"),
                  head_dim);
    c["head_dim"] = head_dim;
  }
  const int64_t head_dim = c.contains("head_dim") ? c["head_dim"].get<int64_t>()
                                                  : c["hidden_size"].get<int64_t>() /
                                                        std::max<int64_t>(1, c["num_attention_heads"].get<int64_t>());
  if (has("rope.dimension_count"))
    DATTN_CHECK(integer("rope.dimension_count") == head_dim,
                "{} is {} but the head dim is {} (partial rotary embeddings are not supported)",
                key("rope.dimension_count"), integer("rope.dimension_count"), head_dim);
  if (has("context_length")) c["max_position_embeddings"] = integer("context_length");
  if (has("attention.layer_norm_rms_epsilon"))
    c["rms_norm_eps"] = h.at(key("attention.layer_norm_rms_epsilon")).as_float(key("attention.layer_norm_rms_epsilon"));
  if (has("rope.freq_base")) c["rope_theta"] = h.at(key("rope.freq_base")).as_float(key("rope.freq_base"));
  const std::string scaling =
      has("rope.scaling.type") ? std::string(h.at(key("rope.scaling.type")).as_string(key("rope.scaling.type"))) : "none";
  if (scaling == "linear" || scaling == "yarn") {
    json s = {{"rope_type", scaling}, {"factor", h.at(key("rope.scaling.factor")).as_float(key("rope.scaling.factor"))}};
    if (scaling == "yarn") s["original_max_position_embeddings"] = integer("rope.scaling.original_context_length");
    c["rope_scaling"] = s;
  } else {
    DATTN_CHECK(scaling == "none", "{} '{}' is not supported (none, linear, yarn)", key("rope.scaling.type"), scaling);
  }
  if (const io::GgufTensorInfo* embed = h.find_tensor("token_embd.weight"); embed && embed->dims.size() == 2)
    c["vocab_size"] = embed->dims[1];
  if (has("vocab_size")) c["vocab_size"] = integer("vocab_size");
  c["tie_word_embeddings"] = h.find_tensor("output.weight") == nullptr;
  if (arch != "qwen2") c["attention_bias"] = h.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (arch == "llama") c["mlp_bias"] = h.find_tensor("blk.0.ffn_gate.bias") != nullptr;
  if (const io::GgufValue* bos = h.find("tokenizer.ggml.bos_token_id"))
    c["bos_token_id"] = bos->as_int("tokenizer.ggml.bos_token_id");
  if (const io::GgufValue* eos = h.find("tokenizer.ggml.eos_token_id"))
    c["eos_token_id"] = eos->as_int("tokenizer.ggml.eos_token_id");
  return c;
}

// llama.cpp's converter stores q/k rows of each head as (dim/2, 2) interleaved pairs, i.e. row
// h*d + 2j + i holds Hugging Face row h*d + i*d/2 + j; this puts them back.
void unpermute_rows(std::byte* data, int64_t rows, int64_t row_bytes, int64_t heads) {
  DATTN_CHECK(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0,
              "cannot undo the q/k row permutation: {} rows in {} heads", rows, heads);
  const int64_t head_rows = rows / heads, half = head_rows / 2;
  std::vector<std::byte> head(size_t(head_rows * row_bytes));
  for (int64_t h = 0; h < heads; ++h) {
    std::byte* base = data + h * head_rows * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (int64_t j = 0; j < half; ++j)
      for (int64_t i = 0; i < 2; ++i)
        std::memcpy(base + (i * half + j) * row_bytes, head.data() + (2 * j + i) * row_bytes, size_t(row_bytes));
  }
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

ModelConfig gguf_model_config(const io::GgufFile& file) {
  const GgufHeader& header = file.header();
  try {
    ModelConfig c = parse_model_config(config_json(header).dump());
    if (const GgufTensorInfo* freqs = header.find_tensor(kRopeFreqs)) {
      // llama3 rope scaling: the converter stores the per-frequency divisors instead of the parameters
      DATTN_CHECK(c.rope.type == RopeConfig::Type::default_,
                  "rope_freqs.weight cannot be combined with rope scaling of another type");
      DATTN_CHECK(freqs->numel == c.head_dim / 2, "rope_freqs.weight has {} values but head_dim / 2 is {}",
                  freqs->numel, c.head_dim / 2);
      c.rope.frequency_divisors.resize(size_t(freqs->numel));
      io::dequantize_to_f32(freqs->type, file.tensor_bytes(*freqs), freqs->numel, c.rope.frequency_divisors.data());
      for (float f : c.rope.frequency_divisors)
        DATTN_CHECK(std::isfinite(f) && f > 0, "rope_freqs.weight holds {}, not a positive divisor", f);
    }
    return c;
  } catch (const Error& e) {
    fail("{}: GGUF metadata: {}", file.path().string(), e.what());
  }
}

Checkpoint gguf_checkpoint(const io::GgufFile& file, const ModelConfig& config, DType dtype) {
  DATTN_CHECK(dtype == DType::f32 || dtype == DType::bf16, "GGUF weights load as f32 or bf16, not {}",
              dtype_name(dtype));
  const GgufHeader& h = file.header();
  const bool llama = architecture_of(h) == "llama";
  const size_t elem = dtype_size(dtype);
  std::vector<TensorInfo> infos;
  std::vector<const GgufTensorInfo*> sources;
  uint64_t total = 0;
  for (const GgufTensorInfo& t : h.tensors) {
    if (t.name == kRopeFreqs) continue;  // read by the config (see ModelConfig::rope)
    std::optional<std::string> name = hf_name(t.name);
    DATTN_CHECK(name, "{}: tensor '{}' is not one dattn knows for a {} model", file.path().string(), t.name,
                architecture_of(h));
    TensorInfo info;
    info.name = *name;
    info.dtype = dtype == DType::f32 ? StDType::f32 : StDType::bf16;
    info.shape = t.shape();
    info.begin = align_up(total, 64);
    info.end = info.begin + uint64_t(t.numel) * elem;
    total = info.end;
    infos.push_back(std::move(info));
    sources.push_back(&t);
  }
  std::vector<std::byte> data(total);
  for (size_t i = 0; i < infos.size(); ++i) {
    const GgufTensorInfo& t = *sources[i];
    std::byte* dst = data.data() + infos[i].begin;
    if (dtype == DType::f32) io::dequantize_to_f32(t.type, file.tensor_bytes(t), t.numel, reinterpret_cast<float*>(dst));
    else io::dequantize_to_bf16(t.type, file.tensor_bytes(t), t.numel, reinterpret_cast<uint16_t*>(dst));
    const bool q = t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_q.bias");
    const bool k = t.name.ends_with(".attn_k.weight") || t.name.ends_with(".attn_k.bias");
    if (llama && (q || k)) {
      const int64_t rows = infos[i].shape[0];
      unpermute_rows(dst, rows, int64_t(elem) * (t.numel / rows), q ? config.num_heads : config.num_kv_heads);
    }
  }
  return Checkpoint::from_memory(file.path(), std::move(infos), std::move(data));
}

Checkpoint open_any_checkpoint(const std::filesystem::path& path, DType gguf_dtype) {
  if (!io::is_gguf_file(path)) return Checkpoint::open(path);
  const io::GgufFile file(path);
  return gguf_checkpoint(file, gguf_model_config(file), gguf_dtype);
}

}  // namespace dattn::model
