// The CPU stages of the forward pass (see forward.h for the loop): fp32, row-major (rows, features).
#include "dattn/model/cpu_forward.h"

#include <algorithm>
#include <cstring>

#include "cpu_ops.h"
#include "dattn/core/error.h"
#include "dattn/core/finite.h"
#include "dattn/delta/delta_attention.h"

namespace dattn::model {

namespace {
// NaN or Inf activations (a config.json value out of range, broken weights) fail here, naming the layer,
// instead of being dropped or spread by the attention kernels into finite-looking logits.
void check_finite_rows(const float* data, const ForwardBatch& batch, int64_t width, int64_t layer, const char* what) {
  const int64_t bad = find_non_finite(data, size_t(batch.rows() * width));
  if (bad < 0) return;
  const int64_t row = bad / width;
  int64_t position = row;
  for (const SequenceRows& s : batch.sequences)
    if (row >= s.first_row && row < s.first_row + s.rows) position = s.position + (row - s.first_row);
  fail("layer {}: the {} at position {} hold a non-finite value ({}); the model's config.json (for example rope_theta, "
       "rms_norm_eps, head_dim) or its weights produce NaN/Inf activations",
       layer, what, position, data[bad]);
}
}  // namespace

CpuForward::CpuForward(const Model& model, PagedKvCache& cache, int64_t max_rows, int64_t attention_chunk,
                       int num_threads)
    : model_(model), cache_(cache), max_rows_(max_rows), attention_chunk_(attention_chunk), threads_(num_threads) {
  const ModelConfig& c = model.config();
  DATTN_CHECK(max_rows >= 1 && attention_chunk >= 1, "forward pass: max_rows {} and attention chunk {} must be >= 1",
              max_rows, attention_chunk);
  const size_t rows = size_t(max_rows), q_dim = size_t(c.num_heads * c.head_dim);
  const size_t kv_dim = size_t(c.num_kv_heads * c.head_dim);
  // the MLP's intermediate activations are the widest: they are computed in blocks of this many rows
  mlp_rows_ = std::min(max_rows, std::max<int64_t>(attention_chunk, 1));
  x_.resize(rows * size_t(c.hidden_size));
  normed_.resize(rows * std::max(size_t(c.hidden_size), q_dim));
  q_.resize(rows * q_dim);
  attn_.resize(rows * q_dim);
  k_.resize(rows * kv_dim);
  v_.resize(rows * kv_dim);
  gate_.resize(size_t(mlp_rows_ * c.intermediate_size));
  up_.resize(gate_.size());
  cos_.resize(rows * size_t(c.head_dim / 2));
  sin_.resize(cos_.size());
  cpu_ops::use_single_threaded_blas();
}

void CpuForward::embed(const ForwardBatch& batch) {
  const ModelConfig& c = model_.config();
  const int64_t rows = batch.rows(), hidden = c.hidden_size, half = c.head_dim / 2;
  DATTN_CHECK(rows >= 1 && rows <= max_rows_, "forward pass: {} rows, the workspace holds {}", rows, max_rows_);
  const float* table = model_.embed_tokens().data();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(x_.data() + r * hidden, table + int64_t(batch.ids[size_t(r)]) * hidden, size_t(hidden) * 4);
  for (const SequenceRows& s : batch.sequences)
    cpu_ops::rope_tables(model_.rope_inv_freq().data(), half, s.position, s.rows, cos_.data() + s.first_row * half,
                         sin_.data() + s.first_row * half);
}

void CpuForward::attention_inputs(int64_t layer, const ForwardBatch& batch) {
  const ModelConfig& c = model_.config();
  const LayerWeights& lw = model_.layers()[size_t(layer)];
  const int64_t rows = batch.rows(), d = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads, kv_dim = hkv * d;
  cpu_ops::rms_norm(x_.data(), lw.input_norm.data(), normed_.data(), rows, c.hidden_size, c.rms_norm_eps);
  cpu_ops::linear(normed_.data(), lw.q_proj, q_.data(), rows, false, threads_);
  cpu_ops::linear(normed_.data(), lw.k_proj, k_.data(), rows, false, threads_);
  cpu_ops::linear(normed_.data(), lw.v_proj, v_.data(), rows, false, threads_);
  if (lw.q_norm) {
    cpu_ops::rms_norm(q_.data(), lw.q_norm->data(), q_.data(), rows * hq, d, c.rms_norm_eps);
    cpu_ops::rms_norm(k_.data(), lw.k_norm->data(), k_.data(), rows * hkv, d, c.rms_norm_eps);
  }
  cpu_ops::apply_rope(q_.data(), cos_.data(), sin_.data(), rows, hq, d);
  cpu_ops::apply_rope(k_.data(), cos_.data(), sin_.data(), rows, hkv, d);
  // each row is checked once, here, so the operator need not re-read the whole cache every chunk
  check_finite_rows(q_.data(), batch, hq * d, layer, "queries");
  check_finite_rows(k_.data(), batch, kv_dim, layer, "keys");
  check_finite_rows(v_.data(), batch, kv_dim, layer, "values");
  for (const SequenceRows& s : batch.sequences)
    cache_.write(layer, s.block_table, s.position, s.rows, k_.data() + s.first_row * kv_dim,
                 v_.data() + s.first_row * kv_dim);
}

void CpuForward::attention(int64_t layer, const ForwardBatch& batch) {
  const ModelConfig& c = model_.config();
  const int64_t d = c.head_dim, hq = c.num_heads, q_dim = hq * d;
  const double scale = c.attention_scale();
  // decode rows of every sequence at once over their blocks
  std::vector<std::span<const int32_t>> tables;
  std::vector<int64_t> lengths;
  for (const SequenceRows& s : batch.sequences)
    if (s.decode) {
      DATTN_CHECK(s.rows == 1, "a decode step has one row, got {}", s.rows);
      tables.push_back(s.block_table);
      lengths.push_back(s.position + 1);
    }
  if (!tables.empty()) {
    decode_q_.resize(tables.size() * size_t(q_dim));
    decode_out_.resize(decode_q_.size());
    size_t i = 0;
    for (const SequenceRows& s : batch.sequences)
      if (s.decode) std::memcpy(decode_q_.data() + i++ * q_dim, q_.data() + s.first_row * q_dim, size_t(q_dim) * 4);
    paged_decode_attention(cache_, layer, {decode_q_.data(), decode_out_.data(), tables, lengths, hq, scale, threads_});
    i = 0;
    for (const SequenceRows& s : batch.sequences)
      if (s.decode) std::memcpy(attn_.data() + s.first_row * q_dim, decode_out_.data() + i++ * q_dim, size_t(q_dim) * 4);
  }
  // prefill rows: the operator over the sequence's cache, in calls of at most attention_chunk_ rows
  for (const SequenceRows& s : batch.sequences) {
    if (s.decode) continue;
    AttentionParams params = layer_attention(s, layer, scale);
    params.num_threads = threads_;
    params.skip_finite_check = true;  // attention_inputs checked every row as it entered the cache
    const AttentionPlan& plan = *s.attention;
    const bool measure_gap = s.anchor_gaps && params.mode == AttentionMode::delta &&
                             (plan.report_anchor_gap || plan.adaptive_gap_threshold > 0);
    for (int64_t begin = 0; begin < s.rows; begin += attention_chunk_) {
      const int64_t rows = std::min(attention_chunk_, s.rows - begin), n_kv = s.position + begin + rows;
      const int64_t row0 = s.first_row + begin;
      const TensorView q{q_.data() + row0 * q_dim, DType::f32, Device::cpu, {1, rows, hq, d}, {rows * q_dim, q_dim, d, 1}};
      const TensorView out{attn_.data() + row0 * q_dim, DType::f32, Device::cpu, {1, rows, hq, d},
                           {rows * q_dim, q_dim, d, 1}};
      const auto [k, v] = cache_.view(layer, s.block_table, n_kv, kv_scratch_);
      AnchorGap gap;
      if (measure_gap) params.anchor_gap = &gap;
      delta_attention(q, k, v, out, params);
      if (measure_gap) (*s.anchor_gaps)[size_t(layer)].add(gap);
      if (on_prefill_attention) on_prefill_attention(layer, row0, q, k, v, params);
    }
  }
}

void CpuForward::attention_output(int64_t layer, const ForwardBatch& batch) {
  const LayerWeights& lw = model_.layers()[size_t(layer)];
  cpu_ops::linear(attn_.data(), lw.o_proj, x_.data(), batch.rows(), /*accumulate=*/true, threads_);
}

void CpuForward::mlp(int64_t layer, const ForwardBatch& batch) {
  const ModelConfig& c = model_.config();
  const LayerWeights& lw = model_.layers()[size_t(layer)];
  const int64_t rows = batch.rows(), hidden = c.hidden_size;
  cpu_ops::rms_norm(x_.data(), lw.post_attention_norm.data(), normed_.data(), rows, hidden, c.rms_norm_eps);
  for (int64_t begin = 0; begin < rows; begin += mlp_rows_) {
    const int64_t n = std::min(mlp_rows_, rows - begin);
    cpu_ops::linear(normed_.data() + begin * hidden, lw.gate_proj, gate_.data(), n, false, threads_);
    cpu_ops::linear(normed_.data() + begin * hidden, lw.up_proj, up_.data(), n, false, threads_);
    cpu_ops::silu_mul(gate_.data(), up_.data(), n * c.intermediate_size);
    cpu_ops::linear(gate_.data(), lw.down_proj, x_.data() + begin * hidden, n, /*accumulate=*/true, threads_);
  }
}

void CpuForward::logits(const ForwardBatch& batch, float* out) {
  const ModelConfig& c = model_.config();
  const int64_t hidden = c.hidden_size;
  // the rows with logits, in sequence order (normed_ holds max_rows x hidden)
  int64_t n = 0;
  for (const SequenceRows& s : batch.sequences) {
    const int64_t count = s.rows - s.logits_from;
    cpu_ops::rms_norm(x_.data() + (s.first_row + s.logits_from) * hidden, model_.final_norm().data(),
                      normed_.data() + n * hidden, count, hidden, c.rms_norm_eps);
    n += count;
  }
  cpu_ops::linear(normed_.data(), model_.lm_head().data(), nullptr, c.vocab_size, hidden, out, n, false, threads_);
}

}  // namespace dattn::model
