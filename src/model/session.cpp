// One inference stream on the CPU: the shared forward pass (forward.h, CpuForward) one chunk of tokens at
// a time over a KV cache of one block that holds the whole context (continued prefill: n_kv > n_q).
#include "dattn/model/session.h"

#include <algorithm>
#include <charconv>

#include "dattn/core/error.h"
#include "dattn/model/cpu_forward.h"

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

Session::Session(std::shared_ptr<const Model> model, SessionOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  const ModelConfig& c = model_->config();
  DATTN_CHECK(options_.context >= 1, "context must be >= 1 token, got {}", options_.context);
  DATTN_CHECK(options_.chunk_size >= 1, "prefill chunk size must be >= 1, got {}", options_.chunk_size);
  DATTN_CHECK(options_.num_threads >= 0 && options_.num_threads <= kMaxThreads,
              "num_threads must be in 0 .. {} (0 = default), got {}", kMaxThreads, options_.num_threads);
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
  try {
    cache_ = std::make_unique<PagedKvCache>(c.num_layers, 1, options_.context, c.num_kv_heads, c.head_dim);
  } catch (const Error&) {
    fail("cannot allocate the KV cache for a context of {} tokens ({:.1f} GiB): lower --ctx", options_.context,
         cache_gib);
  }
  const int64_t rows = std::min(options_.chunk_size, options_.context);
  forward_ = std::make_unique<CpuForward>(*model_, *cache_, rows, rows, options_.num_threads);
}

Session::~Session() = default;

void AttentionPlan::validate(int64_t layers) const {
  validate_attention_params(params);
  for (const auto& [layer, p] : layer_overrides) {
    DATTN_CHECK(layer >= 0 && layer < layers, "attention override for layer {}, but the model has {} layers", layer,
                layers);
    validate_attention_params(p);
  }
  DATTN_CHECK(dense_first_layers >= 0, "dense_first_layers must be >= 0, got {}", dense_first_layers);
  DATTN_CHECK(adaptive_gap_threshold >= 0, "the adaptive anchor-gap threshold must be >= 0, got {}",
              adaptive_gap_threshold);
}

void Session::set_attention(AttentionPlan plan) {
  plan.validate(model_->config().num_layers);
  gaps_.assign(size_t(model_->config().num_layers), LayerAnchorGap{});
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
  return prefill_in_chunks(ids, options_.chunk_size, options, model_->config().vocab_size, options_.attention,
                           model_->config().num_layers, gaps_,
                           [&](std::span<const int32_t> chunk, int64_t first_logit_row, float* logits) {
                             forward_chunk(chunk, false, first_logit_row, logits);
                           });
}

std::vector<float> Session::decode(int32_t id) {
  check_ids(std::span<const int32_t>(&id, 1));
  std::vector<float> logits(size_t(model_->config().vocab_size));
  forward_chunk(std::span<const int32_t>(&id, 1), true, 0, logits.data());
  return logits;
}

void Session::forward_chunk(std::span<const int32_t> ids, bool decode_step, int64_t first_logit_row, float* logits) {
  static constexpr int32_t kOnlyBlock = 0;
  const int64_t rows = int64_t(ids.size());
  ForwardBatch batch{ids, {SequenceRows{.first_row = 0,
                                        .rows = rows,
                                        .position = position_,
                                        .decode = decode_step,
                                        .logits_from = first_logit_row,
                                        .attention = &options_.attention,
                                        .block_table = std::span<const int32_t>(&kOnlyBlock, 1),
                                        .anchor_gaps = &gaps_}}};
  run_forward(*forward_, batch, model_->config().num_layers, logits);
  position_ += rows;
}

}  // namespace dattn::model
