// config.json parsing for Llama, Mistral, Qwen2 and Qwen3 causal LMs, with the defaults transformers'
// config classes use when a field is absent.
#include "dattn/model/config.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "dattn/core/checked.h"

#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "dattn/io/json_input.h"
#include "dattn/model/gguf_model.h"

namespace dattn::model {

using nlohmann::json;

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::llama: return "LlamaForCausalLM";
    case Architecture::mistral: return "MistralForCausalLM";
    case Architecture::qwen2: return "Qwen2ForCausalLM";
    case Architecture::qwen3: return "Qwen3ForCausalLM";
  }
  return "?";
}

namespace {

// Bounds of the sizes config.json states: far above every released model (hidden sizes up to ~25K,
// 128 heads of 64-256, ~130 layers, 256K vocabularies) and far below anything whose products could
// wrap around; vocab_size matches the tokenizer's bound on token ids.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxHidden = int64_t{1} << 18;
constexpr int64_t kMaxIntermediate = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxPositions = int64_t{1} << 32;
constexpr int64_t kMaxWidth = int64_t{1} << 24;            // num_heads * head_dim
constexpr int64_t kMaxMatrixElements = int64_t{1} << 40;  // one weight matrix

bool present(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

int64_t int_field(const json& j, const char* key, std::string_view where) {
  const json& v = j.at(key);
  // above INT64_MAX, get<int64_t>() would wrap to a negative value and the message would show that
  DATTN_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(INT64_MAX), "{}field '{}' is {} (must be at most {})",
              where, key, v.get<uint64_t>(), INT64_MAX);
  if (v.is_number_integer()) return v.get<int64_t>();
  // transformers writes some integers as floats (e.g. 8192.0); accept them when integral
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
  }
  fail("{}field '{}' must be an integer, got {}", where, key, json_excerpt(v));
}

int64_t required_int(const json& j, const char* key, int64_t min_value, std::string_view where = "config.json: ") {
  DATTN_CHECK(present(j, key), "{}field '{}' is missing", where, key);
  int64_t value = int_field(j, key, where);
  DATTN_CHECK(value >= min_value, "{}field '{}' is {} (must be >= {})", where, key, value, min_value);
  return value;
}

int64_t optional_int(const json& j, const char* key, int64_t fallback, int64_t min_value,
                     std::string_view where = "config.json: ") {
  if (!present(j, key)) return fallback;
  return required_int(j, key, min_value, where);
}

double number_field(const json& j, const char* key, std::string_view where) {
  DATTN_CHECK(present(j, key), "{}field '{}' is missing", where, key);
  const json& v = j.at(key);
  DATTN_CHECK(v.is_number(), "{}field '{}' must be a number, got {}", where, key, json_excerpt(v));
  double d = v.get<double>();
  DATTN_CHECK(std::isfinite(d), "{}field '{}' must be finite, got {}", where, key, json_excerpt(v));
  return d;
}

double positive_number(const json& j, const char* key, std::string_view where = "config.json: ") {
  double d = number_field(j, key, where);
  DATTN_CHECK(d > 0, "{}field '{}' is {} (must be > 0)", where, key, d);
  return d;
}

bool bool_field(const json& j, const char* key, bool fallback) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  DATTN_CHECK(v.is_boolean(), "config.json: field '{}' must be true or false, got {}", key, json_excerpt(v));
  return v.get<bool>();
}

std::string string_field(const json& j, const char* key) {
  const json& v = j.at(key);
  DATTN_CHECK(v.is_string(), "config.json: field '{}' must be a string, got {}", key, json_excerpt(v));
  return v.get<std::string>();
}

Architecture parse_architecture(const json& j) {
  std::string name;
  if (present(j, "architectures")) {
    const json& list = j.at("architectures");
    DATTN_CHECK(list.is_array() && !list.empty() && list[0].is_string(),
                "config.json: field 'architectures' must be a non-empty list of names, got {}", json_excerpt(list));
    name = list[0].get<std::string>();
    if (name == "LlamaForCausalLM") return Architecture::llama;
    if (name == "MistralForCausalLM") return Architecture::mistral;
    if (name == "Qwen2ForCausalLM") return Architecture::qwen2;
    if (name == "Qwen3ForCausalLM") return Architecture::qwen3;
    fail("config.json: architectures '{}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
         "Qwen2ForCausalLM, Qwen3ForCausalLM)",
         excerpt(name));
  }
  DATTN_CHECK(present(j, "model_type"), "config.json: neither 'architectures' nor 'model_type' is given");
  name = string_field(j, "model_type");
  if (name == "llama") return Architecture::llama;
  if (name == "mistral") return Architecture::mistral;
  if (name == "qwen2") return Architecture::qwen2;
  if (name == "qwen3") return Architecture::qwen3;
  fail("config.json: model_type '{}' is not supported (supported: llama, mistral, qwen2, qwen3)", excerpt(name));
}

// transformers' get_mscale of the yarn paper
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// One rope object: rope_scaling (4.x, theta given separately) or rope_parameters (5.x, theta inside).
// `config` supplies the fallbacks transformers uses for original_max_position_embeddings.
RopeConfig parse_rope_object(const json& obj, const char* field, double theta, const json& config) {
  DATTN_CHECK(obj.is_object(), "config.json: field '{}' must be an object or null, got {}", field, json_excerpt(obj));
  std::string where = fmt::format("config.json: {}: ", field);
  RopeConfig rope;
  rope.theta = theta;
  std::string type = "default";
  const char* type_key = present(obj, "rope_type") ? "rope_type" : (present(obj, "type") ? "type" : nullptr);
  if (type_key) {
    DATTN_CHECK(obj.at(type_key).is_string(), "{}field '{}' must be a string, got {}", where, type_key,
                json_excerpt(obj.at(type_key)));
    type = obj.at(type_key).get<std::string>();
  }
  // as transformers' standardize_rope_params: the top-level field wins, then the rope object's, then
  // max_position_embeddings
  auto original_max_positions = [&]() -> int64_t {
    if (present(config, "original_max_position_embeddings"))
      return required_int(config, "original_max_position_embeddings", 1);
    if (present(obj, "original_max_position_embeddings"))
      return required_int(obj, "original_max_position_embeddings", 1, where);
    DATTN_CHECK(present(config, "max_position_embeddings"),
                "{}original_max_position_embeddings is missing (and so is max_position_embeddings)", where);
    return required_int(config, "max_position_embeddings", 1);
  };
  if (type == "default") {
    rope.type = RopeConfig::Type::default_;
  } else if (type == "linear") {
    rope.type = RopeConfig::Type::linear;
    rope.factor = positive_number(obj, "factor", where);
  } else if (type == "llama3") {
    rope.type = RopeConfig::Type::llama3;
    rope.factor = positive_number(obj, "factor", where);
    rope.low_freq_factor = positive_number(obj, "low_freq_factor", where);
    rope.high_freq_factor = positive_number(obj, "high_freq_factor", where);
    rope.original_max_position_embeddings = original_max_positions();
    DATTN_CHECK(rope.high_freq_factor > rope.low_freq_factor,
                "{}high_freq_factor ({}) must exceed low_freq_factor ({})", where, rope.high_freq_factor,
                rope.low_freq_factor);
  } else if (type == "yarn") {
    rope.type = RopeConfig::Type::yarn;
    rope.factor = positive_number(obj, "factor", where);
    rope.original_max_position_embeddings = original_max_positions();
    // transformers reads these with `or`: a 0 falls back to the default as well
    if (present(obj, "beta_fast") && number_field(obj, "beta_fast", where) != 0)
      rope.beta_fast = positive_number(obj, "beta_fast", where);
    if (present(obj, "beta_slow") && number_field(obj, "beta_slow", where) != 0)
      rope.beta_slow = positive_number(obj, "beta_slow", where);
    if (present(obj, "truncate")) {
      DATTN_CHECK(obj.at("truncate").is_boolean(), "{}field 'truncate' must be true or false", where);
      rope.truncate = obj.at("truncate").get<bool>();
    }
    if (present(obj, "attention_factor")) {
      rope.attention_factor = positive_number(obj, "attention_factor", where);
    } else {
      double mscale = present(obj, "mscale") ? number_field(obj, "mscale", where) : 0.0;
      double mscale_all_dim = present(obj, "mscale_all_dim") ? number_field(obj, "mscale_all_dim", where) : 0.0;
      rope.attention_factor = mscale != 0 && mscale_all_dim != 0
                                  ? yarn_mscale(rope.factor, mscale) / yarn_mscale(rope.factor, mscale_all_dim)
                                  : yarn_mscale(rope.factor, 1.0);
    }
  } else {
    fail("{}rope type '{}' is not supported (supported: default, linear, llama3, yarn)", where, excerpt(type));
  }
  if (present(obj, "partial_rotary_factor")) {
    double f = number_field(obj, "partial_rotary_factor", where);
    DATTN_CHECK(f == 1.0, "{}partial_rotary_factor {} is not supported (only 1)", where, f);
  }
  return rope;
}

RopeConfig parse_rope(const json& j) {
  if (present(j, "partial_rotary_factor")) {
    double f = number_field(j, "partial_rotary_factor", "config.json: ");
    DATTN_CHECK(f == 1.0, "config.json: partial_rotary_factor {} is not supported (only 1)", f);
  }
  if (present(j, "rope_parameters")) {
    const json& params = j.at("rope_parameters");
    DATTN_CHECK(params.is_object(), "config.json: field 'rope_parameters' must be an object, got {}",
                json_excerpt(params));
    DATTN_CHECK(!params.contains("full_attention") && !params.contains("sliding_attention"),
                "config.json: rope_parameters per layer type are not supported (one set for all layers only)");
    double theta = present(params, "rope_theta") ? positive_number(params, "rope_theta", "config.json: rope_parameters: ")
                                                 : (present(j, "rope_theta") ? positive_number(j, "rope_theta") : 10000.0);
    return parse_rope_object(params, "rope_parameters", theta, j);
  }
  double theta = present(j, "rope_theta") ? positive_number(j, "rope_theta") : 10000.0;
  if (present(j, "rope_scaling")) return parse_rope_object(j.at("rope_scaling"), "rope_scaling", theta, j);
  RopeConfig rope;
  rope.theta = theta;
  return rope;
}

void append_token_ids(const json& j, const char* key, std::vector<int32_t>& ids, std::string_view file) {
  if (!present(j, key)) return;
  const json& v = j.at(key);
  auto add = [&](const json& item) {
    DATTN_CHECK(item.is_number_integer() && item.get<int64_t>() >= 0 && item.get<int64_t>() <= INT32_MAX,
                "{}: field '{}' must hold non-negative token ids, got {}", file, key, json_excerpt(v));
    int32_t id = int32_t(item.get<int64_t>());
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (v.is_array()) {
    for (const json& item : v) add(item);
  } else {
    add(v);
  }
}

void reject_sliding_layers(const json& j) {
  if (bool_field(j, "use_sliding_window", false))
    fail("config.json: use_sliding_window=true is not supported (only full attention layers)");
  if (present(j, "layer_types")) {
    const json& types = j.at("layer_types");
    DATTN_CHECK(types.is_array(), "config.json: field 'layer_types' must be a list, got {}", json_excerpt(types));
    for (size_t i = 0; i < types.size(); ++i)
      DATTN_CHECK(types[i] == "full_attention", "config.json: layer_types[{}] is {} (only \"full_attention\" is supported)",
                  i, json_excerpt(types[i]));
  }
}

}  // namespace

ModelConfig parse_model_config(std::string_view json_text) {
  json j = parse_json(json_text, "config.json", kModelJsonLimits);
  DATTN_CHECK(j.is_object(), "config.json must hold a JSON object, got {}", j.type_name());

  ModelConfig c;
  c.architecture = parse_architecture(j);
  DATTN_CHECK(!present(j, "quantization_config"),
              "config.json: quantization_config is not supported (quantized checkpoints)");
  if (present(j, "hidden_act")) {
    std::string act = string_field(j, "hidden_act");
    DATTN_CHECK(act == "silu" || act == "swish", "config.json: hidden_act '{}' is not supported (only silu)", excerpt(act));
  }
  c.vocab_size = required_int(j, "vocab_size", 1);
  c.hidden_size = required_int(j, "hidden_size", 1);
  c.intermediate_size = required_int(j, "intermediate_size", 1);
  c.num_layers = required_int(j, "num_hidden_layers", 1);
  c.num_heads = required_int(j, "num_attention_heads", 1);
  c.num_kv_heads = optional_int(j, "num_key_value_heads", c.num_heads, 1);
  if (present(j, "head_dim")) {
    c.head_dim = required_int(j, "head_dim", 1);
  } else {
    DATTN_CHECK(c.hidden_size % c.num_heads == 0,
                "config.json: hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is not given",
                c.hidden_size, c.num_heads);
    c.head_dim = c.hidden_size / c.num_heads;
  }
  c.max_position_embeddings = optional_int(j, "max_position_embeddings", 0, 0);
  if (present(j, "rms_norm_eps")) c.rms_norm_eps = positive_number(j, "rms_norm_eps");
  c.rope = parse_rope(j);
  c.tie_word_embeddings = bool_field(j, "tie_word_embeddings", false);

  switch (c.architecture) {
    case Architecture::llama:
      c.qkv_bias = c.o_bias = bool_field(j, "attention_bias", false);
      c.mlp_bias = bool_field(j, "mlp_bias", false);
      break;
    case Architecture::mistral:
      if (present(j, "sliding_window")) c.sliding_window = required_int(j, "sliding_window", 1);
      break;
    case Architecture::qwen2:
      c.qkv_bias = true;
      reject_sliding_layers(j);
      break;
    case Architecture::qwen3:
      c.qkv_bias = c.o_bias = bool_field(j, "attention_bias", false);
      c.qk_norm = true;
      reject_sliding_layers(j);
      break;
  }

  append_token_ids(j, "eos_token_id", c.eos_token_ids, "config.json");
  std::vector<int32_t> bos;
  append_token_ids(j, "bos_token_id", bos, "config.json");
  if (!bos.empty()) c.bos_token_id = bos[0];
  check_model_config(c);
  return c;
}

namespace {
// Sampling fields of generation_config.json; null means the default (transformers writes nulls).
void read_generation_defaults(const json& j, ModelConfig::GenerationDefaults& g, const std::string& where) {
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    DATTN_CHECK(j["do_sample"].is_boolean(), "{}: do_sample must be true or false", where);
    g.do_sample = j["do_sample"].get<bool>();
  }
  if (j.contains("temperature") && !j["temperature"].is_null()) {
    DATTN_CHECK(j["temperature"].is_number() && j["temperature"].get<double>() >= 0, "{}: temperature must be a number >= 0, got {}",
                where, json_excerpt(j["temperature"]));
    g.temperature = j["temperature"].get<double>();
  }
  if (j.contains("top_p") && !j["top_p"].is_null()) {
    DATTN_CHECK(j["top_p"].is_number() && j["top_p"].get<double>() > 0 && j["top_p"].get<double>() <= 1,
                "{}: top_p must be a number in (0, 1], got {}", where, json_excerpt(j["top_p"]));
    g.top_p = j["top_p"].get<double>();
  }
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    DATTN_CHECK(j["top_k"].is_number_integer() && j["top_k"].get<int64_t>() >= 0, "{}: top_k must be an integer >= 0, got {}",
                where, json_excerpt(j["top_k"]));
    g.top_k = j["top_k"].get<int64_t>();
  }
}
}  // namespace

void parse_generation_config(std::string_view json_text, ModelConfig& config) {
  json j = parse_json(json_text, "generation_config.json", kModelJsonLimits);
  DATTN_CHECK(j.is_object(), "generation_config.json must hold a JSON object, got {}", j.type_name());
  append_token_ids(j, "eos_token_id", config.eos_token_ids, "generation_config.json");
  read_generation_defaults(j, config.generation, "generation_config.json");
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  if (io::is_gguf_file(dir)) return gguf_model_config(io::GgufFile(dir));
  namespace fs = std::filesystem;
  const fs::path config_path = dir / "config.json";
  DATTN_CHECK(fs::exists(config_path), "{} not found: is '{}' a Hugging Face model directory?", config_path.string(),
              dir.string());
  const auto read = [](const fs::path& path) {
    return read_text_file(path, kModelJsonLimits.max_bytes, InputKind::regular_file);
  };
  ModelConfig config;
  const std::string config_text = read(config_path);
  try {
    config = parse_model_config(config_text);
  } catch (const Error& e) {
    fail("{}: {}", config_path.string(), e.what());
  }
  const fs::path generation_path = dir / "generation_config.json";
  if (fs::exists(generation_path)) {
    const std::string generation_text = read(generation_path);
    try {
      parse_generation_config(generation_text, config);
    } catch (const Error& e) {
      fail("{}: {}", generation_path.string(), e.what());
    }
  }
  return config;
}

void check_model_config(const ModelConfig& c) {
  require_in_range(c.vocab_size, 1, kMaxVocab, "config.json: vocab_size");
  require_in_range(c.hidden_size, 1, kMaxHidden, "config.json: hidden_size");
  require_in_range(c.intermediate_size, 1, kMaxIntermediate, "config.json: intermediate_size");
  require_in_range(c.num_layers, 1, kMaxLayers, "config.json: num_hidden_layers");
  require_in_range(c.num_heads, 1, kMaxHeads, "config.json: num_attention_heads");
  require_in_range(c.num_kv_heads, 1, c.num_heads, "config.json: num_key_value_heads");
  DATTN_CHECK(c.num_heads % c.num_kv_heads == 0,
              "config.json: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", c.num_heads,
              c.num_kv_heads);
  require_in_range(c.head_dim, 2, kMaxHeadDim, "config.json: head_dim");
  DATTN_CHECK(c.head_dim % 2 == 0, "config.json: head_dim {} must be even (rotary pairs)", c.head_dim);
  require_in_range(c.max_position_embeddings, 0, kMaxPositions, "config.json: max_position_embeddings");
  require_in_range(c.rope.original_max_position_embeddings, 1, kMaxPositions,
                   "config.json: original_max_position_embeddings");
  if (c.sliding_window) require_in_range(*c.sliding_window, 1, kMaxPositions, "config.json: sliding_window");
  // every weight matrix and activation width the forward pass allocates from these sizes
  checked_product(c.num_heads, c.head_dim, kMaxWidth, "config.json: num_attention_heads x head_dim");
  checked_product(c.vocab_size, c.hidden_size, kMaxMatrixElements, "config.json: vocab_size x hidden_size");
  checked_product(c.intermediate_size, c.hidden_size, kMaxMatrixElements,
                  "config.json: intermediate_size x hidden_size");
  checked_product(c.num_heads * c.head_dim, c.hidden_size, kMaxMatrixElements,
                  "config.json: num_attention_heads x head_dim x hidden_size");
}

double ModelConfig::attention_scale() const {
  return rope.attention_factor * rope.attention_factor / std::sqrt(double(head_dim));
}

std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int64_t head_dim) {
  // Mirrors transformers' fp32 tensor arithmetic step by step (modeling_rope_utils.py).
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  const float base = float(rope.theta);
  std::vector<float> pos_freqs(static_cast<size_t>(half));  // base ** (2i / dim)
  for (int64_t i = 0; i < half; ++i) {
    pos_freqs[size_t(i)] = std::pow(base, float(2 * i) / float(head_dim));
    inv_freq[size_t(i)] = 1.0f / pos_freqs[size_t(i)];  // torch: pow(base, e).reciprocal()
  }
  if (rope.type == RopeConfig::Type::linear) {
    for (float& f : inv_freq) f /= float(rope.factor);
  } else if (rope.type == RopeConfig::Type::llama3) {
    const float factor = float(rope.factor);
    const float low = float(rope.low_freq_factor), high = float(rope.high_freq_factor);
    const float old_len = float(rope.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
    const float two_pi = float(2.0 * M_PI);
    for (float& f : inv_freq) {
      float wavelen = (1.0f / f) * two_pi;  // torch evaluates scalar / tensor as reciprocal * scalar
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        float smooth = ((1.0f / wavelen) * old_len - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  } else if (rope.type == RopeConfig::Type::yarn) {
    // dimensions rotating fewer than beta_slow times over the original context are interpolated (divided
    // by factor), more than beta_fast times extrapolated (kept), with a linear ramp in between
    auto correction_dim = [&](double rotations) {
      return double(head_dim) * std::log(double(rope.original_max_position_embeddings) / (rotations * 2 * M_PI)) /
             (2 * std::log(rope.theta));
    };
    double low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
    if (rope.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(head_dim - 1));
    if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
    const float factor = float(rope.factor), ramp_low = float(low), ramp_width = float(high - low);
    for (int64_t i = 0; i < half; ++i) {
      const float interpolation = 1.0f / (factor * pos_freqs[size_t(i)]);
      const float extrapolation = inv_freq[size_t(i)];
      const float ramp = std::clamp((float(i) - ramp_low) / ramp_width, 0.0f, 1.0f);
      const float extrapolation_weight = 1.0f - ramp;
      inv_freq[size_t(i)] = interpolation * (1.0f - extrapolation_weight) + extrapolation * extrapolation_weight;
    }
  }
  if (!rope.frequency_divisors.empty()) {
    DATTN_CHECK(rope.frequency_divisors.size() == inv_freq.size(), "rope: {} frequency divisors for {} pairs",
                rope.frequency_divisors.size(), inv_freq.size());
    for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] /= rope.frequency_divisors[i];
  }
  return inv_freq;
}

}  // namespace dattn::model
