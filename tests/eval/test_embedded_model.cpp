// The embedded model (models/dattn-tiny-16k, trained by tools/train) through the evaluation and the
// demo: a short RULER run on the CPU runtime that CI can afford (2048-token prompts, ~10 s).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "dattn/eval/model_eval.h"
#include "dattn/model/session.h"

namespace dattn::eval {
namespace {

const std::filesystem::path kModelDir = DATTN_SOURCE_DIR "/models/dattn-tiny-16k";

TEST(EmbeddedModel, FindsNeedlesDenseAndDeltaAtTwoThousandTokens) {
  const auto model = model::Model::load(kModelDir);
  const Tokenizer tokenizer = Tokenizer::load(kModelDir);
  RulerRunOptions run;
  run.lengths = {2048};
  run.tasks = {RulerTask::niah_single_1, RulerTask::niah_single_2, RulerTask::niah_single_3,
               RulerTask::niah_multikey_1};
  run.samples = 2;
  run.modes = {AttentionMode::dense, AttentionMode::delta};
  ModelEvalOptions options;
  options.attention.window = 256;
  options.attention.sink = 128;
  options.attention.gamma = 64;
  const auto records = run_ruler(model, tokenizer, run, options);
  ASSERT_EQ(records.size(), 4u * 2u * 2u);
  std::map<std::string, double> score_sum;
  for (const RulerRecord& r : records) {
    score_sum[r.mode] += r.score;
    EXPECT_LE(r.prompt_tokens, 2048);
    EXPECT_GT(r.prompt_tokens, 1900) << "the prompt should be fitted close to its length";
  }
  // Tolerance: every answer. The model scored 100% on these four tasks from 1K to 16K tokens in its
  // held-out eval (train/eval.csv) and the CPU runtime is fp32, so one miss here is a runtime regression,
  // not noise. Delta at window 256 recovers these too (docs/RESULTS.md); allow one miss of the eight.
  EXPECT_EQ(score_sum["dense"], 8.0);
  EXPECT_GE(score_sum["delta"], 7.0);
}

#ifdef DATTN_BINARY
TEST(EmbeddedModel, DemoPrintsAnswersAndTimesPerMode) {
  const std::string command = std::string(DATTN_BINARY) +
                              " demo --length 2048 --samples 1 --task niah_single_2 --threads 2 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  for (const char* text : {"expected answer:", "dense     ok", "sparse", "delta", "speedup vs dense", "1/1"})
    EXPECT_NE(output.find(text), std::string::npos) << text << " missing in\n" << output;
}
#endif

}  // namespace
}  // namespace dattn::eval
