// Hostile and careless input to every loader of user files: JSON nested 100k levels deep, sizes whose
// products wrap around, token ids far beyond the vocabulary, /dev/zero, FIFOs and directories in place of
// files, huge headers. Each must end in a short dattn::Error naming the file or field, never a crash, a
// hang, an allocation of the stated size or silently wrong data.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/io/npy.h"
#include "dattn/model/config.h"
#include "dattn/model/model.h"
#include "dattn/model/safetensors.h"
#include "dattn/model/tokenizer.h"
#include "hostile_support.h"

namespace dattn::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Each loader a model directory goes through, by the file it reads.
void load_config(const fs::path& dir) { model::load_model_config(dir); }
void load_tokenizer(const fs::path& dir) { Tokenizer::load(dir); }
void load_model(const fs::path& dir) { model::Model::load(dir); }

TEST(HostileJson, DeepNestingInEveryModelFileIsRefusedShortly) {
  // the deep value sits where a loader quotes a wrong value in its message (a recursive dump of 100k
  // levels overflowed the stack) or walks into it
  const struct {
    const char* file;
    const char* field;
    std::function<void(const fs::path&)> load;
  } cases[] = {
      {"config.json", "architectures", load_config},
      {"generation_config.json", "eos_token_id", load_config},
      {"tokenizer.json", "model", load_tokenizer},
      {"tokenizer_config.json", "bos_token", load_tokenizer},
      {"generation_config.json", "eos_token_id", load_tokenizer},
      {"model.safetensors.index.json", "weight_map", load_model},
  };
  for (const auto& c : cases) {
    TempDir dir;
    const fs::path model = copy_fixture(kTokenizerModel, dir.path);
    write_text(model / c.file, fmt::format("{{\"{}\": {}}}", c.field, deeply_nested_json(100000)));
    const std::string message = error_of([&] { c.load(model); });
    expect_short_error(message, "more than 64 levels deep");
    EXPECT_NE(message.find(c.file), std::string::npos) << message;
  }
}

TEST(HostileJson, DeepNestingInASafetensorsHeaderIsRefused) {
  const std::string header = "{\"a\": " + deeply_nested_json(100000) + "}";
  const std::vector<uint8_t> bytes = safetensors_bytes_with_header(header, {});
  const std::string message = error_of(
      [&] { model::parse_safetensors_header(std::as_bytes(std::span(bytes)), bytes.size(), "x.safetensors"); });
  expect_short_error(message, "x.safetensors: header nests arrays and objects more than 8 levels deep");
}

TEST(HostileJson, AHugeValueIsNotEchoed) {
  // a 20 MB string where a number belongs, and 20 MB of garbage after a valid prefix
  const std::string huge(20 << 20, 'x');
  const std::string wrong_type = "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": \"" + huge + "\"}";
  expect_short_error(error_of([&] { model::parse_model_config(wrong_type); }), "vocab_size' must be an integer");
  expect_short_error(error_of([&] { model::parse_model_config("{\"a\": \"" + huge); }), "not valid JSON");
  expect_short_error(error_of([&] { Tokenizer::from_json("[\"" + huge + "\" x]"); }), "not valid JSON");
}

json fixture_config() { return json::parse(read_text(models_dir() / kTokenizerModel / "config.json")); }

TEST(HostileSizes, AWrappingHeadProductIsRefused) {
  // 4 heads x (2^62 + 16) wraps around int64 to 64, the real q_proj width of the fixture
  json config = fixture_config();
  config["head_dim"] = (int64_t{1} << 62) + 16;
  expect_short_error(error_of([&] { model::parse_model_config(config.dump()); }),
                     "config.json: head_dim is 4611686018427387920 (must be in [2, 4096])");
  // a config built in code is checked when the model is bound, before any buffer is sized from it
  model::ModelConfig built = model::parse_model_config(fixture_config().dump());
  built.head_dim = (int64_t{1} << 62) + 16;
  auto checkpoint = std::make_shared<const model::Checkpoint>(model::Checkpoint::open(models_dir() / kTokenizerModel));
  expect_short_error(error_of([&] { model::Model::from_checkpoint(built, checkpoint); }), "head_dim");
}

TEST(HostileSizes, EverySizeFieldIsBounded) {
  const struct {
    const char* field;
    json value;
    const char* message;
  } cases[] = {
      {"num_hidden_layers", 1e9, "num_hidden_layers is 1000000000 (must be in [1, 4096])"},
      {"vocab_size", int64_t{1} << 40, "vocab_size is 1099511627776 (must be in [1, 16777216])"},
      {"hidden_size", int64_t{1} << 62, "hidden_size is 4611686018427387904 (must be in [1, 262144])"},
      {"intermediate_size", 1e15, "intermediate_size is 1000000000000000 (must be in [1, 1048576])"},
      {"num_attention_heads", 1 << 20, "num_attention_heads is 1048576 (must be in [1, 4096])"},
      {"num_key_value_heads", 8, "num_key_value_heads is 8 (must be in [1, 4])"},
      {"max_position_embeddings", int64_t{1} << 40, "max_position_embeddings is"},
      {"num_hidden_layers", UINT64_MAX, "num_hidden_layers' is 18446744073709551615 (must be at most"},
  };
  for (const auto& c : cases) {
    json config = fixture_config();
    config[c.field] = c.value;
    expect_short_error(error_of([&] { model::parse_model_config(config.dump()); }), c.message);
  }
}

TEST(HostileSizes, ACheckpointWithMoreOrFewerLayersThanTheConfigIsRefused) {
  for (const int layers : {1, 3}) {
    TempDir dir;
    const fs::path model = copy_fixture(kTokenizerModel, dir.path);
    json config = fixture_config();
    config["num_hidden_layers"] = layers;
    write_text(model / "config.json", config.dump());
    const std::string message = error_of([&] { model::Model::load(model); });
    expect_short_error(message, fmt::format("config.json's num_hidden_layers is {} but the checkpoint holds", layers));
  }
}

TEST(HostileSizes, ATokenIdFarBeyondTheVocabularyCostsNothing) {
  const fs::path fixture = models_dir() / kTokenizerModel;
  json tokenizer = json::parse(read_text(fixture / "tokenizer.json"));
  tokenizer["added_tokens"].push_back({{"id", (1 << 24) - 1}, {"content", "<far>"}, {"special", true}});
  expect_short_error(error_of([&] { Tokenizer::from_json(tokenizer.dump()); }),
                     "token '<far>' has id 16777215, far beyond its");
  // the same id through tokenizer_config.json's added_tokens_decoder
  json config = json::parse(read_text(fixture / "tokenizer_config.json"));
  config["added_tokens_decoder"]["16777215"] = {{"content", "<far>"}, {"special", true}};
  expect_short_error(error_of([&] { Tokenizer::from_json(read_text(fixture / "tokenizer.json"), config.dump()); }),
                     "has id 16777215, far beyond");
}

TEST(HostileFiles, NpyFromDevZeroAFifoOrADirectoryIsRefusedByName) {
  TempDir dir;
  const fs::path fifo = dir.path / "q.npy";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_short_error(error_of([] { npy::load("/dev/zero"); }), "'/dev/zero' is a character device");
  expect_short_error(error_of([&] { npy::load(fifo); }), "is a FIFO; expected a regular file");
  expect_short_error(error_of([&] { npy::load(dir.path); }), "is a directory");
}

TEST(HostileFiles, ModelFilesMustBeRegularFiles) {
  // each as a directory, a FIFO with no writer, and /dev/zero
  for (const char* file : {"config.json", "generation_config.json", "tokenizer_config.json",
                           "model.safetensors.index.json", "model-00001-of-00002.safetensors"}) {
    for (const char* kind : {"a directory", "a FIFO", "a character device"}) {
      TempDir dir;
      const fs::path model = copy_fixture(kTokenizerModel, dir.path);
      fs::remove(model / file);
      if (kind == std::string("a directory")) fs::create_directory(model / file);
      if (kind == std::string("a FIFO")) {
        ASSERT_EQ(::mkfifo((model / file).c_str(), 0600), 0);
      }
      if (kind == std::string("a character device")) fs::create_symlink("/dev/zero", model / file);
      const bool tokenizer_file = std::string(file) == "tokenizer_config.json";
      const std::string message = error_of([&] { tokenizer_file ? load_tokenizer(model) : load_model(model); });
      expect_short_error(message, fmt::format("is {}; expected a regular file", kind));
      EXPECT_NE(message.find(file), std::string::npos) << message;
    }
  }
}

TEST(HostileFiles, AHugeNpyHeaderIsRefusedWithoutEchoingIt) {
  // a version 2 header announcing 50 MB, all of it present
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
  const uint32_t length = 50u << 20;
  for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(length >> (8 * i)));
  bytes.resize(bytes.size() + length, ' ');
  expect_short_error(error_of([&] { npy::parse(bytes.data(), bytes.size(), "h.npy"); }),
                     "h.npy: header length 52428800 exceeds the limit of 65536 bytes");
  TempDir dir;
  write_file(dir.path / "h.npy", bytes);
  expect_short_error(error_of([&] { npy::load(dir.path / "h.npy"); }), "exceeds the limit of 65536 bytes");
  // a malformed header within the limit is quoted only in part
  std::string dict = "{'descr': '" + std::string(60000, 'f') + "', 'fortran_order': False, 'shape': (2,), }";
  std::vector<uint8_t> long_header = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size() & 0xff),
                                      uint8_t(dict.size() >> 8)};
  long_header.insert(long_header.end(), dict.begin(), dict.end());
  expect_short_error(error_of([&] { npy::parse(long_header.data(), long_header.size(), "d.npy"); }),
                     "unsupported dtype");
}

TEST(HostileFiles, NpyShapesWhoseBytesWrapAreRefused) {
  // 2^31 x 2^31 x 2^2 float32 elements: 2^66 bytes, 0 after wrapping around
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648, 4), }";
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size()), 0};
  bytes.insert(bytes.end(), dict.begin(), dict.end());
  expect_short_error(error_of([&] { npy::parse(bytes.data(), bytes.size(), "w.npy"); }), "w.npy: shape [");
}

}  // namespace
}  // namespace dattn::test
