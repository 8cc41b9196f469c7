// The GPU forward pass against transformers' fp32 logits and against the CPU session (which isolates the
// GPU code from the checkpoint and the fixture), and the equivalence of its own code paths: chunked
// prefill, last-row logits and decode steps give the one-shot rows.
#include <fmt/format.h>

#include "cuda_model_fixtures.h"
#include "dattn/core/error.h"

namespace dattn::model::cuda_test {
namespace {

using test::relative_l2;

class GpuFixtureLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuFixtureLogits, DenseMatchesTransformersWithinBf16Budget) {
  DATTN_SKIP_WITHOUT_GPU();
  auto gpu = gpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096));
  auto cpu = cpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096));
  const int64_t vocab = gpu->config().vocab_size;
  for (const auto& c : test::load_cases(GetParam())) {
    gpu->reset();
    cpu->reset();
    const std::vector<float> logits = gpu->prefill(c.ids, {.all_logits = true});
    const std::vector<float> cpu_logits = cpu->prefill(c.ids, {.all_logits = true});
    ASSERT_EQ(logits.size(), c.ids.size() * size_t(vocab));
    const double err = relative_l2(logits, c.logits), err_cpu = relative_l2(logits, cpu_logits);
    RecordProperty(fmt::format("relative_l2_vs_transformers_{}", c.ids.size()), fmt::format("{:.3g}", err));
    RecordProperty(fmt::format("relative_l2_vs_cpu_session_{}", c.ids.size()), fmt::format("{:.3g}", err_cpu));
    EXPECT_LE(err, kBf16Budget) << GetParam() << " with " << c.ids.size() << " tokens (vs the CPU session: "
                                << err_cpu << ")";
    for (size_t row = 0; row < c.ids.size(); ++row)
      EXPECT_LE(relative_l2(logits.data() + row * vocab, c.logits.data() + row * vocab, size_t(vocab)),
                kBf16RowBudget)
          << GetParam() << " row " << row;
  }
}

TEST_P(GpuFixtureLogits, ChunkedPrefillEqualsOneShot) {
  DATTN_SKIP_WITHOUT_GPU();
  const auto c = test::load_cases(GetParam()).back();
  const std::vector<float> expected =
      gpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096))->prefill(c.ids, {.all_logits = true});
  for (int64_t chunk : {1, 3, 16}) {
    auto chunked = gpu_session(GetParam(), options_for(AttentionMode::dense, 64, chunk));
    int64_t progress_calls = 0;
    const std::vector<float> logits = chunked->prefill(
        c.ids, {.all_logits = true, .on_progress = [&](int64_t, int64_t) { ++progress_calls; }});
    EXPECT_LE(relative_l2(logits, expected), kSameCodeBudget) << GetParam() << " chunk " << chunk;
    EXPECT_EQ(progress_calls, (int64_t(c.ids.size()) + chunk - 1) / chunk);
  }
}

TEST_P(GpuFixtureLogits, LastRowAndDecodeStepsEqualOneShotRows) {
  DATTN_SKIP_WITHOUT_GPU();
  const auto c = test::load_cases(GetParam()).back();
  auto one_shot = gpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096));
  const int64_t vocab = one_shot->config().vocab_size;
  const std::vector<float> expected = one_shot->prefill(c.ids, {.all_logits = true});
  auto row = [&](size_t r) { return expected.data() + r * size_t(vocab); };

  constexpr size_t kDecodeSteps = 4;
  const size_t prompt = c.ids.size() - kDecodeSteps;
  auto session = gpu_session(GetParam(), options_for(AttentionMode::dense, 64, 7));
  const std::vector<float> last = session->prefill(std::span(c.ids).first(prompt));
  ASSERT_EQ(last.size(), size_t(vocab));
  EXPECT_LE(relative_l2(last.data(), row(prompt - 1), size_t(vocab)), kSameCodeBudget);
  for (size_t i = prompt; i < c.ids.size(); ++i) {
    const std::vector<float> step = session->decode(c.ids[i]);
    EXPECT_LE(relative_l2(step.data(), row(i), size_t(vocab)), kDecodeKernelBudget) << GetParam() << " decode at " << i;
  }
  EXPECT_EQ(session->position(), int64_t(c.ids.size()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GpuFixtureLogits, ::testing::ValuesIn(test::fixture_names()),
                         [](const auto& info) { return info.param; });

TEST(GpuSession, ErrorsAndMemoryReport) {
  DATTN_SKIP_WITHOUT_GPU();
  const std::string name = "qwen2_bias_tied";
  auto session = gpu_session(name, options_for(AttentionMode::dense, 8, 4));
  const std::vector<int32_t> too_long(9, 1);
  try {
    session->prefill(too_long);
    ADD_FAILURE() << "9 tokens in a context of 8 must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not fit the context"), std::string::npos) << e.what();
  }
  const std::vector<int32_t> bad_id = {1, int32_t(session->config().vocab_size)};
  EXPECT_THROW(session->prefill(bad_id), Error);
  EXPECT_EQ(session->position(), 0);

  const DeviceMemoryReport m = session->memory();
  EXPECT_GT(m.weights, 0u);
  EXPECT_EQ(m.kv_cache, session->kv_cache_bytes());
  EXPECT_GE(m.peak_in_use, m.weights + m.kv_cache + m.workspace);

  AttentionPlan plan;
  plan.layer_overrides[99] = AttentionParams{};
  EXPECT_THROW(session->set_attention(plan), Error);
}

}  // namespace
}  // namespace dattn::model::cuda_test
