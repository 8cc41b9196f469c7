// `dattn logits`, `tokenize`, `detokenize` and `generate` end to end on the fixtures: outputs equal the
// in-process results, and bad input ends in exit code 1 with a message naming the problem.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <sys/wait.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dattn/io/npy.h"
#include "dattn/model/cuda_session.h"
#include "dattn/model/generate.h"
#include "dattn/model/tokenizer.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code;
  std::string out, err;
};

CommandResult run_dattn(const std::string& args, const fs::path& dir) {
  fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::string command = fmt::format("{} {} > {} 2> {}", DATTN_BINARY, args, out.string(), err.string());
  int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, test::read_text(out), test::read_text(err)};
}

std::string model_arg(const std::string& fixture) { return "--model " + (test::models_dir() / fixture).string(); }

TEST(CliLogits, IdsGiveTheTransformersLogits) {
  test::TempDir dir;
  const std::string fixture = "mistral_bf16";
  const auto c = test::load_cases(fixture).back();
  fs::path out = dir.path / "l.npy";
  auto r = run_dattn(fmt::format("logits {} --ids {} --chunk 7 --out {}", model_arg(fixture), fmt::join(c.ids, ","),
                                 out.string()),
                     dir.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  npy::Array a = npy::load(out);
  ASSERT_EQ(a.shape, (std::vector<int64_t>{int64_t(c.ids.size()), 1058}));
  std::vector<float> logits(size_t(a.numel()));
  std::memcpy(logits.data(), a.bytes.data(), logits.size() * 4);
  EXPECT_LE(test::relative_l2(logits, c.logits), 1e-4);
}

TEST(CliLogits, TextUsesTheTokenizerWithSpecialTokens) {
  test::TempDir dir;
  const std::string fixture = "llama3_tied_sharded";
  fs::path out = dir.path / "l.npy";
  auto r = run_dattn(fmt::format("logits {} --text 'Hello world' --attention delta --window 2 --sink 1 --gamma 2 "
                                 "--tail-min 1 --out {}",
                                 model_arg(fixture), out.string()),
                     dir.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tokenizer tokenizer = Tokenizer::load(test::models_dir() / fixture);
  std::vector<int32_t> ids = tokenizer.encode("Hello world", true);
  EXPECT_EQ(npy::load(out).shape[0], int64_t(ids.size()));
}

TEST(CliTokenize, RoundTrip) {
  test::TempDir dir;
  const std::string fixture = "qwen2_bias_tied";
  Tokenizer tokenizer = Tokenizer::load(test::models_dir() / fixture);
  std::vector<int32_t> ids = tokenizer.encode("The quick brown fox, 42 times.", true);
  auto r = run_dattn(fmt::format("tokenize {} --text 'The quick brown fox, 42 times.'", model_arg(fixture)), dir.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, fmt::format("[{}]\n", fmt::join(ids, ", ")));
  r = run_dattn(fmt::format("detokenize {} --ids {}", model_arg(fixture), fmt::join(ids, ",")), dir.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, tokenizer.decode(ids, true) + "\n");
}

// --model FILE.gguf: the fixtures converted by tools/make_gguf_fixtures.py answer as their originals do.
TEST(CliGguf, CommandsAnswerAsTheSafetensorsModel) {
  test::TempDir dir;
  const fs::path gguf = fs::path(DATTN_SOURCE_DIR) / "tests/fixtures/gguf";
  const std::string text = "'The quick brown fox, 42 times.'";
  for (const char* command : {"tokenize", "tokenize --no-special"}) {
    const auto a = run_dattn(fmt::format("{} --model {} --text {}", command, (gguf / "qwen2_bias_tied.Q8_0.gguf").string(), text), dir.path);
    const auto b = run_dattn(fmt::format("{} {} --text {}", command, model_arg("qwen2_bias_tied"), text), dir.path);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
  }
  const auto detok = run_dattn(fmt::format("detokenize --model {} --ids 40,41,42", (gguf / "qwen2_bias_tied.Q8_0.gguf").string()), dir.path);
  EXPECT_EQ(detok.out, run_dattn("detokenize " + model_arg("qwen2_bias_tied") + " --ids 40,41,42", dir.path).out);
  // same weights: the same greedy tokens (F32) and bit-identical logits (F16 weights of the fp16 fixture)
  const std::string generate = "generate --prompt 'Hello world' --max-new-tokens 8 --greedy --model ";
  const auto a = run_dattn(generate + (gguf / "llama3_tied_sharded.F32.gguf").string(), dir.path);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, run_dattn(generate + (test::models_dir() / "llama3_tied_sharded").string(), dir.path).out);
  const auto l = run_dattn(fmt::format("logits --model {} --ids 1,2,3 --out {}",
                                       (gguf / "qwen3_qknorm_fp16.F16.gguf").string(), (dir.path / "a.npy").string()),
                           dir.path);
  ASSERT_EQ(l.exit_code, 0) << l.err;
  run_dattn(fmt::format("logits {} --ids 1,2,3 --out {}", model_arg("qwen3_qknorm_fp16"), (dir.path / "b.npy").string()),
            dir.path);
  EXPECT_EQ(npy::load(dir.path / "a.npy").bytes, npy::load(dir.path / "b.npy").bytes);
}

TEST(CliGenerate, GreedyOutputEqualsInProcessGeneration) {
  test::TempDir dir;
  const std::string fixture = "llama3_tied_sharded";
  auto r = run_dattn(fmt::format("generate {} --prompt 'Hello world' --max-new-tokens 10 --attention delta "
                                 "--window 4 --sink 2 --gamma 2 --dense-layers 1",
                                 model_arg(fixture)),
                     dir.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("prefill: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("decode: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("peak memory: "), std::string::npos) << r.err;

  auto model = Model::load(test::models_dir() / fixture);
  Tokenizer tokenizer = Tokenizer::load(test::models_dir() / fixture);
  std::vector<int32_t> prompt = tokenizer.encode("Hello world", true);
  SessionOptions o;
  o.context = 64;
  o.attention.params = {.mode = AttentionMode::delta, .window = 4, .sink = 2, .gamma = 2};
  o.attention.dense_first_layers = 1;
  Session session(model, o);
  std::vector<int32_t> stops = model->config().eos_token_ids;
  for (int32_t id : tokenizer.eos_ids()) stops.push_back(id);
  GenerateResult g = generate(session, prompt, {.max_new_tokens = 10, .stop_ids = stops});
  EXPECT_EQ(r.out, tokenizer.decode(g.tokens, true) + "\n");
}

TEST(CliGenerate, SamplingFollowsGenerationConfigUnlessFlagsSayOtherwise) {
  test::TempDir dir;
  const fs::path model = dir.path / "model";
  fs::copy(test::models_dir() / "llama3_tied_sharded", model, fs::copy_options::recursive);
  const std::string base = "generate --model " + model.string() + " --prompt 'Hello world' --max-new-tokens 4 ";
  auto sampling_line = [&](const std::string& flags) {
    auto r = run_dattn(base + flags, dir.path);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const size_t at = r.err.find("decode: ");
    return at == std::string::npos ? r.err : r.err.substr(at, r.err.find('\n', at) - at);
  };
  // the fixture's generation_config.json has no do_sample: greedy
  EXPECT_NE(sampling_line("").find("greedy"), std::string::npos);
  test::write_text(model / "generation_config.json",
                   R"({"eos_token_id": 904, "do_sample": true, "temperature": 0.7, "top_k": 5, "top_p": 0.9})");
  EXPECT_NE(sampling_line("--seed 3").find("temperature 0.7, top-k 5, top-p 0.9, seed 3"), std::string::npos);
  EXPECT_NE(sampling_line("--top-k 2").find("temperature 0.7, top-k 2, top-p 0.9"), std::string::npos);
  EXPECT_NE(sampling_line("--greedy").find("greedy"), std::string::npos);
  EXPECT_NE(sampling_line("--temperature 0").find("greedy"), std::string::npos);
}

TEST(CliModelErrors, ClearMessagesAndExitCode1) {
  test::TempDir dir;
  const std::string m = model_arg("qwen2_bias_tied");
  struct Case {
    std::string args, needle;
  };
  const std::vector<Case> cases = {
      {"generate " + m + " --prompt 'a long prompt of several words' --ctx 3", "raise --ctx"},
      {"generate " + m + " --prompt hi --attention fast", "unknown attention mode"},
      {"generate " + m + " --prompt hi --layer-modes 0:dense,x:sparse", "not a layer index"},
      {"generate " + m + " --prompt hi --temperature -1", "temperature"},
      {"generate " + m, "--prompt"},
      {"logits " + m + " --ids 1,x,3 --out " + (dir.path / "x.npy").string(), "'x' is not a token id"},
      {"logits " + m + " --ids 1,999999 --out " + (dir.path / "x.npy").string(), "outside the vocabulary"},
      {"detokenize " + m + " --ids ,", "token id"},
  };
  std::vector<Case> all = cases;
  if (!cuda_session_available()) {  // on a GPU machine these run; without one they must fail clearly
    all.push_back({"generate " + m + " --prompt hi --device cuda", "--device cuda"});
    all.push_back({"logits " + m + " --ids 1,2 --device cuda --out " + (dir.path / "x.npy").string(), "--device cuda"});
  }
  for (const Case& c : all) {
    auto r = run_dattn(c.args, dir.path);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
  EXPECT_FALSE(fs::exists(dir.path / "x.npy"));
}

TEST(CliModelErrors, CorruptCheckpoint) {
  test::TempDir dir;
  for (const auto& entry : fs::directory_iterator(test::models_dir() / "qwen2_bias_tied"))
    fs::copy(entry.path(), dir.path / entry.path().filename());
  fs::resize_file(dir.path / "model.safetensors", 1000);
  auto r = run_dattn(fmt::format("logits --model {} --ids 1,2 --out {}", dir.path.string(), (dir.path / "o.npy").string()),
                     dir.path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dattn::model
