// Safetensors robustness: every lie a header can tell, truncated and corrupt files, bad shards, wrong
// dtypes and shapes, missing tensors — always a dattn::Error with a clear message, never a crash.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/model/model.h"
#include "dattn/model/safetensors.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::FakeTensor;

std::vector<uint8_t> f32_bytes(std::vector<float> values) {
  std::vector<uint8_t> b(values.size() * 4);
  std::memcpy(b.data(), values.data(), b.size());
  return b;
}

SafetensorsHeader parse_bytes(const std::vector<uint8_t>& bytes) {
  return parse_safetensors_header(std::as_bytes(std::span(bytes)), bytes.size(), "test.safetensors");
}

// Parsing must fail with a message containing `needle`.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    parse_bytes(bytes);
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

std::vector<uint8_t> with_header(const std::string& header, size_t data_bytes = 16) {
  return test::safetensors_bytes_with_header(header, std::vector<uint8_t>(data_bytes, 0));
}

TEST(SafetensorsHeader, ParsesAValidFile) {
  auto bytes = test::safetensors_bytes({{"a", "F32", {2, 2}, f32_bytes({1, 2, 3, 4})},
                                        {"b", "BF16", {3}, std::vector<uint8_t>(6, 0)},
                                        {"empty", "F32", {0, 4}, {}}});
  SafetensorsHeader h = parse_bytes(bytes);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors.at("a").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(h.tensors.at("b").dtype, StDType::bf16);
  EXPECT_EQ(h.tensors.at("b").begin, 16u);
  EXPECT_EQ(h.data_offset + 22, bytes.size());
}

TEST(SafetensorsHeader, RejectsLies) {
  expect_rejected({1, 2, 3}, "too short");
  std::vector<uint8_t> huge_len = with_header("{}");
  huge_len[7] = 0x10;  // header length ~ 2^60
  expect_rejected(huge_len, "exceeds");
  std::vector<uint8_t> long_len = with_header("{}", 0);
  long_len[0] = 200;  // longer than the file
  expect_rejected(long_len, "exceeds the file");
  expect_rejected(with_header("{\"a\": "), "not valid JSON");
  expect_rejected(with_header("[1,2]"), "object");
  expect_rejected(with_header(R"({"a": 5})"), "entry must be an object");
  expect_rejected(with_header(R"({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})"), "unknown dtype");
  expect_rejected(with_header(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})"), "dtype");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})"), "non-negative");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})"), "shape");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})"), "non-negative");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})"), "reversed");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})"), "data_offsets");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})"), "past the end");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})"), "need 8 bytes");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})"),
                  "past the end");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 16]}})"),
                  "");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})"),
                  "overlap");
  expect_rejected(with_header(R"({"__metadata__": {"format": 1}})"), "__metadata__");
  expect_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}})"),
                  "rank");
}

// Flips, truncates and rewrites bytes of a real checkpoint header at random (fixed seed): every result
// must either parse into in-bounds, non-overlapping tensors or throw dattn::Error.
TEST(SafetensorsHeader, RandomCorruptionNeverEscapesAsAnythingButError) {
  fs::path file = test::models_dir() / "qwen3_qknorm_fp16" / "model.safetensors";
  std::vector<uint8_t> original;
  {
    std::ifstream in(file, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | original[size_t(i)];
  ASSERT_LT(header_len + 8, original.size());
  const std::string digits_and_syntax = "0123456789{}[]\",: -.eE";
  std::mt19937_64 rng(20240601);
  int accepted = 0, rejected = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  for (int iter = 0; iter < 20000 && std::chrono::steady_clock::now() < deadline; ++iter) {
    std::vector<uint8_t> bytes = original;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 5) {
        case 0:  // a random byte in the header
          bytes[8 + rng() % header_len] = uint8_t(rng());
          break;
        case 1:  // a JSON-looking byte in the header: digits and structure make deeper lies
          bytes[8 + rng() % header_len] = uint8_t(digits_and_syntax[rng() % digits_and_syntax.size()]);
          break;
        case 2:  // the length field
          bytes[rng() % 8] = uint8_t(rng());
          break;
        case 3:  // truncation anywhere
          bytes.resize(rng() % bytes.size());
          break;
        case 4:  // a digit run replaced by a large number
          {
            size_t pos = 8 + rng() % header_len;
            std::string big = std::to_string(rng());
            for (size_t k = 0; k < big.size() && pos + k < bytes.size(); ++k) bytes[pos + k] = uint8_t(big[k]);
          }
          break;
      }
      if (bytes.size() < 9) break;
    }
    try {
      SafetensorsHeader h = parse_bytes(bytes);
      ++accepted;
      const uint64_t data_size = bytes.size() - h.data_offset;
      for (const auto& [name, t] : h.tensors) {
        ASSERT_LE(t.begin, t.end);
        ASSERT_LE(t.end, data_size);
        ASSERT_EQ(t.end - t.begin, uint64_t(t.numel()) * st_dtype_size(t.dtype));
      }
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_GT(accepted, 0);  // some edits (e.g. inside a name) leave a valid file
}

// Copies a fixture into a scratch directory whose files the test then breaks.
struct BrokenCopy {
  test::TempDir dir;
  explicit BrokenCopy(const std::string& fixture) {
    for (const auto& entry : fs::directory_iterator(test::models_dir() / fixture))
      fs::copy(entry.path(), dir.path / entry.path().filename());
  }
  // Rewrites a single-file checkpoint through `edit` of its tensor list.
  void rewrite(const std::function<void(std::vector<FakeTensor>&)>& edit) {
    std::vector<FakeTensor> tensors;
    {
      Checkpoint c = Checkpoint::open(dir.path);
      for (const std::string& name : c.names()) {
        TensorRef r = c.get(name);
        FakeTensor t{name, std::string(st_dtype_name(r.info->dtype)), r.info->shape, {}};
        const auto* p = reinterpret_cast<const uint8_t*>(r.bytes.data());
        t.bytes.assign(p, p + r.bytes.size());
        tensors.push_back(std::move(t));
      }
    }
    edit(tensors);
    test::write_file(dir.path / "model.safetensors", test::safetensors_bytes(tensors));
  }
  void expect_load_error(const std::string& needle) {
    try {
      Model::load(dir.path);
      ADD_FAILURE() << "loaded a broken checkpoint (expected '" << needle << "')";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
    }
  }
};

FakeTensor* find(std::vector<FakeTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(CheckpointErrors, UnmodifiedCopyLoads) {
  BrokenCopy copy("llama_linear_untied");
  copy.rewrite([](std::vector<FakeTensor>&) {});
  EXPECT_NO_THROW(Model::load(copy.dir.path));
}

TEST(CheckpointErrors, TruncatedFile) {
  BrokenCopy copy("llama_linear_untied");
  fs::resize_file(copy.dir.path / "model.safetensors", fs::file_size(copy.dir.path / "model.safetensors") - 100);
  copy.expect_load_error("truncated");
  fs::resize_file(copy.dir.path / "model.safetensors", 5);
  copy.expect_load_error("too short");
  fs::resize_file(copy.dir.path / "model.safetensors", 0);
  copy.expect_load_error("too short");
}

TEST(CheckpointErrors, MissingTensorIsNamed) {
  BrokenCopy copy("llama_linear_untied");
  copy.rewrite([](auto& ts) { std::erase_if(ts, [](auto& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; }); });
  copy.expect_load_error("model.layers.1.mlp.up_proj.weight");
  BrokenCopy head("llama_linear_untied");
  head.rewrite([](auto& ts) { std::erase_if(ts, [](auto& t) { return t.name == "lm_head.weight"; }); });
  head.expect_load_error("tie_word_embeddings");
}

TEST(CheckpointErrors, WrongDtypeIsNamed) {
  BrokenCopy copy("llama_linear_untied");
  copy.rewrite([](auto& ts) { find(ts, "model.norm.weight")->dtype = "I32"; });
  copy.expect_load_error("I32");
  BrokenCopy f64("llama_linear_untied");
  f64.rewrite([](auto& ts) {
    FakeTensor* t = find(ts, "model.norm.weight");
    t->dtype = "F64";
    t->shape = {t->shape[0] / 2};
  });
  f64.expect_load_error("shape");  // the shape check names the tensor before its dtype matters
}

TEST(CheckpointErrors, WrongShapeIsNamed) {
  BrokenCopy copy("llama_linear_untied");
  copy.rewrite([](auto& ts) {
    FakeTensor* t = find(ts, "model.layers.0.self_attn.k_proj.weight");
    std::swap(t->shape[0], t->shape[1]);
  });
  copy.expect_load_error("model.layers.0.self_attn.k_proj.weight");
}

TEST(CheckpointErrors, BadConfigValue) {
  BrokenCopy copy("llama_linear_untied");
  json c = json::parse(test::read_text(copy.dir.path / "config.json"));
  c["num_key_value_heads"] = 4;  // 6 heads are not a multiple of 4
  test::write_text(copy.dir.path / "config.json", c.dump());
  copy.expect_load_error("num_key_value_heads");
  c["num_key_value_heads"] = 3;  // divides 6 but the k_proj weights have 2 heads
  test::write_text(copy.dir.path / "config.json", c.dump());
  copy.expect_load_error("k_proj");
}

TEST(CheckpointErrors, ShardIndexLies) {
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  auto edit_index = [](BrokenCopy& copy, const std::function<void(json&)>& edit) {
    fs::path path = copy.dir.path / "model.safetensors.index.json";
    json index = json::parse(test::read_text(path));
    edit(index);
    test::write_text(path, index.dump());
  };
  {
    BrokenCopy copy("llama3_tied_sharded");
    EXPECT_NO_THROW(Model::load(copy.dir.path));
    fs::remove(copy.dir.path / shard2);
    copy.expect_load_error("missing");
  }
  {
    BrokenCopy copy("llama3_tied_sharded");
    edit_index(copy, [&](json& j) { j["weight_map"]["model.norm.weight"] = "../../etc/passwd"; });
    copy.expect_load_error("not a file in the model directory");
  }
  {
    BrokenCopy copy("llama3_tied_sharded");
    edit_index(copy, [&](json& j) {
      std::string& where = j["weight_map"]["model.norm.weight"].get_ref<std::string&>();
      where = where == shard1 ? shard2 : shard1;
    });
    copy.expect_load_error("model.norm.weight");
  }
  {
    BrokenCopy copy("llama3_tied_sharded");
    edit_index(copy, [&](json& j) { j["weight_map"]["model.extra.weight"] = shard1; });
    copy.expect_load_error("model.extra.weight");
  }
  {
    BrokenCopy copy("llama3_tied_sharded");
    edit_index(copy, [&](json& j) { j.erase("weight_map"); });
    copy.expect_load_error("weight_map");
  }
  {
    BrokenCopy copy("llama3_tied_sharded");  // the same tensor stored in both shards
    fs::copy_file(copy.dir.path / shard1, copy.dir.path / "dup.safetensors");
    edit_index(copy, [&](json& j) { j["weight_map"]["model.embed_tokens.weight"] = "dup.safetensors"; });
    copy.expect_load_error("stored twice");
  }
}

TEST(CheckpointErrors, NoWeightsAtAll) {
  BrokenCopy copy("llama_linear_untied");
  fs::remove(copy.dir.path / "model.safetensors");
  copy.expect_load_error("model.safetensors");
}

}  // namespace
}  // namespace dattn::model
