// The generation loop: prefill the prompt, then sample and decode until a stop token or the limit.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "dattn/model/sampler.h"
#include "dattn/model/session.h"

namespace dattn::model {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these (not passed to on_token)
  std::function<void(int64_t, int64_t)> on_prefill_progress;
  // Called with every generated token as soon as it is chosen; return false to stop.
  std::function<bool(int32_t)> on_token;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t decode_steps = 0;  // forward passes after the prefill (the last token needs none)
  double prefill_ms = 0;
  double decode_ms = 0;
  bool stopped_by_stop_token = false;
  bool stopped_by_context = false;
  double prefill_tokens_per_s() const { return prefill_ms > 0 ? prompt_tokens * 1000.0 / prefill_ms : 0; }
  double decode_tokens_per_s() const { return decode_ms > 0 ? decode_steps * 1000.0 / decode_ms : 0; }
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids, the stop token excluded
  GenerateStats stats;
};

// The ids that end generation: the config's eos_token_id(s) and the tokenizer's end tokens, each once,
// in that order.
std::vector<int32_t> merged_stop_ids(std::span<const int32_t> config_eos, std::span<const int32_t> tokenizer_eos);

// Continues the session's context with `prompt`. Throws dattn::Error when the prompt does not fit the
// session's context (the message gives both lengths); generation also ends when the context is full.
GenerateResult generate(InferenceSession& session, std::span<const int32_t> prompt, const GenerateOptions& options);

// Peak resident memory of this process in bytes (VmHWM), 0 when unknown.
uint64_t peak_resident_bytes();

}  // namespace dattn::model
