// The serving engine: one scheduling thread that runs every admitted sequence together. Each step is one
// forward pass over a batch made of one decode row per generating sequence plus prefill chunks of at most
// EngineOptions::prefill_chunk rows in all, so a long prompt is prefilled a chunk per step (a continued
// prefill through the operator) while the other sequences keep decoding. K/V live in a paged pool; full
// prompt blocks are published to a prefix cache that later requests with the same prefix reuse.
#include "dattn/server/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>

#include "block_manager.h"
#include "dattn/core/error.h"
#include "dattn/core/threads.h"
#include "dattn/model/cpu_forward.h"
#include "dattn/model/cuda_session.h"

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

// Names the attention settings a block's K/V were computed with (sparse and Δ prefill make the K/V of
// layers after the first depend on them).
uint64_t settings_hash(const model::AttentionPlan& plan, int64_t prefill_chunk) {
  std::string text = fmt::format("chunk {} dense_first {}", prefill_chunk, plan.dense_first_layers);
  auto add = [&](const AttentionParams& p) {
    text += fmt::format("|{} {} {} {} {} {}", mode_name(p.mode), p.window, p.sink, p.gamma, p.tail_min, p.scale);
  };
  add(plan.params);
  for (const auto& [layer, p] : plan.layer_overrides) {
    text += fmt::format("|layer {}", layer);
    add(p);
  }
  return std::hash<std::string>{}(text);
}

bool all_layers_dense(const model::AttentionPlan& plan, int64_t layers) {
  for (int64_t l = 0; l < layers; ++l)
    if (plan.for_layer(l).mode != AttentionMode::dense) return false;
  return true;
}

struct Sequence {
  Sequence(Pending p, const model::SamplingParams& sampling) : pending(std::move(p)), sampler(sampling) {}
  Pending pending;
  model::AttentionPlan plan;
  uint64_t settings = 0;
  int64_t reuse_unit = 0;     // prefix reuse and publication go in multiples of this many tokens
  model::Sampler sampler;
  std::vector<model::LayerAnchorGap> gaps;  // per layer, over this prompt's chunks (delta layers)
  std::vector<int32_t> blocks;  // block table for every token the sequence may hold
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t prompt_tokens = 0;
  int64_t cached = 0;           // tokens whose K/V are in the pool
  int64_t published = 0;        // blocks published to the prefix cache
  uint64_t last_hash = 0;       // chain hash of block published - 1
  int64_t completion = 0;
  double ttft_ms = 0;
  bool prefilling() const { return cached < prompt_tokens; }
};

class BatchEngine final : public Engine {
 public:
  BatchEngine(std::shared_ptr<const model::Model> model, EngineOptions options)
      : model_(std::move(model)), options_(std::move(options)) {
    const model::ModelConfig& c = model_->config();
    const bool on_gpu = options_.device == "cuda";
    DATTN_CHECK(on_gpu || options_.device == "cpu", "engine device '{}' must be cpu or cuda", options_.device);
    DATTN_CHECK(options_.max_batch >= 1, "max_batch must be >= 1, got {}", options_.max_batch);
    DATTN_CHECK(options_.kv_block_tokens >= 1, "kv_block_tokens must be >= 1, got {}", options_.kv_block_tokens);
    DATTN_CHECK(options_.prefill_chunk >= 1, "prefill_chunk must be >= 1, got {}", options_.prefill_chunk);
    DATTN_CHECK(options_.max_queue >= 0, "max_queue must be >= 0, got {}", options_.max_queue);
    DATTN_CHECK(options_.kv_memory_gib > 0, "kv_memory must be > 0 GiB, got {}", options_.kv_memory_gib);
    DATTN_CHECK(options_.max_context >= 0, "max_context must be >= 0, got {}", options_.max_context);
    DATTN_CHECK(options_.num_threads >= 0, "num_threads must be >= 0, got {}", options_.num_threads);
    if (options_.max_context == 0) options_.max_context = c.max_position_embeddings;
    DATTN_CHECK(options_.max_context >= 1, "max_context must be >= 1, got {}", options_.max_context);
    if (c.sliding_window)
      DATTN_CHECK(options_.max_context <= *c.sliding_window,
                  "max_context {} exceeds the model's sliding_window {}: the context must fit in the window",
                  options_.max_context, *c.sliding_window);
    check_plan(options_.attention);
    check_params(options_.attention.params);
    for (const auto& [layer, p] : options_.attention.layer_overrides) check_params(p);
    const int64_t bt = options_.kv_block_tokens;
    const double token_bytes = on_gpu ? double(model::cuda_kv_bytes_per_token(c))  // bf16, padded head_dim
                                      : 2.0 * double(c.num_layers * c.num_kv_heads * c.head_dim) * 4.0;
    const double block_bytes = token_bytes * double(bt);
    const double blocks = options_.kv_memory_gib * double(1ull << 30) / block_bytes;
    const int64_t per_context = (options_.max_context + bt - 1) / bt;
    DATTN_CHECK(blocks >= double(per_context),
                "kv_memory {} GiB holds {:.0f} blocks of {} tokens, fewer than one context of {} tokens needs ({})",
                options_.kv_memory_gib, blocks, bt, options_.max_context, per_context);
    DATTN_CHECK(blocks < double(int64_t(1) << 31), "kv_memory {} GiB is too large", options_.kv_memory_gib);
    const int64_t max_rows = options_.prefill_chunk + options_.max_batch;
    if (on_gpu) {
      forward_ = model::make_cuda_forward(
          c, model_->checkpoint(),
          {.num_blocks = int64_t(blocks), .block_tokens = bt, .max_rows = max_rows,
           .max_sequences = options_.max_batch, .max_context = options_.max_context});
    } else {
      cache_ = std::make_unique<model::PagedKvCache>(c.num_layers, int64_t(blocks), bt, c.num_kv_heads, c.head_dim);
      forward_ = std::make_unique<model::CpuForward>(*model_, *cache_, max_rows, options_.prefill_chunk,
                                                     options_.num_threads);
    }
    block_manager_ = std::make_unique<BlockManager>(int64_t(blocks), bt);
    stats_.kv_blocks_total = block_manager_->total();
    thread_ = std::thread([this] { loop(); });
  }

  ~BatchEngine() override { shutdown(true); }

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
    DATTN_CHECK(bool(on_event), "submit needs a token callback");
    model::Sampler check(request.sampling);  // throws on invalid sampling values
    if (request.attention) check_params(*request.attention);
    std::lock_guard lock(mutex_);
    DATTN_CHECK(!stopping_, "the engine is shutting down");
    if (int64_t(waiting_.size()) >= options_.max_queue)
      throw QueueFull(fmt::format("the queue is full ({} requests waiting, max_queue {}); retry later",
                                  waiting_.size(), options_.max_queue));
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
    return s;
  }

  void shutdown(bool cancel_running) override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      cancel_all_ = cancel_all_ || cancel_running;
      wake_.notify_all();
    }
    if (std::this_thread::get_id() == thread_.get_id()) return;  // from a callback: the loop ends by itself
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  const EngineOptions& options() const override { return options_; }

 private:
  std::shared_ptr<const model::Model> model_;
  EngineOptions options_;
  std::unique_ptr<model::PagedKvCache> cache_;  // cpu; the cuda backend owns its device pool
  std::unique_ptr<BlockManager> block_manager_;
  std::unique_ptr<model::ForwardBackend> forward_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order (engine thread only)
  std::vector<float> logits_;                          // of the current step (engine thread only)

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::deque<Pending> waiting_;
  std::unordered_set<uint64_t> cancelled_;
  bool stopping_ = false, cancel_all_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;
  struct StepRecord {
    Clock::time_point end;
    double seconds;
    int64_t prefill_tokens, decode_tokens;
  };
  std::deque<StepRecord> recent_;
  std::mutex join_mutex_;
  std::thread thread_;

  void check_plan(const model::AttentionPlan& plan) const {
    const int64_t layers = model_->config().num_layers;
    for (const auto& [layer, p] : plan.layer_overrides)
      DATTN_CHECK(layer >= 0 && layer < layers, "attention override for layer {}, but the model has {} layers", layer,
                  layers);
    DATTN_CHECK(plan.dense_first_layers >= 0, "dense_first_layers must be >= 0, got {}", plan.dense_first_layers);
  }

  // The operator's own checks, made here so that a bad override fails its request, not the batch it joins.
  static void check_params(const AttentionParams& p) {
    DATTN_CHECK(p.gamma >= 1, "attention gamma must be >= 1, got {}", p.gamma);
    DATTN_CHECK(p.window >= 1, "attention window must be >= 1, got {}", p.window);
    DATTN_CHECK(p.sink >= 0, "attention sink must be >= 0, got {}", p.sink);
    DATTN_CHECK(p.tail_min >= -1, "attention tail_min must be >= 0 (or -1 for the default), got {}", p.tail_min);
    DATTN_CHECK(int(p.mode) <= int(AttentionMode::delta), "unknown attention mode value {}", int(p.mode));
  }

  model::AttentionPlan plan_for(const Request& r) const {
    model::AttentionPlan plan = options_.attention;
    plan.report_anchor_gap = true;  // delta layers measure it in their epilogues: the /metrics gauges
    if (r.attention) {
      const AttentionParams& o = *r.attention;
      plan.params.mode = o.mode;
      plan.params.window = o.window;
      plan.params.sink = o.sink;
      plan.params.gamma = o.gamma;
      plan.params.tail_min = o.tail_min;
    }
    return plan;
  }

  // ---- the scheduling thread ----

  void loop() {
    for (;;) {
      std::vector<Pending> cancelled_waiting;
      std::vector<uint64_t> cancelled_running;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !running_.empty() || !cancelled_.empty(); });
        if (stopping_ && waiting_.empty() && running_.empty()) return;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if (cancel_all_ || cancelled_.erase(it->id)) {
            cancelled_waiting.push_back(std::move(*it));
            it = waiting_.erase(it);
          } else {
            ++it;
          }
        }
        for (const auto& s : running_)
          if (cancel_all_ || cancelled_.erase(s->pending.id)) cancelled_running.push_back(s->pending.id);
        // what is left names requests that finished already (or never existed)
        cancelled_.clear();
      }
      for (Pending& p : cancelled_waiting) {
        Sequence s(std::move(p), {});
        s.prompt_tokens = int64_t(s.pending.request.prompt.size());
        notify_finish(s, FinishReason::cancelled, {});
      }
      for (uint64_t id : cancelled_running) finish(id, FinishReason::cancelled, {});
      admit();
      if (!running_.empty()) step_or_end_all();
    }
  }

  // An error that escapes a step (the forward pass's own errors end its batch inside step(); this is for
  // the rest: a device error while reading back anchor gaps, say) ends the running sequences with it
  // instead of ending the scheduling thread, and with it the process.
  void step_or_end_all() {
    try {
      step();
    } catch (const std::exception& e) {
      std::vector<uint64_t> ids;
      for (const auto& s : running_) ids.push_back(s->pending.id);
      for (uint64_t id : ids) finish(id, FinishReason::error, e.what());
    }
  }

  // Moves waiting requests into the running set while there is room in the batch and in the pool.
  void admit() {
    for (;;) {
      Pending p;
      {
        std::lock_guard lock(mutex_);
        if (waiting_.empty() || int64_t(running_.size()) >= options_.max_batch) return;
        p = std::move(waiting_.front());
        waiting_.pop_front();
      }
      std::unique_ptr<Sequence> s;
      try {
        s = start(std::move(p));
      } catch (const std::exception& e) {  // a request that passed submit's checks but cannot start
        Sequence failed(std::move(p), {});
        notify_finish(failed, FinishReason::error, e.what());
        continue;
      }
      if (!s) return;  // the pool is full: it waits at the head of the queue
      running_.push_back(std::move(s));
      publish_counts();
    }
  }

  // The sequence with its blocks (reused prefix blocks, then fresh ones for the rest of its context), or
  // null with the request put back at the head of the queue when the pool has too few blocks now.
  std::unique_ptr<Sequence> start(Pending&& p) {
    const Request& r = p.request;
    const int64_t bt = options_.kv_block_tokens, n = int64_t(r.prompt.size());
    auto s = std::make_unique<Sequence>(Pending{}, r.sampling);
    s->plan = plan_for(r);
    s->gaps.assign(size_t(model_->config().num_layers), model::LayerAnchorGap{});
    s->settings = settings_hash(s->plan, options_.prefill_chunk);
    // sparse and Δ prefill make a block's K/V depend on the chunking around it: only whole chunks (from
    // position 0, as a fresh prefill cuts them) are reused, so the rest is chunked as it would be alone
    s->reuse_unit = all_layers_dense(s->plan, model_->config().num_layers)
                        ? bt
                        : std::lcm(bt, options_.prefill_chunk);
    s->tokens = r.prompt;
    s->prompt_tokens = n;

    // prefix blocks already cached: whole reuse units, and at least one prompt token left to prefill
    std::vector<int32_t> reused;
    uint64_t hash = 0;
    std::vector<uint64_t> hashes;
    const int64_t reusable = (n - 1) / s->reuse_unit * s->reuse_unit;
    for (int64_t b = 0; (b + 1) * bt <= reusable; ++b) {
      const std::span<const int32_t> block_tokens(r.prompt.data() + b * bt, size_t(bt));
      const uint64_t h = BlockManager::chain_hash(hash, s->settings, block_tokens);
      const auto block = block_manager_->acquire_cached(h, block_tokens);
      if (!block) break;
      reused.push_back(*block);
      hashes.push_back(h);
      hash = h;
    }
    const int64_t keep_blocks = int64_t(reused.size()) * bt / s->reuse_unit * s->reuse_unit / bt;
    block_manager_->release(std::span<const int32_t>(reused).subspan(size_t(keep_blocks)));
    reused.resize(size_t(keep_blocks));

    const int64_t reserve = n + std::min(r.max_new_tokens, options_.max_context - n);
    const int64_t fresh = (reserve + bt - 1) / bt - keep_blocks;
    auto blocks = block_manager_->allocate(fresh);
    if (!blocks) {
      block_manager_->release(reused);
      std::lock_guard lock(mutex_);
      waiting_.push_front(std::move(p));
      return nullptr;
    }
    s->blocks = std::move(reused);
    s->blocks.insert(s->blocks.end(), blocks->begin(), blocks->end());
    s->cached = keep_blocks * bt;
    s->published = keep_blocks;
    s->last_hash = keep_blocks > 0 ? hashes[size_t(keep_blocks - 1)] : 0;
    s->pending = std::move(p);
    std::lock_guard lock(mutex_);
    stats_.prefix_reused_tokens_total += s->cached;
    stats_.prompt_tokens_total += n;
    return s;
  }

  void step() {
    const int64_t vocab = model_->config().vocab_size;
    std::vector<int32_t> ids;
    model::ForwardBatch batch;
    std::vector<Sequence*> members;
    int64_t prefill_rows = 0, decode_rows = 0;
    auto add = [&](Sequence& s, int64_t rows, bool decode) {
      const int64_t first = int64_t(ids.size());
      ids.insert(ids.end(), s.tokens.begin() + s.cached, s.tokens.begin() + s.cached + rows);
      const bool wants_logits = decode || s.cached + rows == s.prompt_tokens;
      batch.sequences.push_back({.first_row = first,
                                 .rows = rows,
                                 .position = s.cached,
                                 .decode = decode,
                                 .logits_from = wants_logits ? rows - 1 : rows,
                                 .attention = &s.plan,
                                 .block_table = s.blocks,
                                 .anchor_gaps = decode ? nullptr : &s.gaps});
      members.push_back(&s);
    };
    for (auto& s : running_)
      if (!s->prefilling()) {
        add(*s, 1, true);
        ++decode_rows;
      }
    for (auto& s : running_) {
      if (!s->prefilling()) continue;
      const int64_t rows = std::min(options_.prefill_chunk, s->prompt_tokens - s->cached);
      if (prefill_rows + rows > options_.prefill_chunk) break;
      add(*s, rows, false);
      prefill_rows += rows;
    }
    batch.ids = ids;
    // kept across steps: a fresh 16 MB vector a step (32 rows of a 128K vocabulary) costs its page faults
    // and zero fill on the engine thread, between two forward passes
    logits_.resize(size_t(batch.logit_rows() * vocab));
    const auto start = Clock::now();
    const bool decode_only = prefill_rows == 0;
    if (options_.profile_decode) forward_->set_stage_profiling(decode_only);
    try {
      model::run_forward(*forward_, batch, model_->config().num_layers, logits_.data());
    } catch (const std::exception& e) {
      std::vector<uint64_t> ids_in_batch;
      for (Sequence* s : members) ids_in_batch.push_back(s->pending.id);
      for (uint64_t id : ids_in_batch) finish(id, FinishReason::error, e.what());
      return;
    }
    record_step(std::chrono::duration<double>(Clock::now() - start).count(), prefill_rows, decode_rows);

    std::vector<Choice> choices;
    for (size_t i = 0; i < members.size(); ++i) {
      Sequence& s = *members[i];
      const model::SequenceRows& rows = batch.sequences[i];
      s.cached += rows.rows;
      if (!rows.decode) publish_prompt_blocks(s, rows.rows);
      if (!rows.decode && !s.prefilling()) record_anchor_gaps(s);
      if (rows.logits_from == rows.rows) continue;
      const auto logit_row = int64_t(choices.size());
      Choice& c = choices.emplace_back();
      c.sequence = &s;
      c.logits = {logits_.data() + logit_row * vocab, size_t(vocab)};
    }
    choose_tokens(choices);
    std::vector<std::tuple<uint64_t, FinishReason, std::string, std::optional<TokenEvent>>> ended;
    for (Choice& c : choices) {
      if (!c.error.empty()) {
        ended.emplace_back(c.sequence->pending.id, FinishReason::error, std::move(c.error), std::nullopt);
      } else if (auto [reason, last] = take_token(*c.sequence, c.token); reason != FinishReason::none) {
        ended.emplace_back(c.sequence->pending.id, reason, std::string(), std::move(last));
      }
    }
    for (auto& [id, reason, error, last] : ended) finish(id, reason, error, std::move(last));
    if (decode_only) record_decode_step(std::chrono::duration<double>(Clock::now() - start).count());
  }

  void record_decode_step(double seconds) {
    std::vector<std::pair<std::string, double>> stages;
    if (options_.profile_decode) stages = forward_->stage_profile();  // on only during decode-only steps
    std::lock_guard lock(mutex_);
    ++stats_.decode_only_steps;
    stats_.decode_only_seconds += seconds;
    if (options_.profile_decode) stats_.decode_stage_ms = std::move(stages);
  }

  struct Choice {
    Sequence* sequence = nullptr;
    std::span<const float> logits;
    int32_t token = -1;  // -1: none wanted (max_new_tokens reached)
    std::string error;   // why no token could be chosen (NaN logits): ends this sequence only
  };

  // The next token of every sequence in the step, on the shared thread pool: a top-p choice over a 128K
  // vocabulary costs ~0.4 ms of one core, and 32 in a row (13 ms) would match the HBM-bound time of a
  // whole 32-stream decode step of an 8B model on an H200. Each sequence has its own sampler, so the
  // tokens do not depend on the thread count.
  void choose_tokens(std::vector<Choice>& choices) const {
    parallel_for(int64_t(choices.size()), options_.num_threads, [&](int64_t i, int) {
      Choice& c = choices[size_t(i)];
      if (c.sequence->completion == c.sequence->pending.request.max_new_tokens) return;
      try {
        c.token = c.sequence->sampler.sample(c.logits);
      } catch (const std::exception& e) {
        c.error = e.what();
      }
    });
  }

  // Takes the chosen token and tells the client. Returns why the sequence ends (none: it goes on) and, when
  // the token itself reached a limit, its event (finished=true): finish() sends that one once the
  // sequence's blocks are back, so that a client never sees its last event before the stats do.
  std::pair<FinishReason, std::optional<TokenEvent>> take_token(Sequence& s, int32_t token) {
    const Request& r = s.pending.request;
    if (s.completion == r.max_new_tokens) return {FinishReason::length, std::nullopt};  // max_new_tokens 0
    if (std::find(r.stop_ids.begin(), r.stop_ids.end(), token) != r.stop_ids.end())
      return {FinishReason::stop_token, std::nullopt};
    ++s.completion;
    if (s.completion == 1) s.ttft_ms = ms_since(s.pending.submitted);
    s.tokens.push_back(token);
    {
      std::lock_guard lock(mutex_);
      ++stats_.generated_tokens_total;
    }
    TokenEvent e = event(s, token);
    if (s.completion == r.max_new_tokens)
      e.reason = FinishReason::length;  // the last token needs no forward pass
    else if (s.cached >= options_.max_context)
      e.reason = FinishReason::context;
    e.finished = e.reason != FinishReason::none;
    if (e.finished) return {e.reason, e};
    return {deliver(s, e) ? FinishReason::none : FinishReason::cancelled, std::nullopt};
  }

  // The client's callback; one that throws is treated like one that returns false.
  static bool deliver(Sequence& s, const TokenEvent& e) {
    try {
      return s.pending.on_event(e);
    } catch (...) {
      return false;
    }
  }

  TokenEvent event(const Sequence& s, int32_t token) const {
    TokenEvent e;
    e.token = token;
    e.prompt_tokens = s.prompt_tokens;
    e.completion_tokens = s.completion;
    e.time_to_first_token_ms = s.ttft_ms;
    return e;
  }

  // Publishes the full prompt blocks that the chunk just prefilled completed, when their K/V are what a
  // fresh prefill of any prompt with this prefix computes (see reuse_unit).
  void publish_prompt_blocks(Sequence& s, int64_t chunk_rows) {
    const int64_t bt = options_.kv_block_tokens;
    const bool whole_chunk = chunk_rows == options_.prefill_chunk || s.reuse_unit == bt;
    if (!whole_chunk) return;
    for (int64_t b = s.published; (b + 1) * bt <= s.cached; ++b) {
      const std::span<const int32_t> tokens(s.tokens.data() + b * bt, size_t(bt));
      s.last_hash = BlockManager::chain_hash(s.last_hash, s.settings, tokens);
      block_manager_->publish(s.blocks[size_t(b)], s.last_hash, tokens);
      s.published = b + 1;
    }
  }

  // Ends a running sequence: its blocks back and the counts published, then its last event (the token
  // that ended it, or one with token -1).
  void finish(uint64_t id, FinishReason reason, const std::string& error, std::optional<TokenEvent> last = {}) {
    auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s->pending.id == id; });
    if (it == running_.end()) return;
    std::unique_ptr<Sequence> s = std::move(*it);
    running_.erase(it);
    block_manager_->release(s->blocks);
    publish_counts();
    if (last) {
      count_finished();
      deliver(*s, *last);
    } else {
      notify_finish(*s, reason, error);
    }
  }

  // The last event of a sequence that no token ended; counted first, so that the stats a client reads
  // after it include it.
  void notify_finish(Sequence& s, FinishReason reason, const std::string& error) {
    TokenEvent e = event(s, -1);
    e.prompt_tokens = int64_t(s.pending.request.prompt.size());
    e.finished = true;
    e.reason = reason;
    e.error = error;
    count_finished();
    deliver(s, e);
  }

  void count_finished() {
    std::lock_guard lock(mutex_);
    ++stats_.requests_finished;
  }

  void publish_counts() {
    std::lock_guard lock(mutex_);
    stats_.running = int64_t(running_.size());
    stats_.kv_blocks_total = block_manager_->total();
    stats_.kv_blocks_used = block_manager_->used();
  }

  // A finished prefill's per-layer anchor gaps into the engine's running means (the /metrics gauges).
  void record_anchor_gaps(const Sequence& s) {
    std::lock_guard lock(mutex_);
    for (size_t l = 0; l < s.gaps.size(); ++l) {
      const model::LayerAnchorGap& g = s.gaps[l];
      if (g.samples == 0) continue;
      if (stats_.anchor_gap_mean.size() < s.gaps.size()) {
        stats_.anchor_gap_mean.resize(s.gaps.size());
        stats_.anchor_gap_max.resize(s.gaps.size());
        stats_.anchor_gap_samples.resize(s.gaps.size());
      }
      int64_t& n = stats_.anchor_gap_samples[l];
      stats_.anchor_gap_mean[l] = (stats_.anchor_gap_mean[l] * double(n) + g.mean * double(g.samples)) / double(n + g.samples);
      stats_.anchor_gap_max[l] = std::max(stats_.anchor_gap_max[l], g.max_head_mean);
      n += g.samples;
    }
  }

  void record_step(double seconds, int64_t prefill_tokens, int64_t decode_tokens) {
    constexpr double kWindowSeconds = 10;
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    recent_.push_back({now, seconds, prefill_tokens, decode_tokens});
    while (std::chrono::duration<double>(now - recent_.front().end).count() > kWindowSeconds) recent_.pop_front();
    double busy = 0;
    int64_t prefill = 0, decode = 0;
    for (const StepRecord& r : recent_) {
      busy += r.seconds;
      prefill += r.prefill_tokens;
      decode += r.decode_tokens;
    }
    stats_.prefill_tokens_per_s = busy > 0 ? double(prefill) / busy : 0;
    stats_.decode_tokens_per_s = busy > 0 ? double(decode) / busy : 0;
    stats_.running = int64_t(running_.size());
    stats_.peak_running = std::max(stats_.peak_running, stats_.running);
    stats_.kv_blocks_total = block_manager_->total();
    stats_.kv_blocks_used = block_manager_->used();
  }
};

}  // namespace

std::unique_ptr<Engine> Engine::create(std::shared_ptr<const model::Model> model, EngineOptions options) {
  DATTN_CHECK(model != nullptr, "Engine::create: no model");
  return std::make_unique<BatchEngine>(std::move(model), std::move(options));
}

}  // namespace dattn::server
