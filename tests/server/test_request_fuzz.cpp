// Randomised request bodies (fixed seed, bounded time): mutated valid bodies and random JSON values in
// every field. Parsing may only succeed with values inside the limits or throw ApiError with a 4xx status.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include <nlohmann/json.hpp>

#include "dattn/server/api.h"

namespace dattn::server {
namespace {

using nlohmann::json;

constexpr auto kTimeBudget = std::chrono::seconds(3);
constexpr int kCases = 20000;

json random_value(std::mt19937& rng, int depth = 0) {
  switch (rng() % 12) {
    case 0: return nullptr;
    case 1: return int64_t(rng() % 5) - 2;
    case 2: return int64_t(rng());
    case 3: return (rng() % 2 ? 1 : -1) * 1e300;
    case 4: return double(rng() % 1000) / 100.0;
    case 5: return bool(rng() % 2);
    case 6: return std::string(rng() % 4, "ab\n\xC3\xA9"[rng() % 5]);
    case 7: return "tiny";
    case 8: return uint64_t(-1);
    case 9: {
      if (depth > 2) return json::array();
      json a = json::array();
      for (int i = 0, n = int(rng() % 4); i < n; ++i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      if (depth > 2) return json::object();
      json o = json::object();
      for (const char* key : {"role", "content", "type", "text", "include_usage", "mode", "window", "gamma"}) {
        if (rng() % 3 == 0) o[key] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

std::string mutate(std::string text, std::mt19937& rng) {
  for (int e = 0, edits = 1 + int(rng() % 4); e < edits && !text.empty(); ++e) {
    const size_t pos = rng() % text.size();
    switch (rng() % 4) {
      case 0: text[pos] = char(rng()); break;
      case 1: text[pos] = "{}[]\":,0-9e\\ "[rng() % 13]; break;
      case 2: text.erase(pos, 1 + rng() % 8); break;
      default: text.insert(pos, text.substr(rng() % text.size(), 1 + rng() % 16)); break;
    }
  }
  return text;
}

TEST(ServerRequestFuzz, ParserNeverCrashesOrAcceptsOutOfRange) {
  ApiLimits limits;
  limits.model_id = "tiny";
  limits.max_context = 512;
  limits.vocab_size = 100;
  limits.default_attention.window = 8;  // within the context, like every value a request may set
  limits.default_attention.sink = 2;
  const json valid = json::parse(R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"prompt":[1,2],
    "max_tokens":5,"temperature":0.5,"top_p":0.9,"top_k":3,"seed":1,"stop":["x"],"stream":true,
    "stream_options":{"include_usage":true},"n":1,"attention":{"mode":"delta","window":8,"sink":2,"gamma":4}})");
  std::mt19937 rng(12345);
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0, cases = 0;
  for (; cases < kCases && std::chrono::steady_clock::now() - start < kTimeBudget; ++cases) {
    std::string body;
    if (rng() % 2) {
      json j = valid;
      for (auto& [key, value] : j.items()) {
        if (rng() % 4 == 0) value = random_value(rng);
      }
      body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      body = mutate(valid.dump(), rng);
    }
    const Endpoint endpoint = rng() % 2 ? Endpoint::chat : Endpoint::completion;
    try {
      const CompletionRequest r = parse_completion_request(body, endpoint, limits);
      ++accepted;
      ASSERT_GE(r.max_tokens, 1);
      ASSERT_LE(r.max_tokens, limits.max_context);
      ASSERT_TRUE(r.sampling.temperature >= 0 && r.sampling.temperature <= 2);
      ASSERT_TRUE(r.sampling.top_p > 0 && r.sampling.top_p <= 1);
      ASSERT_GE(r.sampling.top_k, 0);
      if (endpoint == Endpoint::chat) {
        ASSERT_FALSE(r.messages.empty());
      }
      if (r.prompt_ids) {
        for (int32_t id : *r.prompt_ids) ASSERT_TRUE(id >= 0 && id < limits.vocab_size);
      }
      if (r.attention) {
        ASSERT_TRUE(r.attention->window >= 1 && r.attention->window <= limits.max_context);
        ASSERT_TRUE(r.attention->gamma >= 1 && r.attention->gamma <= limits.max_gamma);
        ASSERT_TRUE(r.attention->sink >= 0 && r.attention->sink <= limits.max_context);
      }
    } catch (const ApiError& e) {
      ASSERT_TRUE(e.status >= 400 && e.status < 500) << e.status << " " << e.what();
      ASSERT_FALSE(std::string(e.what()).empty());
    }
  }
  EXPECT_GT(accepted, 0) << "the mutations never left a valid body: the test checks nothing";
  EXPECT_GT(cases, 500);
}

}  // namespace
}  // namespace dattn::server
