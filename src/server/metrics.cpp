#include "dattn/server/metrics.h"

#include <fmt/format.h>

#include "dattn/server/engine.h"

namespace dattn::server {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename T>
void single(std::string& out, std::string_view name, std::string_view type, std::string_view help, T value) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, value);
}

// Bounds that resolve both a tiny CPU model (milliseconds) and long prompts on a GPU (minutes).
std::vector<double> latency_bounds() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::format(const std::string& name) const {
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
  return out;
}

Metrics::Metrics() : time_to_first_token_(latency_bounds()), request_duration_(latency_bounds()) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  time_to_first_token_.observe(seconds);
}

void Metrics::observe_request(double seconds, int64_t prompt_tokens, int64_t completion_tokens) {
  std::lock_guard lock(mutex_);
  request_duration_.observe(seconds);
  prompt_tokens_ += uint64_t(prompt_tokens);
  completion_tokens_ += uint64_t(completion_tokens);
}

void Metrics::set_in_flight(int64_t requests) {
  std::lock_guard lock(mutex_);
  in_flight_ = requests;
}

std::string Metrics::format(const EngineStats& engine) const {
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "dattn_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, count] : requests_) {
    out += fmt::format("dattn_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
  }
  single(out, "dattn_http_requests_in_flight", "gauge", "Completion requests being answered now.", in_flight_);
  single(out, "dattn_prompt_tokens_total", "counter", "Prompt tokens of finished completion requests.", prompt_tokens_);
  single(out, "dattn_completion_tokens_total", "counter", "Tokens returned by finished completion requests.",
         completion_tokens_);
  header(out, "dattn_time_to_first_token_seconds", "histogram", "From a request's arrival to its first token.");
  out += time_to_first_token_.format("dattn_time_to_first_token_seconds");
  header(out, "dattn_request_duration_seconds", "histogram", "From a request's arrival to its last token.");
  out += request_duration_.format("dattn_request_duration_seconds");

  single(out, "dattn_engine_requests_running", "gauge", "Sequences the engine is prefilling or decoding.", engine.running);
  single(out, "dattn_engine_requests_waiting", "gauge", "Requests queued for the engine (queue depth).", engine.waiting);
  single(out, "dattn_engine_peak_batch", "gauge", "The most sequences one engine step has served.", engine.peak_running);
  single(out, "dattn_engine_requests_finished_total", "counter", "Sequences the engine finished.", engine.requests_finished);
  single(out, "dattn_engine_prompt_tokens_total", "counter", "Prompt tokens the engine took in.", engine.prompt_tokens_total);
  single(out, "dattn_engine_generated_tokens_total", "counter", "Tokens the engine generated.", engine.generated_tokens_total);
  single(out, "dattn_engine_prefix_reused_tokens_total", "counter", "Prompt tokens served from cached KV blocks.",
         engine.prefix_reused_tokens_total);
  single(out, "dattn_engine_prefill_tokens_per_second", "gauge", "Recent prefill throughput.", engine.prefill_tokens_per_s);
  single(out, "dattn_engine_decode_tokens_per_second", "gauge", "Recent decode throughput.", engine.decode_tokens_per_s);
  single(out, "dattn_kv_cache_blocks_total", "gauge", "Blocks of the paged KV cache pool.", engine.kv_blocks_total);
  single(out, "dattn_kv_cache_blocks_used", "gauge", "KV cache blocks in use.", engine.kv_blocks_used);
  single(out, "dattn_kv_cache_usage_ratio", "gauge", "Fraction of the KV cache pool in use.",
         engine.kv_blocks_total > 0 ? double(engine.kv_blocks_used) / double(engine.kv_blocks_total) : 0.0);
  // Per layer, only once a delta prefill finished: how large the correction was at the anchors
  if (!engine.anchor_gap_mean.empty()) {
    header(out, "dattn_anchor_gap_mean", "gauge",
           "Mean over delta prefills of ||dense - sparse|| / ||dense|| at the anchor rows, by layer.");
    for (size_t l = 0; l < engine.anchor_gap_mean.size(); ++l)
      if (engine.anchor_gap_samples[l] > 0)
        out += fmt::format("dattn_anchor_gap_mean{{layer=\"{}\"}} {}\n", l, engine.anchor_gap_mean[l]);
    header(out, "dattn_anchor_gap_max_head", "gauge", "Largest per-head mean anchor gap of any delta prefill, by layer.");
    for (size_t l = 0; l < engine.anchor_gap_max.size(); ++l)
      if (engine.anchor_gap_samples[l] > 0)
        out += fmt::format("dattn_anchor_gap_max_head{{layer=\"{}\"}} {}\n", l, engine.anchor_gap_max[l]);
  }
  return out;
}

}  // namespace dattn::server
