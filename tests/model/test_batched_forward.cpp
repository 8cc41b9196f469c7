// One forward pass over several sequences (prefill rows of some, decode rows of others, K/V in scattered
// cache blocks) gives each sequence the logits it gets alone in a Session.
#include <gtest/gtest.h>

#include "dattn/model/cpu_forward.h"
#include "dattn/model/session.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

std::vector<int32_t> ids_for(int64_t n, int64_t vocab, int salt) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 29 + 5 + salt * 61) % vocab);
  return ids;
}

TEST(BatchedForward, SequencesInOneBatchGetTheirLogitsAlone) {
  const auto model = test::load_fixture_model("qwen3_qknorm_fp16");
  const ModelConfig& c = model->config();
  AttentionPlan plan;
  plan.params = {.mode = AttentionMode::delta, .window = 6, .sink = 2, .gamma = 4, .tail_min = 4};
  const std::vector<std::vector<int32_t>> prompts{ids_for(23, c.vocab_size, 0), ids_for(9, c.vocab_size, 1),
                                                  ids_for(40, c.vocab_size, 2)};
  const std::vector<std::vector<int32_t>> tables{{3, 9, 1, 7, 12, 0}, {4, 2, 11}, {5, 6, 8, 10, 13, 14, 15, 16, 17}};
  const int32_t next = 7;  // the token every sequence decodes next

  PagedKvCache cache(c.num_layers, 18, 5, c.num_kv_heads, c.head_dim);
  CpuForward forward(*model, cache, 80, 64, 2);
  auto batch_of = [&](std::vector<int32_t>& ids, bool decode) {
    ForwardBatch batch;
    for (size_t s = 0; s < prompts.size(); ++s) {
      const int64_t rows = decode ? 1 : int64_t(prompts[s].size()), first = int64_t(ids.size());
      if (decode)
        ids.push_back(next);
      else
        ids.insert(ids.end(), prompts[s].begin(), prompts[s].end());
      batch.sequences.push_back({.first_row = first,
                                 .rows = rows,
                                 .position = decode ? int64_t(prompts[s].size()) : 0,
                                 .decode = decode,
                                 .logits_from = rows - 1,
                                 .attention = &plan,
                                 .block_table = tables[s]});
    }
    batch.ids = ids;
    return batch;
  };
  std::vector<int32_t> prefill_ids, decode_ids;
  const ForwardBatch prefill = batch_of(prefill_ids, false);
  std::vector<float> prefill_logits(prompts.size() * size_t(c.vocab_size)), decode_logits(prefill_logits.size());
  run_forward(forward, prefill, c.num_layers, prefill_logits.data());
  const ForwardBatch decode = batch_of(decode_ids, true);
  run_forward(forward, decode, c.num_layers, decode_logits.data());

  for (size_t s = 0; s < prompts.size(); ++s) {
    Session alone(model, {.context = 64, .chunk_size = 64, .attention = plan, .num_threads = 2});
    const std::vector<float> first = alone.prefill(prompts[s]);
    const std::vector<float> second = alone.decode(next);
    const std::vector<float> batched_first(prefill_logits.begin() + int64_t(s) * c.vocab_size,
                                           prefill_logits.begin() + int64_t(s + 1) * c.vocab_size);
    const std::vector<float> batched_second(decode_logits.begin() + int64_t(s) * c.vocab_size,
                                            decode_logits.begin() + int64_t(s + 1) * c.vocab_size);
    // the same fp32 operations per row; only the GEMMs' row counts differ (sgemm or small_batch_linear over
    // the batch instead of sgemv for one row, which sum in other orders): measured 2.5e-7 to 4e-7, bound 1e-5
    EXPECT_LE(test::relative_l2(batched_first, first), 1e-5) << "prefill of sequence " << s;
    EXPECT_LE(test::relative_l2(batched_second, second), 1e-5) << "decode of sequence " << s;
    std::printf("sequence %zu: relative difference prefill %.2e, decode %.2e\n", s,
                test::relative_l2(batched_first, first), test::relative_l2(batched_second, second));
  }
}

}  // namespace
}  // namespace dattn::model
