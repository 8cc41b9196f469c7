// Request parsing and validation, response shapes and SSE framing of the OpenAI-shaped API.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dattn/server/api.h"

namespace dattn::server {
namespace {

using nlohmann::json;

ApiLimits limits() {
  ApiLimits l;
  l.model_id = "tiny";
  l.max_context = 1000;
  l.vocab_size = 2048;
  l.default_max_tokens = 50;
  return l;
}

CompletionRequest chat(const json& body) { return parse_completion_request(body.dump(), Endpoint::chat, limits()); }
CompletionRequest text(const json& body) { return parse_completion_request(body.dump(), Endpoint::completion, limits()); }

json chat_body() { return {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}; }

// The error a body gets: status and param, with the param named in the message.
std::pair<int, std::string> refusal(const std::string& body, Endpoint endpoint = Endpoint::chat) {
  try {
    parse_completion_request(body, endpoint, limits());
  } catch (const ApiError& e) {
    if (!e.param.empty() && e.param != "body") {
      EXPECT_NE(std::string(e.what()).find(e.param), std::string::npos) << e.what();
    }
    return {e.status, e.param};
  }
  return {0, ""};
}

TEST(ServerApi, ChatDefaultsAndFields) {
  CompletionRequest r = chat(chat_body());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.max_tokens, 50);  // the server's default for chat
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_FALSE(r.ignore_eos);

  json body = chat_body();
  body["max_tokens"] = 7;
  body["temperature"] = 0.5;
  body["top_p"] = 0.9;
  body["top_k"] = 20;
  body["seed"] = 42;
  body["stop"] = "\n";
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body["n"] = 1;
  body["presence_penalty"] = 0.0;  // unknown to this server: ignored
  body["user"] = "someone";
  body["ignore_eos"] = true;
  r = chat(body);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.5);
  EXPECT_EQ(r.sampling.top_p, 0.9);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
}

TEST(ServerApi, ChatContentPartsAndRoles) {
  json body = chat_body();
  body["messages"] = {{{"role", "developer"}, {"content", "be brief"}},
                      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
                      {{"role", "assistant"}, {"content", nullptr}}};
  CompletionRequest r = chat(body);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].content, "");
  body["max_completion_tokens"] = 9;
  EXPECT_EQ(chat(body).max_tokens, 9);
}

TEST(ServerApi, CompletionPromptForms) {
  EXPECT_EQ(text({{"model", "tiny"}, {"prompt", "abc"}}).prompt_text, "abc");
  EXPECT_EQ(text({{"model", "tiny"}, {"prompt", {"abc"}}}).prompt_text, "abc");
  EXPECT_EQ(text({{"model", "tiny"}, {"prompt", {1, 2, 3}}}).prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(text({{"model", "tiny"}, {"prompt", {{5, 6}}}}).prompt_ids, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(text({{"model", "tiny"}, {"prompt", "x"}}).max_tokens, 16);  // OpenAI's default for completions
}

TEST(ServerApi, AttentionOverrideWithinLimits) {
  json body = chat_body();
  body["attention"] = {{"mode", "delta"}, {"window", 64}, {"sink", 8}, {"gamma", 16}};
  CompletionRequest r = chat(body);
  ASSERT_TRUE(r.attention);
  EXPECT_EQ(r.attention->mode, AttentionMode::delta);
  EXPECT_EQ(r.attention->window, 64);
  EXPECT_EQ(r.attention->sink, 8);
  EXPECT_EQ(r.attention->gamma, 16);
  EXPECT_FALSE(chat(chat_body()).attention);

  body["attention"] = {{"window", 100000}};
  EXPECT_EQ(refusal(body.dump()), std::make_pair(400, std::string("attention.window")));
  body["attention"] = {{"mode", "fast"}};
  EXPECT_EQ(refusal(body.dump()), std::make_pair(400, std::string("attention.mode")));
  body["attention"] = {{"gamma", 0}};
  EXPECT_EQ(refusal(body.dump()), std::make_pair(400, std::string("attention.gamma")));
  ApiLimits closed = limits();
  closed.allow_attention_override = false;
  body["attention"] = {{"mode", "dense"}};
  EXPECT_THROW(parse_completion_request(body.dump(), Endpoint::chat, closed), ApiError);
}

TEST(ServerApi, BadRequestsNameTheField) {
  auto with = [](const char* key, json value) {
    json body = chat_body();
    body[key] = std::move(value);
    return body.dump();
  };
  using P = std::pair<int, std::string>;
  EXPECT_EQ(refusal("{not json").first, 400);
  EXPECT_EQ(refusal("[1,2]").first, 400);
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":"x"}]})"), P(400, "model"));
  EXPECT_EQ(refusal(with("model", "gpt-4")), P(404, "model"));
  EXPECT_EQ(refusal(with("model", 3)), P(400, "model"));
  EXPECT_EQ(refusal(with("messages", json::array())), P(400, "messages"));
  EXPECT_EQ(refusal(with("messages", "hi")), P(400, "messages"));
  EXPECT_EQ(refusal(with("messages", {{{"role", "tool"}, {"content", "x"}}})), P(400, "messages[0].role"));
  EXPECT_EQ(refusal(with("messages", {{{"role", "user"}}})), P(400, "messages[0].content"));
  EXPECT_EQ(refusal(with("messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}})),
            P(400, "messages[0].content[0].type"));
  EXPECT_EQ(refusal(with("max_tokens", 0)), P(400, "max_tokens"));
  EXPECT_EQ(refusal(with("max_tokens", 1001)), P(400, "max_tokens"));
  EXPECT_EQ(refusal(with("max_tokens", "10")), P(400, "max_tokens"));
  EXPECT_EQ(refusal(with("max_tokens", 2.5)), P(400, "max_tokens"));
  EXPECT_EQ(refusal(with("temperature", 3)), P(400, "temperature"));
  EXPECT_EQ(refusal(with("temperature", "hot")), P(400, "temperature"));
  EXPECT_EQ(refusal(with("top_p", 0)), P(400, "top_p"));
  EXPECT_EQ(refusal(with("top_k", -2)), P(400, "top_k"));
  EXPECT_EQ(refusal(with("n", 2)), P(400, "n"));
  EXPECT_EQ(refusal(with("stop", {"a", "b", "c", "d", "e"})), P(400, "stop"));
  EXPECT_EQ(refusal(with("stop", {1})), P(400, "stop[0]"));
  EXPECT_EQ(refusal(with("stop", "")), P(400, "stop"));
  EXPECT_EQ(refusal(with("stream", "yes")), P(400, "stream"));
  EXPECT_EQ(refusal(with("stream_options", 1)), P(400, "stream_options"));
  EXPECT_EQ(refusal(with("seed", 1e300)), P(400, "seed"));
  EXPECT_EQ(refusal(with("ignore_eos", 1)), P(400, "ignore_eos"));

  EXPECT_EQ(refusal(R"({"model":"tiny"})", Endpoint::completion), P(400, "prompt"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":[]})", Endpoint::completion), P(400, "prompt"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":["a","b"]})", Endpoint::completion), P(400, "prompt"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":[1,2048]})", Endpoint::completion), P(400, "prompt[1]"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":[1,-1]})", Endpoint::completion), P(400, "prompt[1]"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":[1,"a"]})", Endpoint::completion), P(400, "prompt[1]"));
  EXPECT_EQ(refusal(R"({"model":"tiny","prompt":{"a":1}})", Endpoint::completion), P(400, "prompt"));
}

TEST(ServerApi, NullMeansNotGiven) {
  json body = chat_body();
  body["max_tokens"] = nullptr;
  body["temperature"] = nullptr;
  body["stop"] = nullptr;
  body["stream_options"] = nullptr;
  EXPECT_EQ(chat(body).max_tokens, 50);
}

TEST(ServerApi, PromptLength) {
  EXPECT_NO_THROW(check_prompt_length(1000, limits(), "prompt"));
  try {
    check_prompt_length(1001, limits(), "messages");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages");
    EXPECT_EQ(e.code, "context_length_exceeded");
    EXPECT_NE(std::string(e.what()).find("1001"), std::string::npos);
  }
  EXPECT_THROW(check_prompt_length(0, limits(), "prompt"), ApiError);
}

TEST(ServerApi, ErrorBodyShape) {
  const json e = json::parse(error_body(ApiError(400, "'n' must be 1", "n", "invalid_value")));
  EXPECT_EQ(e["error"]["message"], "'n' must be 1");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "n");
  EXPECT_EQ(e["error"]["code"], "invalid_value");
  EXPECT_TRUE(json::parse(error_body(ApiError(500, "x")))["error"]["param"].is_null());
}

json event_json(const std::string& event) {
  EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_EQ(event.find('\n'), event.size() - 2) << "one data line per event";
  return json::parse(event.substr(6));
}

TEST(ServerApi, SseFraming) {
  const ResponseIds ids{"chatcmpl-1", 123, "tiny"};
  json first = event_json(chunk_event(Endpoint::chat, ids, "", "", true));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  // Text with newlines, quotes and multi-byte characters stays one data line.
  json piece = event_json(chunk_event(Endpoint::chat, ids, "a\nb\"\xC3\xA9\r\n\n", "", false));
  EXPECT_EQ(piece["choices"][0]["delta"]["content"], "a\nb\"\xC3\xA9\r\n\n");
  EXPECT_FALSE(piece["choices"][0]["delta"].contains("role"));
  json last = event_json(chunk_event(Endpoint::chat, ids, "", "length", false));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  json usage = event_json(usage_event(Endpoint::chat, ids, {3, 4}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
  json text = event_json(chunk_event(Endpoint::completion, {"cmpl-1", 1, "tiny"}, "xy", "", false));
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "xy");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // Invalid UTF-8 never makes the framing throw.
  EXPECT_NO_THROW(event_json(chunk_event(Endpoint::completion, ids, "\xFF\xFE", "", false)));
}

TEST(ServerApi, CompletionBodies) {
  const ResponseIds ids{"chatcmpl-9", 5, "tiny"};
  json chat_response = json::parse(completion_body(Endpoint::chat, ids, "hello", "stop", {10, 2}));
  EXPECT_EQ(chat_response["object"], "chat.completion");
  EXPECT_EQ(chat_response["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat_response["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(chat_response["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(chat_response["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(chat_response["usage"]["completion_tokens"], 2);
  json text_response = json::parse(completion_body(Endpoint::completion, ids, "x", "length", {1, 1}));
  EXPECT_EQ(text_response["object"], "text_completion");
  EXPECT_EQ(text_response["choices"][0]["text"], "x");
}

}  // namespace
}  // namespace dattn::server
