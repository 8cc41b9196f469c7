// The CPU forward pass of a decoder-only transformer (pre-norm, GQA, RoPE, SwiGLU), one chunk of tokens at
// a time; attention is the Delta Attention operator over the KV cache (continued prefill: n_kv > n_q).
#include "dattn/model/session.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <new>

#include "cpu_ops.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"

namespace dattn::model {

AttentionParams AttentionPlan::for_layer(int64_t layer) const {
  auto it = layer_overrides.find(layer);
  if (it != layer_overrides.end()) return it->second;
  AttentionParams p = params;
  if (layer < dense_first_layers) p.mode = AttentionMode::dense;
  return p;
}

void AttentionPlan::add_layer_modes(std::string_view spec) {
  auto parse_layer = [&](std::string_view text, std::string_view item) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    DATTN_CHECK(ec == std::errc() && end == text.data() + text.size() && value >= 0 && !text.empty(),
                "layer modes: '{}' in '{}' is not a layer index", text, item);
    return value;
  };
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    size_t colon = item.find(':');
    DATTN_CHECK(colon != std::string_view::npos, "layer modes: '{}' must look like LAYER:MODE or FIRST-LAST:MODE", item);
    std::string_view layers = item.substr(0, colon);
    AttentionParams p = params;
    p.mode = parse_mode(item.substr(colon + 1));
    size_t dash = layers.find('-');
    int64_t first = parse_layer(layers.substr(0, dash), item);
    int64_t last = dash == std::string_view::npos ? first : parse_layer(layers.substr(dash + 1), item);
    DATTN_CHECK(first <= last, "layer modes: range '{}' is empty", layers);
    DATTN_CHECK(last - first < (int64_t(1) << 20), "layer modes: range '{}' is too large", layers);
    for (int64_t layer = first; layer <= last; ++layer) layer_overrides[layer] = p;
  }
}

void LayerAnchorGap::add(const AnchorGap& gap) {
  if (gap.anchors == 0) return;
  double sum = 0;
  for (float m : gap.mean) {
    sum += double(m) * double(gap.anchors);
    max_head_mean = std::max(max_head_mean, double(m));
  }
  const int64_t added = gap.anchors * int64_t(gap.mean.size());
  mean = (mean * double(samples) + sum) / double(samples + added);
  samples += added;
}

// Activations for one chunk of at most chunk_size rows, allocated once per session.
struct Session::Workspace {
  std::vector<float> x, normed, q, attn, gate, up, rope_cos, rope_sin;
};

Session::Session(std::shared_ptr<const Model> model, SessionOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  const ModelConfig& c = model_->config();
  DATTN_CHECK(options_.context >= 1, "context must be >= 1 token, got {}", options_.context);
  DATTN_CHECK(options_.chunk_size >= 1, "prefill chunk size must be >= 1, got {}", options_.chunk_size);
  DATTN_CHECK(options_.num_threads >= 0, "num_threads must be >= 0, got {}", options_.num_threads);
  if (c.sliding_window)
    DATTN_CHECK(options_.context <= *c.sliding_window,
                "context {} exceeds the model's sliding_window {} (config.json): sliding-window attention is not "
                "supported, so the context must fit in the window",
                options_.context, *c.sliding_window);
  set_attention(options_.attention);

  // the cache is allocated up front: a context that cannot fit fails here, with its size, not mid-prompt
  const double cache_gib = double(kv_cache_bytes()) / double(1ull << 30);
  DATTN_CHECK(options_.context <= (int64_t(1) << 31) && cache_gib < 1e6,
              "context {} is too large (KV cache of {:.1f} GiB)", options_.context, cache_gib);
  const size_t cache_elems = size_t(c.num_layers) * size_t(options_.context) * size_t(c.num_kv_heads * c.head_dim);
  try {
    k_cache_ = std::make_unique_for_overwrite<float[]>(cache_elems);
    v_cache_ = std::make_unique_for_overwrite<float[]>(cache_elems);
  } catch (const std::bad_alloc&) {
    fail("cannot allocate the KV cache for a context of {} tokens ({:.1f} GiB): lower --ctx", options_.context,
         cache_gib);
  }

  const size_t rows = size_t(std::min(options_.chunk_size, options_.context));
  work_ = std::make_shared<Workspace>();
  work_->x.resize(rows * size_t(c.hidden_size));
  work_->normed.resize(rows * size_t(std::max(c.hidden_size, c.num_heads * c.head_dim)));
  work_->q.resize(rows * size_t(c.num_heads * c.head_dim));
  work_->attn.resize(rows * size_t(c.num_heads * c.head_dim));
  work_->gate.resize(rows * size_t(c.intermediate_size));
  work_->up.resize(rows * size_t(c.intermediate_size));
  work_->rope_cos.resize(rows * size_t(c.head_dim / 2));
  work_->rope_sin.resize(rows * size_t(c.head_dim / 2));
  cpu_ops::use_single_threaded_blas();
}

void Session::set_attention(AttentionPlan plan) {
  const int64_t layers = model_->config().num_layers;
  for (const auto& [layer, p] : plan.layer_overrides)
    DATTN_CHECK(layer >= 0 && layer < layers, "attention override for layer {}, but the model has {} layers", layer,
                layers);
  DATTN_CHECK(plan.dense_first_layers >= 0, "dense_first_layers must be >= 0, got {}", plan.dense_first_layers);
  DATTN_CHECK(plan.adaptive_gap_threshold >= 0, "the adaptive anchor-gap threshold must be >= 0, got {}",
              plan.adaptive_gap_threshold);
  gaps_.assign(size_t(layers), LayerAnchorGap{});
  options_.attention = std::move(plan);
}

uint64_t Session::kv_cache_bytes() const {
  const ModelConfig& c = model_->config();
  return 2ull * uint64_t(c.num_layers) * uint64_t(options_.context) * uint64_t(c.num_kv_heads * c.head_dim) * 4ull;
}

void Session::check_ids(std::span<const int32_t> ids) const {
  const int64_t vocab = model_->config().vocab_size;
  for (size_t i = 0; i < ids.size(); ++i)
    DATTN_CHECK(ids[i] >= 0 && ids[i] < vocab, "token id {} at index {} is outside the vocabulary [0, {})", ids[i], i,
                vocab);
  DATTN_CHECK(position_ + int64_t(ids.size()) <= options_.context,
              "{} tokens do not fit the context: {} already cached, context is {} tokens (raise --ctx)", ids.size(),
              position_, options_.context);
}

std::vector<float> Session::prefill(std::span<const int32_t> ids, const PrefillOptions& options) {
  DATTN_CHECK(!ids.empty(), "prefill needs at least one token");
  check_ids(ids);
  const int64_t n = int64_t(ids.size()), vocab = model_->config().vocab_size;
  std::vector<float> logits(size_t(options.all_logits ? n * vocab : vocab));
  const int64_t chunk = options.chunk_size > 0 ? std::min(options.chunk_size, options_.chunk_size) : options_.chunk_size;
  gaps_.assign(size_t(model_->config().num_layers), LayerAnchorGap{});
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    const bool last_chunk = start + rows == n;
    int64_t first_logit_row = rows;  // none
    float* out = logits.data();
    if (options.all_logits) {
      first_logit_row = 0;
      out += start * vocab;
    } else if (last_chunk) {
      first_logit_row = rows - 1;
    }
    forward_chunk(ids.subspan(size_t(start), size_t(rows)), false, first_logit_row, out);
    const double threshold = options_.attention.adaptive_gap_threshold;
    if (start == 0 && threshold > 0)
      for (LayerAnchorGap& gap : gaps_) gap.went_dense = gap.samples > 0 && gap.mean > threshold;
    if (options.on_progress) options.on_progress(start + rows, n);
  }
  return logits;
}

std::vector<float> Session::decode(int32_t id) {
  check_ids(std::span<const int32_t>(&id, 1));
  std::vector<float> logits(size_t(model_->config().vocab_size));
  forward_chunk(std::span<const int32_t>(&id, 1), true, 0, logits.data());
  return logits;
}

void Session::forward_chunk(std::span<const int32_t> ids, bool decode_step, int64_t first_logit_row, float* logits) {
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  Workspace& w = *work_;
  const int64_t rows = int64_t(ids.size()), pos0 = position_;
  const int64_t hidden = c.hidden_size, d = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads;
  const int64_t q_dim = hq * d, kv_dim = hkv * d, ctx = options_.context;
  const int threads = options_.num_threads;
  float* x = w.x.data();

  const float* embed = m.embed_tokens().data();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(x + r * hidden, embed + int64_t(ids[size_t(r)]) * hidden, size_t(hidden) * sizeof(float));
  cpu_ops::rope_tables(m.rope_inv_freq().data(), d / 2, pos0, rows, w.rope_cos.data(), w.rope_sin.data());

  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const LayerWeights& lw = m.layers()[size_t(layer)];
    float* k_layer = k_cache_.get() + layer * ctx * kv_dim;
    float* v_layer = v_cache_.get() + layer * ctx * kv_dim;
    float* k_new = k_layer + pos0 * kv_dim;  // this chunk's keys go straight into the cache
    float* v_new = v_layer + pos0 * kv_dim;

    cpu_ops::rms_norm(x, lw.input_norm.data(), w.normed.data(), rows, hidden, c.rms_norm_eps);
    cpu_ops::linear(w.normed.data(), lw.q_proj, w.q.data(), rows, false, threads);
    cpu_ops::linear(w.normed.data(), lw.k_proj, k_new, rows, false, threads);
    cpu_ops::linear(w.normed.data(), lw.v_proj, v_new, rows, false, threads);
    if (lw.q_norm) {
      cpu_ops::rms_norm(w.q.data(), lw.q_norm->data(), w.q.data(), rows * hq, d, c.rms_norm_eps);
      cpu_ops::rms_norm(k_new, lw.k_norm->data(), k_new, rows * hkv, d, c.rms_norm_eps);
    }
    cpu_ops::apply_rope(w.q.data(), w.rope_cos.data(), w.rope_sin.data(), rows, hq, d);
    cpu_ops::apply_rope(k_new, w.rope_cos.data(), w.rope_sin.data(), rows, hkv, d);

    TensorView q_view{w.q.data(), DType::f32, Device::cpu, {1, rows, hq, d}, {rows * q_dim, q_dim, d, 1}};
    TensorView out_view{w.attn.data(), DType::f32, Device::cpu, {1, rows, hq, d}, {rows * q_dim, q_dim, d, 1}};
    TensorView k_view{k_layer, DType::f32, Device::cpu, {1, pos0 + rows, hkv, d}, {ctx * kv_dim, kv_dim, d, 1}};
    TensorView v_view{v_layer, DType::f32, Device::cpu, {1, pos0 + rows, hkv, d}, {ctx * kv_dim, kv_dim, d, 1}};
    AttentionParams params = options_.attention.for_layer(layer);
    if (decode_step || gaps_[size_t(layer)].went_dense) params.mode = AttentionMode::dense;
    params.num_threads = options_.num_threads;
    if (params.scale == 0) params.scale = c.attention_scale();
    AnchorGap gap;
    const bool measure = options_.attention.report_anchor_gap || options_.attention.adaptive_gap_threshold > 0;
    if (measure && params.mode == AttentionMode::delta) params.anchor_gap = &gap;
    delta_attention(q_view, k_view, v_view, out_view, params);
    if (params.anchor_gap) gaps_[size_t(layer)].add(gap);

    cpu_ops::linear(w.attn.data(), lw.o_proj, x, rows, /*accumulate=*/true, threads);
    cpu_ops::rms_norm(x, lw.post_attention_norm.data(), w.normed.data(), rows, hidden, c.rms_norm_eps);
    cpu_ops::linear(w.normed.data(), lw.gate_proj, w.gate.data(), rows, false, threads);
    cpu_ops::linear(w.normed.data(), lw.up_proj, w.up.data(), rows, false, threads);
    cpu_ops::silu_mul(w.gate.data(), w.up.data(), rows * c.intermediate_size);
    cpu_ops::linear(w.gate.data(), lw.down_proj, x, rows, /*accumulate=*/true, threads);
  }

  const int64_t logit_rows = rows - first_logit_row;
  if (logit_rows > 0) {
    const float* x_rows = x + first_logit_row * hidden;
    cpu_ops::rms_norm(x_rows, m.final_norm().data(), w.normed.data(), logit_rows, hidden, c.rms_norm_eps);
    cpu_ops::linear(w.normed.data(), m.lm_head().data(), nullptr, c.vocab_size, hidden, logits, logit_rows, false,
                    threads);
  }
  position_ = pos0 + rows;
}

}  // namespace dattn::model
