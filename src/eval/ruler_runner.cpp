#include <algorithm>

#include "dattn/core/error.h"
#include "dattn/eval/model_eval.h"
#include "dattn/eval/scoring.h"
#include "dattn/model/generate.h"
#include "dattn/model/session.h"

namespace dattn::eval {

SessionFactory cpu_sessions(std::shared_ptr<const model::Model> model) {
  DATTN_CHECK(model != nullptr, "cpu_sessions needs a model");
  return [model](const model::SessionOptions& options) -> std::unique_ptr<model::InferenceSession> {
    return std::make_unique<model::Session>(model, options);
  };
}

std::vector<RulerRecord> run_ruler(std::shared_ptr<const model::Model> model, const Tokenizer& tokenizer,
                                   const RulerRunOptions& run, const ModelEvalOptions& options) {
  DATTN_CHECK(model != nullptr, "run_ruler needs a model");
  return run_ruler(cpu_sessions(model), model->config(), tokenizer, run, options);
}

std::vector<RulerRecord> run_ruler(const SessionFactory& sessions, const model::ModelConfig& config,
                                   const Tokenizer& tokenizer, const RulerRunOptions& run,
                                   const ModelEvalOptions& options) {
  DATTN_CHECK(sessions != nullptr, "run_ruler needs a session factory");
  DATTN_CHECK(!run.lengths.empty() && !run.modes.empty(), "RULER eval needs at least one length and one mode");
  DATTN_CHECK(run.samples >= 1, "samples must be >= 1, got {}", run.samples);
  DATTN_CHECK(run.max_new_tokens >= 0, "max_new_tokens must be >= 0, got {}", run.max_new_tokens);
  std::vector<RulerTask> tasks = run.tasks;
  if (tasks.empty()) tasks.assign(all_ruler_tasks().begin(), all_ruler_tasks().end());

  const std::vector<int32_t> stop_ids = model::merged_stop_ids(config.eos_token_ids, tokenizer.eos_ids());

  EvalProgress progress;
  for (int64_t length : run.lengths)
    progress.total += double(length) * double(tasks.size() * run.modes.size()) * double(run.samples);

  TokenizerCounter counter(tokenizer);
  std::vector<RulerRecord> records;
  for (int64_t length : run.lengths) {
    int64_t max_new = 0;
    for (RulerTask t : tasks) max_new = std::max(max_new, run.max_new_tokens ? run.max_new_tokens : ruler_tokens_to_generate(t));
    model::SessionOptions session_options;
    session_options.context = length + max_new;  // room for any prompt of this length plus its answer
    session_options.chunk_size = model::prefill_chunk_or_default(options.chunk_size);
    session_options.num_threads = options.num_threads;
    const std::unique_ptr<model::InferenceSession> session = sessions(session_options);

    for (RulerTask task : tasks) {
      for (int64_t i = 0; i < run.samples; ++i) {
        const RulerSample sample =
            generate_ruler_sample(task, i, {.target_length = length, .seed = run.seed, .haystack = run.haystack}, counter);
        const std::vector<int32_t> prompt = tokenizer.encode(sample.input, /*add_special_tokens=*/true);
        for (AttentionMode mode : run.modes) {
          const auto done = std::find_if(run.finished.begin(), run.finished.end(), [&](const RulerRecord& r) {
            return r.task == ruler_task_name(task) && r.length == length && r.mode == mode_name(mode) && r.sample == i;
          });
          if (done != run.finished.end()) {
            records.push_back(*done);
            progress.done += double(length);
            continue;
          }
          progress.what = std::string(ruler_task_name(task)) + " @" + std::to_string(length) + " " +
                          std::string(mode_name(mode)) + " #" + std::to_string(i);
          if (options.on_progress) options.on_progress(progress);
          model::AttentionPlan plan;
          plan.params = options.attention;
          plan.params.mode = mode;
          const bool adaptive = mode == AttentionMode::delta && options.adaptive_gap_threshold > 0;
          if (adaptive) plan.adaptive_gap_threshold = options.adaptive_gap_threshold;
          session->reset();
          session->set_attention(plan);
          model::GenerateOptions gen;
          gen.max_new_tokens = run.max_new_tokens ? run.max_new_tokens : sample.tokens_to_generate;
          gen.stop_ids = stop_ids;
          const model::GenerateResult result = model::generate(*session, prompt, gen);

          RulerRecord r;
          r.task = std::string(ruler_task_name(task));
          r.length = length;
          r.mode = std::string(mode_name(mode)) + (adaptive ? "+adaptive" : "");
          r.sample = i;
          r.prompt_tokens = int64_t(prompt.size());
          r.prediction = postprocess_prediction(tokenizer.decode(result.tokens, /*skip_special_tokens=*/true));
          r.references = sample.outputs;
          r.score = string_match_all(r.prediction, r.references);
          r.prefill_ms = result.stats.prefill_ms;
          r.decode_ms = result.stats.decode_ms;
          r.generated_tokens = result.stats.generated_tokens;
          if (adaptive) {
            r.adaptive_dense_layers = 0;
            for (const model::LayerAnchorGap& gap : session->anchor_gaps()) r.adaptive_dense_layers += gap.went_dense;
          }
          if (run.on_record) run.on_record(r);
          records.push_back(std::move(r));
          progress.done += double(length);
        }
      }
    }
  }
  progress.what = "done";
  if (options.on_progress) options.on_progress(progress);
  return records;
}

}  // namespace dattn::eval
