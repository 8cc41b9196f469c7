// The fidelity probe: the forward pass of dattn_model's Session (same cpu_ops, same operator calls, same
// continued-prefill chunking), run layer by layer for dense and each compared mode in lockstep so that
// per-layer activations can be compared without storing every layer. The runtime exposes no per-layer
// hook; tests/eval checks that the probe's last-position logits equal Session's in every mode.
#include <algorithm>
#include <cmath>

#include "cpu_ops.h"  // src/model: the runtime's own building blocks
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "dattn/eval/model_eval.h"

namespace dattn::eval {

namespace {

using model::cpu_ops::apply_rope;
using model::cpu_ops::linear;
using model::cpu_ops::rms_norm;

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

// One stream of activations (one attention mode) through the layers.
struct Stream {
  AttentionMode mode;
  std::vector<float> x;     // (n, hidden) residual stream
  std::vector<float> attn;  // (n, q_dim) attention output of the current layer
  model::LayerAnchorGap gap;  // of the current layer (delta)
};

class LayerRunner {
 public:
  LayerRunner(const model::Model& m, int64_t n, int64_t chunk, int threads)
      : m_(m), c_(m.config()), n_(n), chunk_(chunk), threads_(threads) {
    normed_.resize(size_t(n * std::max(c_.hidden_size, c_.num_heads * c_.head_dim)));
    q_.resize(size_t(n * c_.num_heads * c_.head_dim));
    k_.resize(size_t(n * c_.num_kv_heads * c_.head_dim));
    v_.resize(k_.size());
    const int64_t block = std::min(chunk_, n_);
    gate_.resize(size_t(block * c_.intermediate_size));
    up_.resize(gate_.size());
    cos_.resize(size_t(n * c_.head_dim / 2));
    sin_.resize(cos_.size());
    model::cpu_ops::rope_tables(m.rope_inv_freq().data(), c_.head_dim / 2, 0, n, cos_.data(), sin_.data());
  }

  void embed(const std::span<const int32_t> ids, Stream& s) const {
    const int64_t h = c_.hidden_size;
    s.x.resize(size_t(n_ * h));
    s.attn.resize(size_t(n_ * c_.num_heads * c_.head_dim));
    for (int64_t r = 0; r < n_; ++r)
      std::copy_n(m_.embed_tokens().data() + int64_t(ids[size_t(r)]) * h, h, s.x.data() + r * h);
  }

  // also_sparse: when given, the layer's attention in sparse mode on the same q, k, v is written there.
  void layer(int64_t index, const AttentionParams& base, Stream& s, float* also_sparse = nullptr) {
    const model::LayerWeights& lw = m_.layers()[size_t(index)];
    const int64_t hidden = c_.hidden_size, d = c_.head_dim, hq = c_.num_heads, hkv = c_.num_kv_heads;
    const int64_t q_dim = hq * d, kv_dim = hkv * d;
    rms_norm(s.x.data(), lw.input_norm.data(), normed_.data(), n_, hidden, c_.rms_norm_eps);
    linear(normed_.data(), lw.q_proj, q_.data(), n_, false, threads_);
    linear(normed_.data(), lw.k_proj, k_.data(), n_, false, threads_);
    linear(normed_.data(), lw.v_proj, v_.data(), n_, false, threads_);
    if (lw.q_norm) {
      rms_norm(q_.data(), lw.q_norm->data(), q_.data(), n_ * hq, d, c_.rms_norm_eps);
      rms_norm(k_.data(), lw.k_norm->data(), k_.data(), n_ * hkv, d, c_.rms_norm_eps);
    }
    apply_rope(q_.data(), cos_.data(), sin_.data(), n_, hq, d);
    apply_rope(k_.data(), cos_.data(), sin_.data(), n_, hkv, d);
    AttentionParams params = base;
    params.mode = s.mode;
    params.num_threads = threads_;
    AnchorGap gap;
    if (s.mode == AttentionMode::delta) params.anchor_gap = &gap;
    s.gap = {};
    for (int64_t begin = 0; begin < n_; begin += chunk_) {  // continued prefill, as Session chunks
      const int64_t rows = std::min(chunk_, n_ - begin), end = begin + rows;
      TensorView q{q_.data() + begin * q_dim, DType::f32, Device::cpu, {1, rows, hq, d}, {rows * q_dim, q_dim, d, 1}};
      TensorView out{s.attn.data() + begin * q_dim, DType::f32, Device::cpu, {1, rows, hq, d},
                     {rows * q_dim, q_dim, d, 1}};
      TensorView k{k_.data(), DType::f32, Device::cpu, {1, end, hkv, d}, {end * kv_dim, kv_dim, d, 1}};
      TensorView v{v_.data(), DType::f32, Device::cpu, {1, end, hkv, d}, {end * kv_dim, kv_dim, d, 1}};
      delta_attention(q, k, v, out, params);
      if (params.anchor_gap) s.gap.add(gap);
      if (also_sparse) {
        AttentionParams sparse = params;
        sparse.mode = AttentionMode::sparse;
        sparse.anchor_gap = nullptr;
        TensorView sparse_out{also_sparse + begin * q_dim, DType::f32, Device::cpu, {1, rows, hq, d},
                              {rows * q_dim, q_dim, d, 1}};
        delta_attention(q, k, v, sparse_out, sparse);
      }
    }
    linear(s.attn.data(), lw.o_proj, s.x.data(), n_, /*accumulate=*/true, threads_);
    rms_norm(s.x.data(), lw.post_attention_norm.data(), normed_.data(), n_, hidden, c_.rms_norm_eps);
    const int64_t block = std::min(chunk_, n_);
    for (int64_t begin = 0; begin < n_; begin += block) {  // MLP in blocks: bounded intermediate memory
      const int64_t rows = std::min(block, n_ - begin);
      linear(normed_.data() + begin * hidden, lw.gate_proj, gate_.data(), rows, false, threads_);
      linear(normed_.data() + begin * hidden, lw.up_proj, up_.data(), rows, false, threads_);
      model::cpu_ops::silu_mul(gate_.data(), up_.data(), rows * c_.intermediate_size);
      linear(gate_.data(), lw.down_proj, s.x.data() + begin * hidden, rows, /*accumulate=*/true, threads_);
    }
  }

  std::vector<float> last_logits(const Stream& s) {
    const int64_t hidden = c_.hidden_size;
    std::vector<float> logits(size_t(c_.vocab_size));
    rms_norm(s.x.data() + (n_ - 1) * hidden, m_.final_norm().data(), normed_.data(), 1, hidden, c_.rms_norm_eps);
    linear(normed_.data(), m_.lm_head().data(), nullptr, c_.vocab_size, hidden, logits.data(), 1, false, threads_);
    return logits;
  }

 private:
  const model::Model& m_;
  const model::ModelConfig& c_;
  int64_t n_, chunk_;
  int threads_;
  std::vector<float> normed_, q_, k_, v_, gate_, up_, cos_, sin_;
};

}  // namespace

FidelityResult run_fidelity(const model::Model& model, std::span<const int32_t> ids,
                            std::span<const AttentionMode> modes, const ModelEvalOptions& options) {
  const int64_t n = int64_t(ids.size());
  const model::ModelConfig& c = model.config();
  DATTN_CHECK(n >= 1, "fidelity needs at least one token");
  for (int32_t id : ids) DATTN_CHECK(id >= 0 && id < c.vocab_size, "token id {} is outside the vocabulary", id);
  const int64_t chunk = options.chunk_size > 0 ? std::min(options.chunk_size, n) : n;
  model::cpu_ops::use_single_threaded_blas();  // as Session does
  LayerRunner runner(model, n, chunk, options.num_threads);

  std::vector<Stream> streams;
  streams.push_back({AttentionMode::dense, {}, {}});
  for (AttentionMode m : modes)
    if (m != AttentionMode::dense) streams.push_back({m, {}, {}});
  for (Stream& s : streams) runner.embed(ids, s);
  std::vector<float> dense_inputs_sparse(size_t(n * c.num_heads * c.head_dim));

  FidelityResult result;
  result.tokens = n;
  const int64_t far = options.attention.window + options.attention.sink;
  result.first_scored_row = far < n ? far : 0;
  EvalProgress progress;
  progress.total = double(c.num_layers);
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    progress.done = double(layer);
    progress.what = "layer " + std::to_string(layer);
    if (options.on_progress) options.on_progress(progress);
    for (size_t i = 0; i < streams.size(); ++i)
      runner.layer(layer, options.attention, streams[i], i == 0 ? dense_inputs_sparse.data() : nullptr);
    const Stream& dense = streams[0];
    result.delta_transfer.push_back(delta_transfer_residuals(dense.attn, dense_inputs_sparse, n, c.num_heads,
                                                             c.head_dim, result.first_scored_row,
                                                             kDeltaTransferOffsets));
    for (size_t i = 1; i < streams.size(); ++i) {
      const Similarity a = compare_rows(streams[i].attn.data(), dense.attn.data(), result.first_scored_row, n,
                                        c.num_heads * c.head_dim);
      const Similarity h = compare_rows(streams[i].x.data(), dense.x.data(), result.first_scored_row, n, c.hidden_size);
      result.layers.push_back(
          {layer, streams[i].mode, a.cosine, a.relative_error, h.cosine, h.relative_error, streams[i].gap});
    }
  }
  for (const Stream& s : streams) result.last_logits.push_back(runner.last_logits(s));
  progress.done = progress.total;
  progress.what = "done";
  if (options.on_progress) options.on_progress(progress);
  return result;
}

}  // namespace dattn::eval
