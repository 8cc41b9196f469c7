#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "dattn/core/error.h"
#include "dattn/eval/model_eval.h"
#include "dattn/model/session.h"

namespace dattn::eval {

namespace {
// -log softmax(logits)[target], in double.
double negative_log_likelihood(const float* logits, int64_t vocab, int32_t target) {
  double max_logit = logits[0];
  for (int64_t v = 1; v < vocab; ++v) max_logit = std::max(max_logit, double(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - max_logit);
  return max_logit + std::log(sum) - double(logits[target]);
}
}  // namespace

std::vector<PerplexityResult> run_perplexity(std::shared_ptr<const model::Model> model, std::span<const int32_t> ids,
                                             std::span<const AttentionMode> modes, const ModelEvalOptions& options,
                                             std::span<const PerplexityResult> finished,
                                             const std::function<void(const PerplexityResult&)>& on_result) {
  const int64_t n = int64_t(ids.size()), vocab = model->config().vocab_size;
  DATTN_CHECK(n >= 2, "perplexity needs at least 2 tokens, got {}", n);
  // The session's chunks are fed one call at a time, so logits never exceed chunk x vocab floats.
  model::SessionOptions session_options;
  session_options.context = n;
  session_options.chunk_size = std::min(model::prefill_chunk_or_default(options.chunk_size), n);
  session_options.num_threads = options.num_threads;
  model::Session session(model, session_options);
  const int64_t far_from = saturating_add(options.attention.window, options.attention.sink);

  model::PrefillOptions all_logits;
  all_logits.all_logits = true;
  EvalProgress progress;
  progress.total = double(n) * double(modes.size());
  std::vector<PerplexityResult> results;
  for (AttentionMode mode : modes) {
    const auto done = std::find_if(finished.begin(), finished.end(), [&](const auto& r) { return r.mode == mode; });
    if (done != finished.end()) {
      results.push_back(*done);
      continue;
    }
    model::AttentionPlan plan;
    plan.params = options.attention;
    plan.params.mode = mode;
    session.reset();
    session.set_attention(plan);
    PerplexityResult r;
    r.mode = mode;
    double nll = 0, far_nll = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t begin = 0; begin < n; begin += session_options.chunk_size) {
      const int64_t rows = std::min(session_options.chunk_size, n - begin);
      progress.what = std::string(mode_name(mode));
      progress.done = double(results.size()) * double(n) + double(begin);
      if (options.on_progress) options.on_progress(progress);
      const std::vector<float> logits = session.prefill(ids.subspan(size_t(begin), size_t(rows)), all_logits);
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t position = begin + row;
        if (position + 1 >= n) break;
        const double l = negative_log_likelihood(logits.data() + row * vocab, vocab, ids[size_t(position + 1)]);
        nll += l;
        ++r.tokens_scored;
        if (position >= far_from) {
          far_nll += l;
          ++r.far_tokens_scored;
        }
      }
    }
    r.prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    r.mean_nll = nll / double(r.tokens_scored);
    r.perplexity = std::exp(r.mean_nll);
    r.far_perplexity = r.far_tokens_scored ? std::exp(far_nll / double(r.far_tokens_scored))
                                           : std::numeric_limits<double>::quiet_NaN();
    if (on_result) on_result(r);
    results.push_back(r);
  }
  progress.done = progress.total;
  progress.what = "done";
  if (options.on_progress) options.on_progress(progress);
  return results;
}

}  // namespace dattn::eval
