// The fidelity probe: the runtime's own forward pass (forward.h, CpuForward: the code Session runs), one
// per mode over the whole prompt with the same continued-prefill chunking, stepped layer by layer in
// lockstep so that per-layer activations can be compared without storing every layer. tests/eval checks
// that the probe's last-position logits equal Session's in every mode.
#include <algorithm>
#include <cmath>
#include <memory>

#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "dattn/eval/model_eval.h"
#include "dattn/model/cpu_forward.h"

namespace dattn::eval {

namespace {

struct Similarity {
  double cosine = 0, relative_error = 0;
};

// Mean per-row cosine and Frobenius relative error of rows [first_row, rows) of two (rows, dim) matrices.
Similarity compare_rows(const float* x, const float* ref, int64_t first_row, int64_t rows, int64_t dim) {
  double cos_sum = 0, diff2 = 0, ref2 = 0;
  for (int64_t r = first_row; r < rows; ++r) {
    double dot = 0, xx = 0, rr = 0;
    for (int64_t i = 0; i < dim; ++i) {
      const double a = x[r * dim + i], b = ref[r * dim + i];
      dot += a * b;
      xx += a * a;
      rr += b * b;
      diff2 += (a - b) * (a - b);
    }
    ref2 += rr;
    cos_sum += (xx > 0 && rr > 0) ? dot / std::sqrt(xx * rr) : (xx == rr ? 1.0 : 0.0);
  }
  const int64_t n = rows - first_row;
  return {n > 0 ? cos_sum / double(n) : 1.0, ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2)};
}

}  // namespace

std::vector<double> delta_transfer_residuals(std::span<const float> dense, std::span<const float> sparse, int64_t rows,
                                             int64_t heads, int64_t head_dim, int64_t first_row,
                                             std::span<const int64_t> offsets) {
  const int64_t width = heads * head_dim;
  DATTN_CHECK(rows >= 0 && heads >= 1 && head_dim >= 1 && first_row >= 0, "delta_transfer_residuals: bad shape");
  DATTN_CHECK(int64_t(dense.size()) == rows * width && int64_t(sparse.size()) == rows * width,
              "delta_transfer_residuals: {} and {} values for {} rows of {}", dense.size(), sparse.size(), rows, width);
  std::vector<double> delta(dense.size());  // Δ once, shared by every offset
  for (size_t k = 0; k < delta.size(); ++k) delta[k] = double(dense[k]) - sparse[k];
  std::vector<double> residuals;
  for (int64_t o : offsets) {
    DATTN_CHECK(o >= 1, "delta_transfer_residuals: offset {} must be >= 1", o);
    double moved = 0, delta2 = 0;
    for (int64_t i = first_row + o; i < rows; ++i)
      for (int64_t c = 0; c < width; ++c) {
        const double di = delta[size_t(i * width + c)], dj = delta[size_t((i - o) * width + c)];
        moved += (di - dj) * (di - dj);
        delta2 += di * di;
      }
    residuals.push_back(delta2 > 0 ? std::sqrt(moved / delta2) : 0.0);
  }
  return residuals;
}

namespace {

// One mode's forward pass over the whole prompt: a cache of one block of n tokens that every layer reuses
// (the probe runs a layer over all rows before the next, and no layer's K/V is needed afterwards).
struct Stream {
  Stream(const model::Model& m, AttentionMode mode, const AttentionParams& base, int64_t n, int64_t chunk,
         int threads)
      : mode(mode),
        cache(m.config().num_layers, 1, n, m.config().num_kv_heads, m.config().head_dim, /*shared_layers=*/true),
        forward(m, cache, n, chunk, threads) {
    plan.params = base;
    plan.params.mode = mode;
    plan.report_anchor_gap = mode == AttentionMode::delta;
    gaps.resize(size_t(m.config().num_layers));
  }
  AttentionMode mode;
  model::AttentionPlan plan;
  std::vector<model::LayerAnchorGap> gaps;  // delta: each layer's anchor gap over the prompt's chunks
  model::PagedKvCache cache;
  model::CpuForward forward;
};

}  // namespace

FidelityResult run_fidelity(const model::Model& model, std::span<const int32_t> ids,
                            std::span<const AttentionMode> modes, const ModelEvalOptions& options) {
  const int64_t n = int64_t(ids.size());
  const model::ModelConfig& c = model.config();
  DATTN_CHECK(n >= 1, "fidelity needs at least one token");
  for (int32_t id : ids) DATTN_CHECK(id >= 0 && id < c.vocab_size, "token id {} is outside the vocabulary", id);
  const int64_t chunk = std::min(model::prefill_chunk_or_default(options.chunk_size), n);
  const int64_t q_dim = c.num_heads * c.head_dim;

  std::vector<std::unique_ptr<Stream>> streams;
  streams.push_back(std::make_unique<Stream>(model, AttentionMode::dense, options.attention, n, chunk,
                                             options.num_threads));
  for (AttentionMode m : modes)
    if (m != AttentionMode::dense)
      streams.push_back(std::make_unique<Stream>(model, m, options.attention, n, chunk, options.num_threads));
  // The dense stream's layer inputs through sparse attention (what Δ corrects) and through every other
  // mode compared (its one-layer error): on_dense_inputs[0] is sparse, then one per stream after dense.
  std::vector<AttentionMode> dense_input_modes{AttentionMode::sparse};
  for (size_t i = 1; i < streams.size(); ++i) dense_input_modes.push_back(streams[i]->mode);
  std::vector<std::vector<float>> on_dense_inputs(dense_input_modes.size());
  for (size_t m = 0; m < dense_input_modes.size(); ++m)
    if (m == 0 || dense_input_modes[m] != AttentionMode::sparse) on_dense_inputs[m].resize(size_t(n * q_dim));
  streams[0]->forward.on_prefill_attention = [&](int64_t, int64_t first_row, const TensorView& q, const TensorView& k,
                                                 const TensorView& v, const AttentionParams& params) {
    const int64_t rows = q.shape[1];
    for (size_t m = 0; m < dense_input_modes.size(); ++m) {
      if (on_dense_inputs[m].empty()) continue;  // sparse: on_dense_inputs[0]
      AttentionParams other = params;
      other.mode = dense_input_modes[m];
      other.anchor_gap = nullptr;
      const TensorView out{on_dense_inputs[m].data() + first_row * q_dim, DType::f32, Device::cpu,
                           {1, rows, c.num_heads, c.head_dim}, {rows * q_dim, q_dim, c.head_dim, 1}};
      delta_attention(q, k, v, out, other);
    }
  };
  const std::vector<float>& dense_inputs_sparse = on_dense_inputs[0];
  std::vector<model::ForwardBatch> batches;
  static constexpr int32_t kOnlyBlock = 0;
  for (const auto& s : streams)
    batches.push_back({ids, {model::SequenceRows{.first_row = 0,
                                                 .rows = n,
                                                 .position = 0,
                                                 .logits_from = n - 1,
                                                 .attention = &s->plan,
                                                 .block_table = std::span<const int32_t>(&kOnlyBlock, 1),
                                                 .anchor_gaps = &s->gaps}}});
  for (size_t i = 0; i < streams.size(); ++i) streams[i]->forward.embed(batches[i]);

  FidelityResult result;
  result.tokens = n;
  const int64_t far = saturating_add(options.attention.window, options.attention.sink);
  result.first_scored_row = far < n ? far : 0;
  EvalProgress progress;
  progress.total = double(c.num_layers);
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    progress.done = double(layer);
    progress.what = "layer " + std::to_string(layer);
    if (options.on_progress) options.on_progress(progress);
    for (size_t i = 0; i < streams.size(); ++i) model::forward_layer(streams[i]->forward, batches[i], layer);
    const std::span<const float> dense_attn(streams[0]->forward.attention_result(), size_t(n * q_dim));
    result.delta_transfer.push_back(delta_transfer_residuals(dense_attn, dense_inputs_sparse, n, c.num_heads,
                                                             c.head_dim, result.first_scored_row,
                                                             kDeltaTransferOffsets));
    for (size_t i = 1; i < streams.size(); ++i) {
      const model::CpuForward &f = streams[i]->forward, &dense = streams[0]->forward;
      const Similarity a =
          compare_rows(f.attention_result(), dense.attention_result(), result.first_scored_row, n, q_dim);
      const Similarity h = compare_rows(f.residual(), dense.residual(), result.first_scored_row, n, c.hidden_size);
      const std::vector<float>& own = on_dense_inputs[on_dense_inputs[i].empty() ? 0 : i];
      const Similarity one = compare_rows(own.data(), dense.attention_result(), result.first_scored_row, n, q_dim);
      result.layers.push_back({layer, streams[i]->mode, a.cosine, a.relative_error, h.cosine, h.relative_error,
                               one.cosine, one.relative_error, streams[i]->gaps[size_t(layer)]});
    }
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    std::vector<float> logits(size_t(c.vocab_size));
    streams[i]->forward.logits(batches[i], logits.data());
    result.last_logits.push_back(std::move(logits));
  }
  progress.done = progress.total;
  progress.what = "done";
  if (options.on_progress) options.on_progress(progress);
  return result;
}

}  // namespace dattn::eval
