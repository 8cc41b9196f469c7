// The OpenAI-shaped HTTP API of `dattn serve`: request parsing and validation, response bodies, SSE framing
// and error JSON. Pure functions of JSON and strings, no sockets, so they are unit-tested and fuzzed alone.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/attn/params.h"
#include "dattn/model/sampler.h"
#include "dattn/model/tokenizer.h"

namespace dattn::server {

// A request the server refuses: HTTP status and OpenAI's error fields ({"error":{message,type,param,code}}).
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {},
           std::string type = "invalid_request_error");
  int status;
  std::string param, code, type;
};
std::string error_body(const ApiError& error);  // the JSON text of the error response

// What requests may ask for; the server fills it from its flags and the model.
struct ApiLimits {
  std::string model_id;
  int64_t max_context = 4096;         // prompt + completion tokens
  int32_t vocab_size = 0;             // token-id prompts must lie in [0, vocab_size)
  int64_t default_max_tokens = 256;   // when a request names none (chat; completions default to 16 as OpenAI)
  model::SamplingParams default_sampling;  // when a request names no temperature/top_p/top_k
  AttentionParams default_attention;  // a request's "attention" object overrides its fields
  bool allow_attention_override = true;
  int64_t max_gamma = 4096;           // window and sink are bounded by max_context
};

enum class Endpoint { chat, completion };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::completion;
  std::vector<ChatMessage> messages;       // chat
  std::string prompt_text;                 // completion with a text prompt
  std::optional<std::vector<int32_t>> prompt_ids;  // completion with a token-id prompt
  int64_t max_tokens = 16;
  model::SamplingParams sampling;
  bool seeded = false;                     // the request named a seed
  std::vector<std::string> stop;
  bool ignore_eos = false;                 // vLLM's extension: end tokens do not end the completion
  bool stream = false, include_usage = false;
  std::optional<AttentionParams> attention;  // set only when the request overrides something
};

// Parses and validates a request body. Unknown fields are ignored (OpenAI clients send many); a bad value
// throws ApiError (400, or 404 for an unknown model) naming the field.
CompletionRequest parse_completion_request(std::string_view body, Endpoint endpoint, const ApiLimits& limits);
// The prompt length check that needs the tokenized prompt: 400 context_length_exceeded naming `param`.
void check_prompt_length(int64_t prompt_tokens, const ApiLimits& limits, std::string_view param);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// The fields every response and chunk of one request share.
struct ResponseIds {
  std::string id;       // chatcmpl-... / cmpl-...
  int64_t created = 0;  // unix seconds
  std::string model;
};

// The full (non-streaming) response body.
std::string completion_body(Endpoint endpoint, const ResponseIds& ids, std::string_view text,
                            std::string_view finish_reason, const Usage& usage);
// One streamed chunk as an SSE event. text: new text (chat's first chunk carries the role); finish_reason
// empty while the choice runs.
std::string chunk_event(Endpoint endpoint, const ResponseIds& ids, std::string_view text,
                        std::string_view finish_reason, bool first);
std::string usage_event(Endpoint endpoint, const ResponseIds& ids, const Usage& usage);  // choices: []
std::string error_event(const ApiError& error);
std::string sse_data(std::string_view json_text);  // "data: <json>\n\n"
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
inline constexpr std::string_view kSseHeartbeat = ": keep-alive\n\n";  // an SSE comment; clients skip it

}  // namespace dattn::server
