// Response bodies, streamed chunks and errors in OpenAI's shapes.
#include <nlohmann/json.hpp>

#include "dattn/server/api.h"

namespace dattn::server {
namespace {

using nlohmann::json;

// Text cut by a stop string is valid UTF-8, but a model can still produce U+FFFD-worthy bytes: never throw.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

json null_or(std::string_view text) { return text.empty() ? json(nullptr) : json(std::string(text)); }

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

json envelope(Endpoint endpoint, const ResponseIds& ids, bool chunk) {
  const char* object = endpoint == Endpoint::chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                  : "text_completion";
  return {{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model}};
}

}  // namespace

std::string error_body(const ApiError& error) {
  return dump({{"error",
                {{"message", error.what()},
                 {"type", error.type},
                 {"param", null_or(error.param)},
                 {"code", null_or(error.code)}}}});
}

std::string completion_body(Endpoint endpoint, const ResponseIds& ids, std::string_view text,
                            std::string_view finish_reason, const Usage& usage) {
  json body = envelope(endpoint, ids, false);
  json choice = {{"index", 0}, {"finish_reason", std::string(finish_reason)}, {"logprobs", nullptr}};
  if (endpoint == Endpoint::chat) {
    choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}};
  } else {
    choice["text"] = std::string(text);
  }
  body["choices"] = json::array({choice});
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string chunk_event(Endpoint endpoint, const ResponseIds& ids, std::string_view text,
                        std::string_view finish_reason, bool first) {
  json body = envelope(endpoint, ids, true);
  json choice = {{"index", 0}, {"finish_reason", null_or(finish_reason)}, {"logprobs", nullptr}};
  if (endpoint == Endpoint::chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = std::string(text);
    choice["delta"] = delta;
  } else {
    choice["text"] = std::string(text);
  }
  body["choices"] = json::array({choice});
  return sse_data(dump(body));
}

std::string usage_event(Endpoint endpoint, const ResponseIds& ids, const Usage& usage) {
  json body = envelope(endpoint, ids, true);
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return sse_data(dump(body));
}

std::string error_event(const ApiError& error) { return sse_data(error_body(error)); }

std::string sse_data(std::string_view json_text) {
  // JSON text from dump() has no raw newlines, so one data: line carries it whole.
  std::string out;
  out.reserve(json_text.size() + 8);
  out += "data: ";
  out += json_text;
  out += "\n\n";
  return out;
}

}  // namespace dattn::server
