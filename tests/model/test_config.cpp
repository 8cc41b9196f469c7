// config.json parsing: both rope styles, defaults, and a clear error naming the field for everything else.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/model/config.h"
#include "dattn/model/session.h"
#include "json_mutation.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

using nlohmann::json;

json base_llama() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"vocab_size", 100}};
}

ModelConfig parse(const json& j) { return parse_model_config(j.dump()); }

// The parse must fail and the message must name `field`.
void expect_error_naming(const json& j, const std::string& field) {
  try {
    parse(j);
    ADD_FAILURE() << "accepted: " << j.dump();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << "message: " << e.what();
  }
}

TEST(ModelConfig, DefaultsOfAMinimalLlamaConfig) {
  ModelConfig c = parse(base_llama());
  EXPECT_EQ(c.architecture, Architecture::llama);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.rope.type, RopeConfig::Type::default_);
  EXPECT_EQ(c.rope.theta, 10000.0);
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(ModelConfig, ArchitectureSpecificFields) {
  json q2 = base_llama();
  q2["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_TRUE(parse(q2).qkv_bias);
  EXPECT_FALSE(parse(q2).o_bias);
  json q3 = base_llama();
  q3["architectures"] = {"Qwen3ForCausalLM"};
  q3["head_dim"] = 24;
  ModelConfig c3 = parse(q3);
  EXPECT_TRUE(c3.qk_norm);
  EXPECT_EQ(c3.head_dim, 24);
  json llama_bias = base_llama();
  llama_bias["attention_bias"] = true;
  llama_bias["mlp_bias"] = true;
  ModelConfig cb = parse(llama_bias);
  EXPECT_TRUE(cb.qkv_bias && cb.o_bias && cb.mlp_bias);
  json by_type = base_llama();
  by_type.erase("architectures");
  by_type["model_type"] = "mistral";
  by_type["sliding_window"] = nullptr;
  EXPECT_EQ(parse(by_type).architecture, Architecture::mistral);
  EXPECT_FALSE(parse(by_type).sliding_window.has_value());
}

TEST(ModelConfig, RopeStylesOfTransformers4And5AreEquivalent) {
  json v4 = base_llama();
  v4["rope_theta"] = 500000.0;
  v4["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  json v5 = base_llama();
  v5["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                           {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
  ModelConfig a = parse(v4), b = parse(v5);
  EXPECT_EQ(a.rope.type, RopeConfig::Type::llama3);
  EXPECT_EQ(rope_inverse_frequencies(a.rope, 128), rope_inverse_frequencies(b.rope, 128));
  json legacy_type_key = base_llama();
  legacy_type_key["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  EXPECT_EQ(parse(legacy_type_key).rope.type, RopeConfig::Type::linear);
}

TEST(ModelConfig, RopeFrequencies) {
  RopeConfig plain{.theta = 10000.0};
  auto f = rope_inverse_frequencies(plain, 8);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[1], 0.1f);
  EXPECT_FLOAT_EQ(f[2], 0.01f);
  RopeConfig linear = plain;
  linear.type = RopeConfig::Type::linear;
  linear.factor = 4.0;
  EXPECT_FLOAT_EQ(rope_inverse_frequencies(linear, 8)[1], 0.025f);
  // llama3 at Llama 3.1's values: high frequencies kept, low ones divided by the factor
  RopeConfig llama3{.type = RopeConfig::Type::llama3, .theta = 500000.0, .factor = 8.0, .low_freq_factor = 1.0,
                    .high_freq_factor = 4.0, .original_max_position_embeddings = 8192};
  auto base = rope_inverse_frequencies({.theta = 500000.0}, 128), scaled = rope_inverse_frequencies(llama3, 128);
  EXPECT_EQ(scaled[0], base[0]);
  EXPECT_FLOAT_EQ(scaled[63], base[63] / 8.0f);
  for (size_t i = 0; i < 64; ++i) EXPECT_LE(scaled[i], base[i]);
}

TEST(ModelConfig, YarnParametersAndDefaults) {
  json j = base_llama();
  j["max_position_embeddings"] = 4096;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope.type, RopeConfig::Type::yarn);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 4096);  // falls back to max_position_embeddings
  EXPECT_DOUBLE_EQ(c.rope.attention_factor, 0.1 * std::log(4.0) + 1.0);
  EXPECT_DOUBLE_EQ(c.attention_scale(), c.rope.attention_factor * c.rope.attention_factor / 4.0);  // head_dim 16
  j["rope_scaling"]["original_max_position_embeddings"] = 1024;
  j["rope_scaling"]["mscale"] = 1.0;
  j["rope_scaling"]["mscale_all_dim"] = 1.0;
  c = parse(j);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 1024);
  EXPECT_DOUBLE_EQ(c.rope.attention_factor, 1.0);
  j["rope_scaling"]["attention_factor"] = 0.5;
  EXPECT_DOUBLE_EQ(parse(j).rope.attention_factor, 0.5);
  j["original_max_position_embeddings"] = 2048;  // a top-level field wins, as in transformers
  EXPECT_EQ(parse(j).rope.original_max_position_embeddings, 2048);
  // frequencies: the fastest dimensions are kept, the slowest divided by the factor
  auto base = rope_inverse_frequencies({.theta = 10000.0}, 64), yarn = rope_inverse_frequencies(c.rope, 64);
  EXPECT_EQ(yarn[0], base[0]);
  EXPECT_FLOAT_EQ(yarn[31], base[31] / 4.0f);
  EXPECT_EQ(parse(base_llama()).attention_scale(), 0.25);
}

TEST(ModelConfig, EosIdsFromConfigAndGenerationConfig) {
  test::TempDir dir;
  json c = base_llama();
  c["eos_token_id"] = {7, 9};
  c["bos_token_id"] = 3;
  test::write_text(dir.path / "config.json", c.dump());
  test::write_text(dir.path / "generation_config.json", R"({"eos_token_id": [9, 11]})");
  ModelConfig loaded = load_model_config(dir.path);
  EXPECT_EQ(loaded.eos_token_ids, (std::vector<int32_t>{7, 9, 11}));
  EXPECT_EQ(loaded.bos_token_id, 3);
  test::write_text(dir.path / "generation_config.json", "{not json");
  EXPECT_THROW(load_model_config(dir.path), Error);
}

TEST(ModelConfig, SamplingDefaultsFromGenerationConfig) {
  test::TempDir dir;
  test::write_text(dir.path / "config.json", base_llama().dump());
  ModelConfig none = load_model_config(dir.path);  // no file: transformers' defaults
  EXPECT_FALSE(none.generation.do_sample);
  EXPECT_EQ(none.generation.temperature, 1.0);
  EXPECT_EQ(none.generation.top_k, 50);
  EXPECT_EQ(none.generation.top_p, 1.0);
  // as Llama 3.1 Instruct ships it; null (as transformers writes unset fields) keeps the default
  test::write_text(dir.path / "generation_config.json",
                   R"({"do_sample": true, "temperature": 0.6, "top_p": 0.9, "top_k": null})");
  ModelConfig llama = load_model_config(dir.path);
  EXPECT_TRUE(llama.generation.do_sample);
  EXPECT_EQ(llama.generation.temperature, 0.6);
  EXPECT_EQ(llama.generation.top_p, 0.9);
  EXPECT_EQ(llama.generation.top_k, 50);
  for (const char* bad : {R"({"do_sample": "yes"})", R"({"temperature": -1})", R"({"top_p": 0})",
                          R"({"top_p": 1.5})", R"({"top_k": 2.5})"}) {
    test::write_text(dir.path / "generation_config.json", bad);
    try {
      load_model_config(dir.path);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
    }
  }
}

TEST(ModelConfig, ErrorsNameTheField) {
  auto with = [](const char* key, json value) {
    json j = base_llama();
    j[key] = std::move(value);
    return j;
  };
  auto without = [](const char* key) {
    json j = base_llama();
    j.erase(key);
    return j;
  };
  expect_error_naming(without("hidden_size"), "hidden_size");
  expect_error_naming(without("vocab_size"), "vocab_size");
  expect_error_naming(with("hidden_size", "64"), "hidden_size");
  expect_error_naming(with("num_hidden_layers", 0), "num_hidden_layers");
  expect_error_naming(with("num_hidden_layers", 2.5), "num_hidden_layers");
  expect_error_naming(with("num_key_value_heads", 3), "num_key_value_heads");
  expect_error_naming(with("head_dim", 15), "head_dim");
  expect_error_naming(with("num_attention_heads", 5), "num_attention_heads");
  expect_error_naming(with("architectures", json::array({"GPT2LMHeadModel"})), "GPT2LMHeadModel");
  expect_error_naming(with("architectures", json::array()), "architectures");
  expect_error_naming(with("hidden_act", "gelu"), "hidden_act");
  expect_error_naming(with("rms_norm_eps", -1.0), "rms_norm_eps");
  expect_error_naming(with("rope_theta", "big"), "rope_theta");
  expect_error_naming(with("rope_scaling", {{"rope_type", "longrope"}, {"factor", 4.0}}), "longrope");
  expect_error_naming(with("rope_scaling", {{"rope_type", "yarn"}}), "factor");
  expect_error_naming(with("rope_scaling", {{"rope_type", "dynamic"}, {"factor", 2.0}}), "dynamic");
  expect_error_naming(with("rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}), "low_freq_factor");
  expect_error_naming(with("rope_scaling", {{"rope_type", "linear"}, {"factor", -2.0}}), "factor");
  expect_error_naming(with("rope_scaling", "linear"), "rope_scaling");
  expect_error_naming(with("rope_parameters", {{"full_attention", {{"rope_type", "default"}}}}), "rope_parameters");
  expect_error_naming(with("partial_rotary_factor", 0.5), "partial_rotary_factor");
  expect_error_naming(with("quantization_config", {{"quant_method", "gptq"}}), "quantization_config");
  expect_error_naming(with("tie_word_embeddings", "yes"), "tie_word_embeddings");
  expect_error_naming(with("eos_token_id", "</s>"), "eos_token_id");
  json qwen = with("use_sliding_window", true);
  qwen["architectures"] = {"Qwen2ForCausalLM"};
  expect_error_naming(qwen, "use_sliding_window");
  json qwen3 = with("layer_types", {"full_attention", "sliding_attention"});
  qwen3["architectures"] = {"Qwen3ForCausalLM"};
  expect_error_naming(qwen3, "layer_types");
  EXPECT_THROW(parse_model_config("{\"hidden_size\": "), Error);
  EXPECT_THROW(parse_model_config("[1, 2]"), Error);
  EXPECT_THROW(parse_model_config(""), Error);
}

TEST(ModelConfig, MistralSlidingWindowLimitsTheContext) {
  test::TempDir dir;
  for (const auto& entry : std::filesystem::directory_iterator(test::models_dir() / "mistral_bf16"))
    std::filesystem::copy(entry.path(), dir.path / entry.path().filename());
  json c = json::parse(test::read_text(dir.path / "config.json"));
  c["sliding_window"] = 32;
  test::write_text(dir.path / "config.json", c.dump());
  auto model = Model::load(dir.path);
  EXPECT_EQ(model->config().sliding_window, 32);
  SessionOptions o;
  o.context = 32;
  EXPECT_NO_THROW(Session(model, o));
  o.context = 33;
  try {
    Session s(model, o);
    ADD_FAILURE() << "context beyond the sliding window accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sliding_window"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, MissingDirectoryOrConfig) {
  test::TempDir dir;
  EXPECT_THROW(load_model_config(dir.path), Error);
  EXPECT_THROW(Model::load(dir.path / "nope"), Error);
  // a config error from a file names the file
  test::write_text(dir.path / "config.json", R"({"architectures": ["LlamaForCausalLM"]})");
  try {
    load_model_config(dir.path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos);
  }
}

// Randomised corruption of every fixture's config.json and generation_config.json (fixed seed, bounded
// time): parsing may only give a config within its bounds or throw dattn::Error.
TEST(ModelConfig, RandomCorruptionFailsCleanly) {
  std::mt19937 rng(20261203);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  int attempts = 0, parsed = 0;
  for (const std::string& name : test::fixture_names()) {
    const std::string config = test::read_text(test::models_dir() / name / "config.json");
    const std::string generation = test::read_text(test::models_dir() / name / "generation_config.json");
    const json config_document = json::parse(config), generation_document = json::parse(generation);
    for (int i = 0; i < 300 && std::chrono::steady_clock::now() < deadline; ++i, ++attempts) {
      std::string config_text = config, generation_text = generation;
      json mutated = i % 4 < 2 ? config_document : generation_document;
      if (i % 4 == 0) config_text = test::mutate_bytes(config, rng);
      if (i % 4 == 2) generation_text = test::mutate_bytes(generation, rng);
      test::mutate_structure(mutated, rng);
      if (i % 4 == 1) config_text = mutated.dump();
      if (i % 4 == 3) generation_text = mutated.dump();
      try {
        ModelConfig c = parse_model_config(config_text);
        parse_generation_config(generation_text, c);
        EXPECT_NO_THROW(check_model_config(c)) << config_text.substr(0, 2000);
        EXPECT_EQ(rope_inverse_frequencies(c.rope, c.head_dim).size(), size_t(c.head_dim / 2));
        ++parsed;
      } catch (const Error& e) {
        EXPECT_LT(std::string(e.what()).size(), 1000u) << std::string(e.what()).substr(0, 1000);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not a dattn::Error: " << e.what();
      }
    }
  }
  // both outcomes, or the mutations are too weak (or too strong) to mean much
  EXPECT_GT(attempts, 300);
  EXPECT_GT(parsed, 20);
  EXPECT_LT(parsed, attempts - 100);
  std::printf("config fuzz: %d corrupted config files, %d still parsed\n", attempts, parsed);
}

}  // namespace
}  // namespace dattn::model
