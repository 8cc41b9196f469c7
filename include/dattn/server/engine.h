// The serving engine: many generation requests at once over one loaded model. Requests are token ids
// (the caller applies chat templates and tokenizes); tokens come back through a callback on the engine's
// own scheduling thread. Library `dattn_server_engine`; the HTTP layer (`dattn serve`) sits on top.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dattn/attn/params.h"
#include "dattn/model/sampler.h"   // dattn::model::SamplingParams
#include "dattn/model/session.h"   // dattn::model::AttentionPlan

namespace dattn::server {

struct EngineOptions {
  std::string device = "cpu";          // "cpu" | "cuda"
  int64_t max_batch = 16;              // sequences decoded together in one step
  double kv_memory_gib = 1.0;          // size of the paged KV pool
  int64_t kv_block_tokens = 16;        // tokens per KV block
  int64_t max_context = 0;             // 0: the model's max_position_embeddings
  int64_t prefill_chunk = model::kDefaultPrefillChunk;  // rows per prefill step (chunked prefill, continued with Δ)
  int64_t max_queue = 64;              // waiting requests beyond the running ones; more -> QueueFull
  model::AttentionPlan attention;      // server default; a request may override mode/window/sink/gamma
  int num_threads = 0;
  bool profile_decode = false;         // per-stage device time of decode-only steps (EngineStats, cuda)
};

enum class FinishReason { none, stop_token, length, context, cancelled, error };

struct Request {
  std::vector<int32_t> prompt;                  // token ids (chat template already applied by the caller)
  int64_t max_new_tokens = 16;
  model::SamplingParams sampling;               // temperature, top_k, top_p, seed, greedy
  std::vector<int32_t> stop_ids;                // end-of-sequence ids (not emitted)
  std::optional<AttentionParams> attention;     // per-request override (validated by the caller)
};

// Delivered on the engine's thread, in order, for each generated token; the last event has finished=true
// (token may be -1 then). Return false to cancel the sequence (client gone, stop string matched): the
// engine frees its KV blocks before the next step.
struct TokenEvent {
  int32_t token = -1;
  bool finished = false;
  FinishReason reason = FinishReason::none;
  std::string error;                 // set when reason == error
  int64_t prompt_tokens = 0;         // filled on every event
  int64_t completion_tokens = 0;
  double time_to_first_token_ms = 0; // filled once the first token exists
};
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct QueueFull : std::runtime_error { using std::runtime_error::runtime_error; };

struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0;
  int64_t requests_finished = 0;
  int64_t prompt_tokens_total = 0, generated_tokens_total = 0, prefix_reused_tokens_total = 0;
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;  // recent averages
  int64_t peak_running = 0;  // the most sequences one forward step has served
  // Steps that only decoded (no prefill rows): how many, their wall time (forward pass, logits to the host,
  // sampling, token callbacks) and, with EngineOptions::profile_decode, their device time per stage (ms).
  int64_t decode_only_steps = 0;
  double decode_only_seconds = 0;
  std::vector<std::pair<std::string, double>> decode_stage_ms;
  // Per layer, over every finished delta prefill: the anchor gap ||dense(a) - sparse(a)|| / ||dense(a)||,
  // mean over (head, anchor) pairs and the largest head mean seen (empty until a delta prefill finished).
  std::vector<double> anchor_gap_mean, anchor_gap_max;
  std::vector<int64_t> anchor_gap_samples;
};

class Engine {
 public:
  // Loads nothing itself: takes the model already loaded (model::Model for cpu; the cuda path builds its
  // device weights from it). Starts the scheduling thread.
  static std::unique_ptr<Engine> create(std::shared_ptr<const model::Model> model, EngineOptions options);
  virtual ~Engine() = default;
  // Thread-safe. Throws QueueFull when the queue is full; dattn::Error for a request that can never run
  // (prompt longer than max_context, empty prompt, id outside the vocabulary). Returns the request's id.
  virtual uint64_t submit(Request request, TokenCallback on_event) = 0;
  virtual void cancel(uint64_t id) = 0;   // thread-safe; the sequence ends with reason cancelled
  virtual EngineStats stats() const = 0;  // thread-safe
  // Stops taking requests; cancel_running=false lets running and queued sequences finish, true ends them
  // with reason cancelled. Blocks until idle (called from a token callback it returns at once instead).
  virtual void shutdown(bool cancel_running) = 0;
  virtual const EngineOptions& options() const = 0;
};

}  // namespace dattn::server
