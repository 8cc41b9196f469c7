// The serving engine on the CPU: concurrent requests give what `generate` gives one at a time, and the
// queue, cancellation and validation behave as the interface says.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "dattn/core/error.h"
#include "dattn/model/generate.h"
#include "dattn/server/engine.h"
#include "model_fixtures.h"

namespace dattn::server {
namespace {

const char* kModel = "llama_linear_untied";

std::vector<int32_t> prompt_ids(int64_t n, int64_t vocab, int salt) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 37 + 11 + salt * 101) % vocab);
  return ids;
}

// Collects a request's events; wait() blocks until its last event.
struct Collector {
  std::mutex mutex;
  std::condition_variable done_cv;
  std::vector<int32_t> tokens;
  TokenEvent last;
  bool done = false;
  int64_t cancel_after = -1;  // return false from the callback after this many tokens

  TokenCallback callback() {
    return [this](const TokenEvent& e) {
      std::lock_guard lock(mutex);
      if (e.finished) {
        if (e.token >= 0) tokens.push_back(e.token);
        last = e;
        done = true;
        done_cv.notify_all();
        return true;
      }
      tokens.push_back(e.token);
      return cancel_after < 0 || int64_t(tokens.size()) < cancel_after;
    };
  }
  void wait() {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done_cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; })) << "request never finished";
  }
};

std::vector<int32_t> generate_alone(const std::shared_ptr<const model::Model>& model, const Request& r,
                                    const model::AttentionPlan& plan, int64_t chunk) {
  model::SessionOptions so;
  so.context = int64_t(r.prompt.size()) + r.max_new_tokens;
  so.chunk_size = chunk;
  so.attention = plan;
  model::Session session(model, so);
  model::GenerateOptions go;
  go.max_new_tokens = r.max_new_tokens;
  go.sampling = r.sampling;
  go.stop_ids = r.stop_ids;
  return model::generate(session, r.prompt, go).tokens;
}

EngineOptions small_options() {
  EngineOptions o;
  o.max_batch = 8;
  o.kv_memory_gib = 0.01;
  o.kv_block_tokens = 4;
  o.max_context = 256;
  o.prefill_chunk = 32;
  o.max_queue = 16;
  o.attention.params = {.mode = AttentionMode::delta, .window = 8, .sink = 4, .gamma = 4, .tail_min = 4};
  return o;
}

TEST(Engine, ConcurrentGreedyRequestsEqualGenerateOneAtATime) {
  auto model = test::load_fixture_model(kModel);
  const EngineOptions options = small_options();
  auto engine = Engine::create(model, options);
  const int64_t lengths[] = {5, 40, 17, 64, 1, 33, 90, 12, 50};
  std::vector<Request> requests;
  std::vector<std::unique_ptr<Collector>> collectors;
  for (size_t i = 0; i < std::size(lengths); ++i) {
    Request r;
    r.prompt = prompt_ids(lengths[i], model->config().vocab_size, int(i));
    r.max_new_tokens = 6 + int64_t(i);
    requests.push_back(r);
    collectors.push_back(std::make_unique<Collector>());
    engine->submit(r, collectors.back()->callback());
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    collectors[i]->wait();
    const auto expected = generate_alone(model, requests[i], options.attention, options.prefill_chunk);
    EXPECT_EQ(collectors[i]->tokens, expected) << "request " << i;
    EXPECT_EQ(collectors[i]->last.reason, FinishReason::length);
    EXPECT_EQ(collectors[i]->last.prompt_tokens, lengths[i]);
    EXPECT_EQ(collectors[i]->last.completion_tokens, int64_t(expected.size()));
  }
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.requests_finished, int64_t(requests.size()));
  EXPECT_EQ(s.kv_blocks_used, 0);
}

TEST(Engine, StopTokenEndsTheSequenceWithoutEmittingIt) {
  auto model = test::load_fixture_model(kModel);
  auto engine = Engine::create(model, small_options());
  Request r;
  r.prompt = prompt_ids(20, model->config().vocab_size, 3);
  r.max_new_tokens = 8;
  const auto free_run = generate_alone(model, r, small_options().attention, 32);
  ASSERT_GE(free_run.size(), 3u);
  r.stop_ids = {free_run[2]};
  Collector c;
  engine->submit(r, c.callback());
  c.wait();
  EXPECT_EQ(c.last.reason, FinishReason::stop_token);
  EXPECT_EQ(c.tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + 2));
}

TEST(Engine, CallbackReturningFalseCancels) {
  auto model = test::load_fixture_model(kModel);
  auto engine = Engine::create(model, small_options());
  Request r;
  r.prompt = prompt_ids(30, model->config().vocab_size, 1);
  r.max_new_tokens = 50;
  Collector c;
  c.cancel_after = 3;
  engine->submit(r, c.callback());
  c.wait();
  EXPECT_EQ(c.last.reason, FinishReason::cancelled);
  EXPECT_EQ(c.tokens.size(), 3u);
  engine->shutdown(false);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

TEST(Engine, BadRequestsAreErrorsNamingTheValue) {
  auto model = test::load_fixture_model(kModel);
  auto engine = Engine::create(model, small_options());
  auto submit_error = [&](Request r) {
    try {
      engine->submit(std::move(r), [](const TokenEvent&) { return true; });
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Request empty;
  EXPECT_NE(submit_error(empty).find("no tokens"), std::string::npos);
  Request too_long;
  too_long.prompt = prompt_ids(257, model->config().vocab_size, 0);
  EXPECT_NE(submit_error(too_long).find("257"), std::string::npos);
  Request bad_id;
  bad_id.prompt = {1, int32_t(model->config().vocab_size)};
  EXPECT_NE(submit_error(bad_id).find(std::to_string(model->config().vocab_size)), std::string::npos);
  EXPECT_THROW(Engine::create(model, [] {
                 EngineOptions o = small_options();
                 o.kv_memory_gib = 1e-6;
                 return o;
               }()),
               Error);
}

}  // namespace
}  // namespace dattn::server
