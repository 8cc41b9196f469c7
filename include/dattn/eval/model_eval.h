// Evaluations that run a model through the runtime (dattn_model): RULER accuracy per prefill mode,
// perplexity per prefill mode, and per-layer fidelity of sparse / recompute / delta against dense.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dattn/attn/params.h"
#include "dattn/eval/haystack.h"
#include "dattn/eval/ruler_results.h"
#include "dattn/eval/ruler_tasks.h"
#include "dattn/model/model.h"
#include "dattn/model/session.h"
#include "dattn/model/tokenizer.h"

namespace dattn::eval {

// Work done so far, in units the caller can turn into a bar and an ETA (tokens of prompts processed).
struct EvalProgress {
  double done = 0, total = 0;
  std::string what;  // e.g. "niah_single_2 @8192 delta #3"
};
using ProgressCallback = std::function<void(const EvalProgress&)>;

// Makes the session an evaluation runs on (CPU Session, CudaSession, ...) for the given options.
using SessionFactory = std::function<std::unique_ptr<model::InferenceSession>(const model::SessionOptions&)>;

// A factory of CPU sessions over `model`.
SessionFactory cpu_sessions(std::shared_ptr<const model::Model> model);

struct ModelEvalOptions {
  AttentionParams attention;   // window, sink, gamma (the mode is set per run)
  int64_t chunk_size = 0;      // prefill rows per forward pass; 0: model::kDefaultPrefillChunk
  double adaptive_gap_threshold = 0;  // RULER, delta runs: AttentionPlan::adaptive_gap_threshold ("delta+adaptive")
  int num_threads = 0;
  ProgressCallback on_progress;
};

struct RulerRunOptions {
  std::vector<int64_t> lengths{4096, 8192, 16384};
  std::vector<RulerTask> tasks;  // empty: all
  int64_t samples = 10;
  std::vector<AttentionMode> modes{AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta};
  uint64_t seed = 42;
  int64_t max_new_tokens = 0;  // 0: RULER's tokens_to_generate of each task
  const Haystack* haystack = nullptr;
  // Records of an interrupted run with the same options: a (task, length, mode, sample) found here is
  // taken as is instead of being run again.
  std::vector<RulerRecord> finished;
  // Called with every new record as soon as it is scored (for appending it to a log).
  std::function<void(const RulerRecord&)> on_record;
};

// Every sample is generated once with the model's tokenizer and answered by greedy generation in each
// mode (prefill in that mode, dense decode, stop at the tokenizer's end tokens); scored with
// string_match_all after RULER's postprocessing. Sessions come from `sessions` (one per length, reset
// between prompts); `config` gives the model's end tokens.
std::vector<RulerRecord> run_ruler(const SessionFactory& sessions, const model::ModelConfig& config,
                                   const Tokenizer& tokenizer, const RulerRunOptions& run,
                                   const ModelEvalOptions& options);
// The same on the CPU runtime.
std::vector<RulerRecord> run_ruler(std::shared_ptr<const model::Model> model, const Tokenizer& tokenizer,
                                   const RulerRunOptions& run, const ModelEvalOptions& options);

struct PerplexityResult {
  AttentionMode mode = AttentionMode::dense;
  int64_t tokens_scored = 0;     // predictions of tokens 1..n-1
  double mean_nll = 0;           // nats per token
  double perplexity = 0;         // exp(mean_nll)
  int64_t far_tokens_scored = 0; // predictions made at positions >= window + sink, where sparse differs
  double far_perplexity = 0;     // NaN when there are none
  double prefill_ms = 0;
};

// Prefills `ids` in each mode with logits at every position and scores each next token. A mode found in
// `finished` (an interrupted run's results) is taken as is; on_result sees each new result when it is done.
std::vector<PerplexityResult> run_perplexity(std::shared_ptr<const model::Model> model, std::span<const int32_t> ids,
                                             std::span<const AttentionMode> modes, const ModelEvalOptions& options,
                                             std::span<const PerplexityResult> finished = {},
                                             const std::function<void(const PerplexityResult&)>& on_result = {});

struct LayerFidelity {
  int64_t layer = 0;
  AttentionMode mode = AttentionMode::dense;
  double attention_cosine = 0, attention_relative_error = 0;  // attention outputs (before o_proj)
  double hidden_cosine = 0, hidden_relative_error = 0;        // residual stream after the layer
  // The mode's attention computed on the dense run's q, k, v of this layer: the error the layer adds by
  // itself, without the drift of its inputs that the layers below caused (equal to the above at layer 0).
  double one_layer_attention_cosine = 0, one_layer_attention_relative_error = 0;
  model::LayerAnchorGap anchor_gap;                           // delta: the anchor gap over the prompt's chunks
};

// The paper's premise, measured: Δ_i = dense_i - sparse_i (attention output per row and head) changes
// slowly enough that the Δ of a row o rows earlier corrects row i. For each offset o:
// sqrt(sum ||Δ_i - Δ_{i-o}||^2 / sum ||Δ_i||^2) over rows i with i - o >= first_row and every head:
// 0 = a perfect correction, 1 = as far from dense as sparse is, above 1 = worse than no correction.
// 0 when there is no Δ (sparse equals dense). dense and sparse are (rows, heads, head_dim) row-major.
std::vector<double> delta_transfer_residuals(std::span<const float> dense, std::span<const float> sparse, int64_t rows,
                                             int64_t heads, int64_t head_dim, int64_t first_row,
                                             std::span<const int64_t> offsets);

// Offsets reported by run_fidelity: 1 .. 63 (a block of the paper's gamma 64).
inline constexpr int64_t kDeltaTransferOffsets[] = {1, 2, 4, 8, 16, 32, 63};

struct FidelityResult {
  int64_t tokens = 0;
  int64_t first_scored_row = 0;  // rows [first_scored_row, tokens) are compared (those sparse can change)
  std::vector<LayerFidelity> layers;
  // Per layer, delta_transfer_residuals at kDeltaTransferOffsets, with dense and sparse attention both
  // computed on the dense run's own q, k, v of that layer.
  std::vector<std::vector<double>> delta_transfer;
  // Last-position logits per mode (dense first, then `modes`), to check the probe against the runtime.
  std::vector<std::vector<float>> last_logits;
};

// Runs the layers of the model over `ids` in dense and in every mode of `modes` side by side (same
// prefill chunking as the runtime) and compares each mode's per-layer activations with dense: mean
// per-row cosine similarity and ||x - dense|| / ||dense|| over the rows at positions >= window + sink
// (all rows when the prompt is shorter). CPU, fp32.
FidelityResult run_fidelity(const model::Model& model, std::span<const int32_t> ids,
                            std::span<const AttentionMode> modes, const ModelEvalOptions& options);

}  // namespace dattn::eval
