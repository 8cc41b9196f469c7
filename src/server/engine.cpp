// The serving engine: a scheduling thread that runs the submitted requests over the model.
#include "dattn/server/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "dattn/core/error.h"

namespace dattn::server {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Pending {
  uint64_t id;
  Request request;
  TokenCallback on_event;
  Clock::time_point submitted;
};

class SessionEngine final : public Engine {
 public:
  SessionEngine(std::shared_ptr<const model::Model> model, EngineOptions options)
      : model_(std::move(model)), options_(std::move(options)) {
    const model::ModelConfig& c = model_->config();
    DATTN_CHECK(options_.device == "cpu", "engine device '{}' is not supported (cpu)", options_.device);
    DATTN_CHECK(options_.max_batch >= 1, "max_batch must be >= 1, got {}", options_.max_batch);
    DATTN_CHECK(options_.kv_block_tokens >= 1, "kv_block_tokens must be >= 1, got {}", options_.kv_block_tokens);
    DATTN_CHECK(options_.prefill_chunk >= 1, "prefill_chunk must be >= 1, got {}", options_.prefill_chunk);
    DATTN_CHECK(options_.max_queue >= 0, "max_queue must be >= 0, got {}", options_.max_queue);
    DATTN_CHECK(options_.kv_memory_gib > 0, "kv_memory must be > 0 GiB, got {}", options_.kv_memory_gib);
    DATTN_CHECK(options_.max_context >= 0, "max_context must be >= 0, got {}", options_.max_context);
    if (options_.max_context == 0) options_.max_context = c.max_position_embeddings;
    DATTN_CHECK(options_.max_context >= 1, "max_context must be >= 1, got {}", options_.max_context);
    const double block_bytes = 2.0 * double(c.num_layers * c.num_kv_heads * c.head_dim) * 4.0 *
                               double(options_.kv_block_tokens);
    blocks_total_ = int64_t(options_.kv_memory_gib * double(1ull << 30) / block_bytes);
    const int64_t blocks_per_context = (options_.max_context + options_.kv_block_tokens - 1) / options_.kv_block_tokens;
    DATTN_CHECK(blocks_total_ >= blocks_per_context,
                "--kv-memory {} GiB holds {} blocks of {} tokens, fewer than one context of {} tokens needs ({})",
                options_.kv_memory_gib, blocks_total_, options_.kv_block_tokens, options_.max_context,
                blocks_per_context);
    model::SessionOptions so;
    so.context = options_.max_context;
    so.chunk_size = options_.prefill_chunk;
    so.attention = options_.attention;
    so.num_threads = options_.num_threads;
    session_ = std::make_unique<model::Session>(model_, so);
    thread_ = std::thread([this] { loop(); });
  }

  ~SessionEngine() override { shutdown(true); }

  uint64_t submit(Request request, TokenCallback on_event) override {
    const model::ModelConfig& c = model_->config();
    DATTN_CHECK(!request.prompt.empty(), "the prompt has no tokens");
    DATTN_CHECK(int64_t(request.prompt.size()) <= options_.max_context,
                "the prompt has {} tokens, more than the maximum context of {}", request.prompt.size(),
                options_.max_context);
    for (size_t i = 0; i < request.prompt.size(); ++i)
      DATTN_CHECK(request.prompt[i] >= 0 && request.prompt[i] < c.vocab_size,
                  "token id {} at index {} is outside the vocabulary [0, {})", request.prompt[i], i, c.vocab_size);
    DATTN_CHECK(request.max_new_tokens >= 0, "max_new_tokens must be >= 0, got {}", request.max_new_tokens);
    model::Sampler check(request.sampling);  // throws on invalid sampling values
    std::lock_guard lock(mutex_);
    DATTN_CHECK(!stopping_, "the engine is shutting down");
    if (int64_t(waiting_.size()) >= options_.max_queue)
      throw QueueFull(fmt::format("the queue is full ({} requests waiting); retry later", waiting_.size()));
    const uint64_t id = next_id_++;
    waiting_.push_back({id, std::move(request), std::move(on_event), Clock::now()});
    wake_.notify_all();
    return id;
  }

  void cancel(uint64_t id) override {
    std::lock_guard lock(mutex_);
    cancelled_.insert(id);
    wake_.notify_all();
  }

  EngineStats stats() const override {
    std::lock_guard lock(mutex_);
    EngineStats s = stats_;
    s.waiting = int64_t(waiting_.size());
    s.kv_blocks_total = blocks_total_;
    return s;
  }

  void shutdown(bool cancel_running) override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      cancel_all_ = cancel_all_ || cancel_running;
      wake_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  const EngineOptions& options() const override { return options_; }

 private:
  std::shared_ptr<const model::Model> model_;
  EngineOptions options_;
  std::unique_ptr<model::Session> session_;
  int64_t blocks_total_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> waiting_;
  std::unordered_set<uint64_t> cancelled_;
  bool stopping_ = false, cancel_all_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;
  std::thread thread_;

  bool is_cancelled(uint64_t id) {
    std::lock_guard lock(mutex_);
    return cancel_all_ || cancelled_.count(id) > 0;
  }

  void loop() {
    for (;;) {
      Pending p;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) return;  // stopping and drained
        if (cancel_all_) {
          std::deque<Pending> dropped;
          dropped.swap(waiting_);
          lock.unlock();
          for (Pending& d : dropped) finish(d, FinishReason::cancelled, {}, 0, 0, 0);
          continue;
        }
        p = std::move(waiting_.front());
        waiting_.pop_front();
        stats_.running = 1;
      }
      run(p);
      std::lock_guard lock(mutex_);
      stats_.running = 0;
      stats_.kv_blocks_used = 0;
      cancelled_.erase(p.id);
    }
  }

  void finish(Pending& p, FinishReason reason, std::string error, int64_t completion, double ttft, int32_t token) {
    TokenEvent e;
    e.token = token;
    e.finished = true;
    e.reason = reason;
    e.error = std::move(error);
    e.prompt_tokens = int64_t(p.request.prompt.size());
    e.completion_tokens = completion;
    e.time_to_first_token_ms = ttft;
    p.on_event(e);
    std::lock_guard lock(mutex_);
    ++stats_.requests_finished;
  }

  void run(Pending& p) {
    const Request& r = p.request;
    const int64_t prompt_tokens = int64_t(r.prompt.size());
    int64_t completion = 0;
    double ttft = 0;
    try {
      if (is_cancelled(p.id)) return finish(p, FinishReason::cancelled, {}, 0, 0, -1);
      model::AttentionPlan plan = options_.attention;
      if (r.attention) plan.params = *r.attention;
      session_->reset();
      session_->set_attention(plan);
      model::Sampler sampler(r.sampling);
      const auto prefill_start = Clock::now();
      std::vector<float> logits = session_->prefill(r.prompt);
      record(prompt_tokens, 0, ms_since(prefill_start), 0);
      for (;;) {
        if (completion == r.max_new_tokens) return finish(p, FinishReason::length, {}, completion, ttft, -1);
        const int32_t token = sampler.sample(logits);
        if (std::find(r.stop_ids.begin(), r.stop_ids.end(), token) != r.stop_ids.end())
          return finish(p, FinishReason::stop_token, {}, completion, ttft, -1);
        ++completion;
        if (completion == 1) ttft = ms_since(p.submitted);
        const bool last_by_length = completion == r.max_new_tokens;
        const bool context_full = !last_by_length && session_->position() >= session_->context();
        TokenEvent e;
        e.token = token;
        e.prompt_tokens = prompt_tokens;
        e.completion_tokens = completion;
        e.time_to_first_token_ms = ttft;
        if (last_by_length || context_full) {
          e.finished = true;
          e.reason = last_by_length ? FinishReason::length : FinishReason::context;
          p.on_event(e);
          std::lock_guard lock(mutex_);
          ++stats_.requests_finished;
          return;
        }
        if (!p.on_event(e) || is_cancelled(p.id))
          return finish(p, FinishReason::cancelled, {}, completion, ttft, -1);
        const auto decode_start = Clock::now();
        logits = session_->decode(token);
        record(0, 1, 0, ms_since(decode_start));
        std::lock_guard lock(mutex_);
        stats_.kv_blocks_used = (session_->position() + options_.kv_block_tokens - 1) / options_.kv_block_tokens;
      }
    } catch (const std::exception& ex) {
      finish(p, FinishReason::error, ex.what(), completion, ttft, -1);
    }
  }

  void record(int64_t prefill_tokens, int64_t decode_tokens, double prefill_ms, double decode_ms) {
    std::lock_guard lock(mutex_);
    stats_.prompt_tokens_total += prefill_tokens;
    stats_.generated_tokens_total += decode_tokens;
    if (prefill_ms > 0) stats_.prefill_tokens_per_s = prefill_tokens * 1000.0 / prefill_ms;
    if (decode_ms > 0) stats_.decode_tokens_per_s = decode_tokens * 1000.0 / decode_ms;
  }
};

}  // namespace

std::unique_ptr<Engine> Engine::create(std::shared_ptr<const model::Model> model, EngineOptions options) {
  DATTN_CHECK(model != nullptr, "Engine::create: no model");
  return std::make_unique<SessionEngine>(std::move(model), std::move(options));
}

}  // namespace dattn::server
