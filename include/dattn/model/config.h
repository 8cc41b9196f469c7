// The architecture description of a Hugging Face causal LM (config.json), reduced to what the runtime
// computes with. Every field the runtime cannot honour is rejected with a dattn::Error naming it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dattn::model {

enum class Architecture : uint8_t { llama, mistral, qwen2, qwen3 };
std::string_view architecture_name(Architecture a);

// Rotary embedding as transformers computes it (ROPE_INIT_FUNCTIONS): the frequency table depends on
// the rope type; the attention factor multiplies cos and sin (1 except for yarn).
struct RopeConfig {
  enum class Type : uint8_t { default_, linear, llama3, yarn };
  Type type = Type::default_;
  double theta = 10000.0;
  double factor = 1.0;                      // linear, llama3, yarn
  double low_freq_factor = 1.0;             // llama3
  double high_freq_factor = 4.0;            // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  double beta_fast = 32.0, beta_slow = 1.0;         // yarn
  bool truncate = true;                              // yarn: integer correction range
  double attention_factor = 1.0;            // multiplies cos and sin (yarn: from factor / mscale unless given)
  // Per-pair divisors of the inverse frequencies (GGUF files store llama3 scaling as this table, the
  // rope_freqs tensor); empty when unused.
  std::vector<float> frequency_divisors;
};

struct ModelConfig {
  Architecture architecture = Architecture::llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // q_proj, k_proj, v_proj have a bias (Qwen2; Llama/Qwen3 attention_bias)
  bool o_bias = false;     // o_proj has a bias (Llama/Qwen3 attention_bias)
  bool mlp_bias = false;   // gate/up/down have a bias (Llama mlp_bias)
  bool qk_norm = false;    // per-head RMSNorm of q and k before RoPE (Qwen3)
  // Mistral's sliding window: the model equals full attention only while the context fits in it.
  std::optional<int64_t> sliding_window;
  std::vector<int32_t> eos_token_ids;   // config.json, then generation_config.json
  std::optional<int32_t> bos_token_id;
  // generation_config.json's sampling settings, with transformers' defaults where a field (or the file)
  // is absent: do_sample false, temperature 1, top_k 50, top_p 1.
  struct GenerationDefaults {
    bool do_sample = false;
    double temperature = 1.0, top_p = 1.0;
    int64_t top_k = 50;
  } generation;

  // Softmax scale of the attention scores: 1/sqrt(head_dim), times rope.attention_factor squared, because
  // transformers multiplies cos and sin (hence q and k) by that factor.
  double attention_scale() const;
};

// Parses the text of config.json. Throws dattn::Error naming the first unsupported or invalid field.
ModelConfig parse_model_config(std::string_view json_text);

// Adds the text of generation_config.json (eos ids, sampling defaults) to `config`.
void parse_generation_config(std::string_view json_text, ModelConfig& config);

// Reads DIR/config.json and, when present, DIR/generation_config.json (adds its eos ids); for a GGUF file,
// its metadata (gguf_model_config).
ModelConfig load_model_config(const std::filesystem::path& dir);

// Throws dattn::Error naming the field when a size lies outside its bound (e.g. num_hidden_layers in
// [1, 4096], vocab_size in [1, 2^24]) or a product of sizes the forward pass allocates (num_attention_heads
// x head_dim, every weight matrix) exceeds its bound. parse_model_config calls it; so does Model for a
// config built in code.
void check_model_config(const ModelConfig& config);

// The inverse frequencies of each rotary pair (head_dim / 2 values), rounded as transformers rounds them
// (fp32 tensors), so that positions far into the context rotate by the same angles.
std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int64_t head_dim);

}  // namespace dattn::model
