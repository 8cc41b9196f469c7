// Parsing and validation of /v1/chat/completions and /v1/completions bodies.
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/server/api.h"

namespace dattn::server {
namespace {

using nlohmann::json;

std::string type_name(const json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();
}

[[noreturn]] void bad_type(std::string_view field, std::string_view expected, const json& value) {
  throw ApiError(400, fmt::format("'{}' must be {}, got {}", field, expected, type_name(value)), std::string(field),
                 "invalid_type");
}

[[noreturn]] void bad_value(std::string_view field, std::string message) {
  throw ApiError(400, fmt::format("'{}' {}", field, message), std::string(field), "invalid_value");
}

// The field when present and not null (OpenAI clients send null for "not given").
const json* field(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

int64_t integer_field(const json& value, std::string_view name) {
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      bad_value(name, "is too large");
    }
    return value.get<int64_t>();
  }
  // 16.0 is an integer to JSON's eyes and to Python clients; 16.5 is not.
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) return int64_t(d);
  }
  bad_type(name, "an integer", value);
}

double number_field(const json& value, std::string_view name) {
  if (!value.is_number()) bad_type(name, "a number", value);
  return value.get<double>();
}

bool bool_field(const json& value, std::string_view name) {
  if (!value.is_boolean()) bad_type(name, "a boolean", value);
  return value.get<bool>();
}

std::string message_content(const json& content, std::string_view name) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad_type(name, "a string or an array of content parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string part_name = fmt::format("{}[{}]", name, i);
    if (!part.is_object()) bad_type(part_name, "an object", part);
    const json* type = field(part, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      bad_value(part_name + ".type", "must be \"text\" (this server reads text only)");
    }
    const json* part_text = field(part, "text");
    if (!part_text || !part_text->is_string()) bad_type(part_name + ".text", "a string", part_text ? *part_text : json());
    text += part_text->get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* messages = field(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!messages->is_array()) bad_type("messages", "an array", *messages);
  if (messages->empty()) bad_value("messages", "must hold at least one message");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    const std::string name = fmt::format("messages[{}]", i);
    if (!message.is_object()) bad_type(name, "an object", message);
    const json* role = field(message, "role");
    if (!role || !role->is_string()) bad_type(name + ".role", "a string", role ? *role : json());
    std::string role_text = role->get<std::string>();
    if (role_text == "developer") role_text = "system";  // OpenAI's newer name for the system role
    if (role_text != "system" && role_text != "user" && role_text != "assistant") {
      bad_value(name + ".role", fmt::format("must be system, user or assistant, got '{}'", role_text));
    }
    const json* content = field(message, "content");
    if (!content && role_text != "assistant") {
      throw ApiError(400, fmt::format("'{}.content' is required", name), name + ".content", "missing_required_parameter");
    }
    out.push_back({role_text, content ? message_content(*content, name + ".content") : std::string()});
  }
  return out;
}

std::vector<int32_t> parse_token_ids(const json& ids, int32_t vocab_size) {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string name = fmt::format("prompt[{}]", i);
    const int64_t id = integer_field(ids[i], name);
    if (id < 0 || id >= vocab_size) bad_value(name, fmt::format("is token id {}, outside the vocabulary [0, {})", id, vocab_size));
    out.push_back(int32_t(id));
  }
  return out;
}

// A string, an array of one string, an array of ids or an array of one array of ids (OpenAI's batch forms
// with more than one prompt are refused: this server returns one choice).
void parse_prompt(const json& body, const ApiLimits& limits, CompletionRequest& request) {
  const json* prompt = field(body, "prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  const json* p = prompt;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  else if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    bad_value("prompt", fmt::format("holds {} prompts; this server takes one per request", p->size()));
  }
  if (p->is_string()) {
    request.prompt_text = p->get<std::string>();
    return;
  }
  if (!p->is_array()) bad_type("prompt", "a string or an array of token ids", *prompt);
  if (p->empty()) bad_value("prompt", "is an empty list of token ids");
  request.prompt_ids = parse_token_ids(*p, limits.vocab_size);
}

std::vector<std::string> parse_stop(const json& body) {
  const json* stop = field(body, "stop");
  if (!stop) return {};
  std::vector<std::string> out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    if (stop->size() > 4) bad_value("stop", fmt::format("holds {} strings, at most 4 are allowed", stop->size()));
    for (size_t i = 0; i < stop->size(); ++i) {
      if (!(*stop)[i].is_string()) bad_type(fmt::format("stop[{}]", i), "a string", (*stop)[i]);
      out.push_back((*stop)[i].get<std::string>());
    }
  } else {
    bad_type("stop", "a string or an array of strings", *stop);
  }
  for (const std::string& s : out) {
    if (s.empty()) bad_value("stop", "holds an empty string");
  }
  return out;
}

void parse_sampling(const json& body, const ApiLimits& limits, CompletionRequest& request) {
  const json* temperature = field(body, "temperature");
  const json* top_p = field(body, "top_p");
  const json* top_k = field(body, "top_k");
  // Unset fields come from the model's generation defaults, like vLLM does.
  request.sampling = limits.default_sampling;
  if (temperature) {
    const double t = number_field(*temperature, "temperature");
    if (!(t >= 0 && t <= 2)) bad_value("temperature", fmt::format("must be in [0, 2], got {}", t));
    request.sampling.temperature = t;
  }
  if (top_p) {
    const double p = number_field(*top_p, "top_p");
    if (!(p > 0 && p <= 1)) bad_value("top_p", fmt::format("must be in (0, 1], got {}", p));
    request.sampling.top_p = p;
  }
  if (top_k) {
    const int64_t k = integer_field(*top_k, "top_k");
    if (k < -1) bad_value("top_k", fmt::format("must be >= 0 (or -1 for all tokens), got {}", k));
    request.sampling.top_k = k < 0 ? 0 : k;
  }
  if (const json* seed = field(body, "seed")) {
    request.sampling.seed = uint64_t(integer_field(*seed, "seed"));
    request.seeded = true;
  }
}

void parse_attention(const json& body, const ApiLimits& limits, CompletionRequest& request) {
  const json* attention = field(body, "attention");
  if (!attention) return;
  if (!attention->is_object()) bad_type("attention", "an object", *attention);
  if (!limits.allow_attention_override) {
    throw ApiError(400, "'attention' overrides are disabled on this server", "attention", "invalid_value");
  }
  AttentionParams p = limits.default_attention;
  if (const json* mode = field(*attention, "mode")) {
    if (!mode->is_string()) bad_type("attention.mode", "a string", *mode);
    try {
      p.mode = parse_mode(mode->get<std::string>());
    } catch (const Error& e) {
      bad_value("attention.mode", e.what());
    }
  }
  auto bounded = [&](const char* name, int64_t& target, int64_t lo, int64_t hi) {
    if (const json* v = field(*attention, name)) {
      const int64_t x = integer_field(*v, fmt::format("attention.{}", name));
      if (x < lo || x > hi) bad_value(fmt::format("attention.{}", name), fmt::format("must be in [{}, {}], got {}", lo, hi, x));
      target = x;
    }
  };
  bounded("window", p.window, 1, limits.max_context);
  bounded("sink", p.sink, 0, limits.max_context);
  bounded("gamma", p.gamma, 1, limits.max_gamma);
  request.attention = p;
}

}  // namespace

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_, std::string type_)
    : std::runtime_error(std::move(message)),
      status(status_),
      param(std::move(param_)),
      code(std::move(code_)),
      type(std::move(type_)) {}

CompletionRequest parse_completion_request(std::string_view body_text, Endpoint endpoint, const ApiLimits& limits) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()), "", "invalid_json");
  }
  if (!body.is_object()) bad_type("body", "a JSON object", body);

  const json* model = field(body, "model");
  if (!model) throw ApiError(400, "'model' is required", "model", "missing_required_parameter");
  if (!model->is_string()) bad_type("model", "a string", *model);
  if (model->get<std::string>() != limits.model_id) {
    throw ApiError(404, fmt::format("the model '{}' does not exist; this server serves '{}'", model->get<std::string>(),
                                    limits.model_id),
                   "model", "model_not_found");
  }

  CompletionRequest request;
  request.endpoint = endpoint;
  if (endpoint == Endpoint::chat) {
    request.messages = parse_messages(body);
  } else {
    parse_prompt(body, limits, request);
  }

  if (const json* n = field(body, "n"); n && integer_field(*n, "n") != 1) {
    bad_value("n", fmt::format("must be 1 (this server returns one choice), got {}", n->dump()));
  }
  // max_completion_tokens is the chat API's newer name of max_tokens.
  const json* max_tokens = field(body, "max_tokens");
  if (endpoint == Endpoint::chat && !max_tokens) max_tokens = field(body, "max_completion_tokens");
  const char* max_name = max_tokens == field(body, "max_tokens") ? "max_tokens" : "max_completion_tokens";
  request.max_tokens = endpoint == Endpoint::chat ? limits.default_max_tokens : 16;
  if (max_tokens) {
    const int64_t m = integer_field(*max_tokens, max_name);
    if (m < 1 || m > limits.max_context) {
      bad_value(max_name, fmt::format("must be in [1, {}] (the context), got {}", limits.max_context, m));
    }
    request.max_tokens = m;
  }
  request.max_tokens = std::min(request.max_tokens, limits.max_context);
  parse_sampling(body, limits, request);
  request.stop = parse_stop(body);
  // Load generators (vLLM's benchmark_serving, ours) fix the completion length with this vLLM extension.
  if (const json* ignore_eos = field(body, "ignore_eos")) request.ignore_eos = bool_field(*ignore_eos, "ignore_eos");
  if (const json* stream = field(body, "stream")) request.stream = bool_field(*stream, "stream");
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) bad_type("stream_options", "an object", *options);
    if (const json* usage = field(*options, "include_usage")) {
      request.include_usage = bool_field(*usage, "stream_options.include_usage");
    }
  }
  parse_attention(body, limits, request);
  return request;
}

void check_prompt_length(int64_t prompt_tokens, const ApiLimits& limits, std::string_view param) {
  if (prompt_tokens > limits.max_context) {
    throw ApiError(400, fmt::format("the prompt has {} tokens, more than this server's context of {} tokens",
                                    prompt_tokens, limits.max_context),
                   std::string(param), "context_length_exceeded");
  }
  if (prompt_tokens == 0) {
    throw ApiError(400, "the prompt encodes to no tokens", std::string(param), "invalid_value");
  }
}

}  // namespace dattn::server
