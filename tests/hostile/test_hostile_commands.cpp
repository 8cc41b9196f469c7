// The hostile files of test_hostile_loaders.cpp through the commands that read them: each refusal is exit
// code 1 with a short message naming the file, never a crash, a hang or a raw C++ exception name.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/io/npy.h"
#include "hostile_support.h"

namespace dattn::test {
namespace {

namespace fs = std::filesystem;

void expect_refused(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err.substr(0, 1000);
  expect_short_error(r.err, needle);
}

TEST(HostileCommands, DeepJsonInModelFiles) {
  TempDir dir;
  const fs::path model = copy_fixture(kTokenizerModel, dir.path);
  write_text(model / "tokenizer.json", deeply_nested_json(100000));
  expect_refused(run_dattn(fmt::format("tokenize --model {} --text hi", model.string()), dir.path),
                 "tokenizer.json nests arrays and objects more than 64 levels deep");
  expect_refused(run_dattn(fmt::format("detokenize --model {} --ids 1,2", model.string()), dir.path),
                 "more than 64 levels deep");
  write_text(model / "config.json", deeply_nested_json(100000));
  expect_refused(run_dattn(fmt::format("logits --model {} --ids 1,2 --out {}", model.string(),
                                       (dir.path / "l.npy").string()),
                           dir.path),
                 "config.json nests arrays and objects more than 64 levels deep");
  EXPECT_FALSE(fs::exists(dir.path / "l.npy"));
}

TEST(HostileCommands, ConfigSizesOutOfBounds) {
  TempDir dir;
  const fs::path model = copy_fixture(kTokenizerModel, dir.path);
  nlohmann::json config = nlohmann::json::parse(read_text(model / "config.json"));
  config["num_hidden_layers"] = 1e9;
  write_text(model / "config.json", config.dump());
  expect_refused(run_dattn(fmt::format("logits --model {} --ids 1,2 --out {}", model.string(),
                                       (dir.path / "l.npy").string()),
                           dir.path),
                 "num_hidden_layers is 1000000000 (must be in [1, 4096])");
  config["num_hidden_layers"] = 1;  // the checkpoint holds 2
  write_text(model / "config.json", config.dump());
  expect_refused(run_dattn(fmt::format("generate --model {} --prompt hi --max-new-tokens 1", model.string()),
                           dir.path),
                 "num_hidden_layers is 1 but the checkpoint holds tensor 'model.layers.1.");
}

TEST(HostileCommands, PromptFileThatIsADirectoryOrADevice) {
  TempDir dir;
  const std::string model = (models_dir() / kTokenizerModel).string();
  expect_refused(run_dattn(fmt::format("generate --model {} --prompt-file {} --max-new-tokens 1", model,
                                       dir.path.string()),
                           dir.path),
                 "is a directory");
  expect_refused(run_dattn(fmt::format("generate --model {} --prompt-file /dev/zero --max-new-tokens 1", model),
                           dir.path),
                 "'/dev/zero' is a character device");
}

TEST(HostileCommands, AttentionInputsThatAreDevicesFifosOrHugeHeaders) {
  TempDir dir;
  const std::vector<float> values(2 * 3 * 1 * 4, 0.5f);
  const fs::path good = dir.path / "k.npy";
  npy::save_f32(good, {2, 3, 1, 4}, values.data());
  const std::string rest = fmt::format("--k {0} --v {0} --out {1}", good.string(), (dir.path / "o.npy").string());
  expect_refused(run_dattn("attention --q /dev/zero " + rest, dir.path), "'/dev/zero' is a character device");
  const fs::path fifo = dir.path / "q.npy";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);  // nobody writes: reading it would block forever
  expect_refused(run_dattn(fmt::format("attention --q {} {}", fifo.string(), rest), dir.path), "is a FIFO");
  std::vector<uint8_t> huge_header = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0x20, 0};  // 2 MiB header
  huge_header.resize(huge_header.size() + (2 << 20), ' ');
  write_file(dir.path / "h.npy", huge_header);
  expect_refused(run_dattn(fmt::format("attention --q {} {}", (dir.path / "h.npy").string(), rest), dir.path),
                 "header length 2097152 exceeds the limit of 65536 bytes");
  EXPECT_FALSE(fs::exists(dir.path / "o.npy"));
}

}  // namespace
}  // namespace dattn::test
