// The serving engine on the CPU: concurrent requests give what `generate` gives one at a time, and the
// queue, cancellation and validation behave as the interface says.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <limits>
#include <mutex>

#include "dattn/core/error.h"
#include "dattn/model/cuda_session.h"
#include "dattn/model/generate.h"
#include "dattn/model/safetensors.h"
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

// Batching changes only how many rows each GEMM sees (sgemm or the small-batch kernel over the batch
// instead of sgemv for one row, which sum in other orders); test_batched_forward measures the logit
// difference (relative 2.5e-7 to 4e-7, bound 1e-5); greedy tokens here are compared exactly (a flip would
// need two logits within that of each other).
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
  EXPECT_GE(s.peak_running, 2) << "the requests should have been decoded together";
}

// Sampled requests too: the engine chooses the tokens of a step on several threads, each sequence with its
// own seeded sampler, so every request draws what `generate` draws alone with the same seed. (The logits
// differ by batching as above, ~3e-7 relative; a draw would have to land that close to a boundary between
// two tokens' cumulative mass to flip.)
TEST(Engine, ConcurrentSampledRequestsEqualGenerateOneAtATime) {
  auto model = test::load_fixture_model(kModel);
  const EngineOptions options = small_options();
  auto engine = Engine::create(model, options);
  const model::SamplingParams samplings[] = {{.temperature = 1.0, .seed = 1},
                                             {.temperature = 0.7, .top_p = 0.9, .seed = 2},
                                             {.temperature = 1.3, .top_k = 5, .seed = 3},
                                             {.temperature = 1.0, .top_k = 40, .top_p = 0.8, .seed = 4},
                                             {.temperature = 2.0, .seed = 5},
                                             {},
                                             {.temperature = 1.0, .top_p = 0.5, .seed = 7}};
  std::vector<Request> requests;
  std::vector<std::unique_ptr<Collector>> collectors;
  for (size_t i = 0; i < std::size(samplings); ++i) {
    Request r;
    r.prompt = prompt_ids(9 + 11 * int64_t(i), model->config().vocab_size, int(i));
    r.max_new_tokens = 12;
    r.sampling = samplings[i];
    requests.push_back(r);
    collectors.push_back(std::make_unique<Collector>());
    engine->submit(r, collectors.back()->callback());
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    collectors[i]->wait();
    EXPECT_EQ(collectors[i]->tokens, generate_alone(model, requests[i], options.attention, options.prefill_chunk))
        << "request " << i;
  }
  EXPECT_GE(engine->stats().peak_running, 2) << "the requests should have been decoded together";
}

// The engine's per-layer anchor gap (the /metrics gauges) is what a Session measures on the same prompt
// with the same chunks: the same forward pass and operator calls, so equal up to the order of the
// running mean's fp64 additions (1e-9 relative).
TEST(Engine, AnchorGapOfADeltaPrefillReachesTheStats) {
  auto model = test::load_fixture_model(kModel);
  const EngineOptions options = small_options();
  auto engine = Engine::create(model, options);
  EXPECT_TRUE(engine->stats().anchor_gap_mean.empty()) << "no delta prefill yet";
  Request r;
  r.prompt = prompt_ids(90, model->config().vocab_size, 7);  // 3 chunks of 32 rows, each with anchors
  r.max_new_tokens = 1;
  Collector c;
  engine->submit(r, c.callback());
  c.wait();
  model::SessionOptions so;
  so.context = 256;
  so.chunk_size = options.prefill_chunk;
  so.attention = options.attention;
  so.attention.report_anchor_gap = true;
  model::Session session(model, so);
  session.prefill(r.prompt);
  const std::vector<model::LayerAnchorGap> expected = session.anchor_gaps();
  const EngineStats s = engine->stats();
  ASSERT_EQ(s.anchor_gap_mean.size(), expected.size());
  for (size_t l = 0; l < expected.size(); ++l) {
    ASSERT_GT(expected[l].samples, 0) << "layer " << l;
    EXPECT_EQ(s.anchor_gap_samples[l], expected[l].samples) << "layer " << l;
    EXPECT_NEAR(s.anchor_gap_mean[l], expected[l].mean, 1e-9 * expected[l].mean) << "layer " << l;
    EXPECT_DOUBLE_EQ(s.anchor_gap_max[l], expected[l].max_head_mean) << "layer " << l;
    EXPECT_GT(s.anchor_gap_mean[l], 0.0) << "a window of 8 keys misses most of a 90-token prompt";
  }
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
  r.max_new_tokens = std::numeric_limits<int64_t>::max();  // bounded by the context
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
  Request bad_gamma;
  bad_gamma.prompt = {1, 2, 3};
  bad_gamma.attention = AttentionParams{.gamma = 0};
  EXPECT_NE(submit_error(bad_gamma).find("gamma must be >= 1, got 0"), std::string::npos);
  Request negative;
  negative.prompt = {1, 2, 3};
  negative.max_new_tokens = -1;
  EXPECT_NE(submit_error(negative).find("max_new_tokens must be >= 0, got -1"), std::string::npos);
  EngineOptions tpu = small_options();
  tpu.device = "tpu";
  try {
    Engine::create(model, tpu);
    ADD_FAILURE() << "device tpu accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tpu'"), std::string::npos) << e.what();
  }
  if (!model::cuda_session_available()) {
    EngineOptions gpu = small_options();
    gpu.device = "cuda";
    EXPECT_THROW(Engine::create(model, gpu), Error);  // without a GPU (or CUDA in the build): a clear error
  }
  EXPECT_THROW(Engine::create(model, [] {
                 EngineOptions o = small_options();
                 o.kv_memory_gib = 1e-6;
                 return o;
               }()),
               Error);
}

// The fixture with its final norm's weights set to NaN: attention's inputs stay finite (the operator's
// check passes), every logit is NaN.
std::shared_ptr<const model::Model> model_with_nan_logits(const test::TempDir& dir) {
  std::filesystem::copy(test::models_dir() / kModel, dir.path, std::filesystem::copy_options::recursive);
  const auto file = dir.path / "model.safetensors";
  std::vector<uint8_t> bytes(std::filesystem::file_size(file));
  std::ifstream(file, std::ios::binary).read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  const model::SafetensorsHeader header =
      model::parse_safetensors_header(std::as_bytes(std::span(bytes)), bytes.size(), file.string());
  const model::TensorInfo& norm = header.tensors.at("model.norm.weight");
  const std::vector<uint8_t> nan = norm.dtype == model::StDType::f32    ? std::vector<uint8_t>{0x00, 0x00, 0xc0, 0x7f}
                                   : norm.dtype == model::StDType::bf16 ? std::vector<uint8_t>{0xc0, 0x7f}
                                                                        : std::vector<uint8_t>{0x00, 0x7e};  // f16
  for (uint64_t i = norm.begin; i < norm.end; ++i) bytes[header.data_offset + i] = nan[(i - norm.begin) % nan.size()];
  test::write_file(file, bytes);
  return model::Model::load(dir.path);
}

// A model that produces NaN logits ends each request with an error naming it, greedy or sampled, and the
// engine goes on serving (the error used to escape the scheduling thread and end the process).
TEST(Engine, NaNLogitsEndTheRequestWithAnErrorAndTheEngineGoesOn) {
  test::TempDir dir;
  auto model = model_with_nan_logits(dir);
  auto engine = Engine::create(model, small_options());
  for (const model::SamplingParams& sampling :
       {model::SamplingParams{}, model::SamplingParams{.temperature = 0.7, .top_p = 0.9, .seed = 3}}) {
    std::vector<std::unique_ptr<Collector>> collectors;
    for (int i = 0; i < 3; ++i) {
      Request r;
      r.prompt = prompt_ids(10 + 7 * i, model->config().vocab_size, i);
      r.max_new_tokens = 4;
      r.sampling = sampling;
      collectors.push_back(std::make_unique<Collector>());
      engine->submit(r, collectors.back()->callback());
    }
    for (auto& c : collectors) {
      c->wait();
      EXPECT_TRUE(c->tokens.empty());
      EXPECT_EQ(c->last.reason, FinishReason::error);
      EXPECT_NE(c->last.error.find("is NaN"), std::string::npos) << c->last.error;
    }
  }
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

// A long prompt is prefilled a chunk per step while an already running sequence keeps decoding, and its
// chunked prefill gives what generate's prefill with the same chunk size gives.
TEST(Engine, ChunkedPrefillInterleavesWithDecodeAndEqualsGenerate) {
  auto model = test::load_fixture_model(kModel);
  const EngineOptions options = small_options();
  auto engine = Engine::create(model, options);
  Request short_request, long_request;
  short_request.prompt = prompt_ids(5, model->config().vocab_size, 7);
  short_request.max_new_tokens = 30;
  long_request.prompt = prompt_ids(200, model->config().vocab_size, 8);  // 7 chunks of <= 32 rows
  long_request.max_new_tokens = 4;
  Collector short_c, long_c;
  std::mutex mutex;
  int64_t short_tokens_before_long = -1;
  TokenCallback short_cb = short_c.callback();
  TokenCallback long_cb = [&, inner = long_c.callback()](const TokenEvent& e) {
    {
      std::lock_guard lock(mutex);
      if (short_tokens_before_long < 0) {
        std::lock_guard short_lock(short_c.mutex);
        short_tokens_before_long = int64_t(short_c.tokens.size());
      }
    }
    return inner(e);
  };
  engine->submit(short_request, short_cb);
  engine->submit(long_request, long_cb);
  short_c.wait();
  long_c.wait();
  // step 1 prefills the short prompt; each later step decodes it beside one 32-row chunk of the long one
  EXPECT_GE(short_tokens_before_long, 6);
  EXPECT_EQ(long_c.tokens, generate_alone(model, long_request, options.attention, options.prefill_chunk));
  EXPECT_EQ(short_c.tokens, generate_alone(model, short_request, options.attention, options.prefill_chunk));
}

// The same document with a second question: its whole chunks come from the prefix cache.
TEST(Engine, PrefixReuseGivesTheSameTokensAndCountsReusedTokens) {
  auto model = test::load_fixture_model(kModel);
  const EngineOptions options = small_options();
  auto engine = Engine::create(model, options);
  const int64_t vocab = model->config().vocab_size;
  const std::vector<int32_t> document = prompt_ids(70, vocab, 11);
  auto ask = [&](int salt, std::optional<AttentionParams> attention = std::nullopt) {
    Request r;
    r.prompt = document;
    const auto question = prompt_ids(9, vocab, salt);
    r.prompt.insert(r.prompt.end(), question.begin(), question.end());
    r.max_new_tokens = 5;
    r.attention = attention;
    Collector c;
    engine->submit(r, c.callback());
    c.wait();
    model::AttentionPlan plan = options.attention;
    if (attention) plan.params = *attention;
    EXPECT_EQ(c.tokens, generate_alone(model, r, plan, options.prefill_chunk)) << "salt " << salt;
    return engine->stats().prefix_reused_tokens_total;
  };
  EXPECT_EQ(ask(1), 0);
  // 79 prompt tokens: the two whole 32-token chunks of the document are reused, the rest is prefilled
  EXPECT_EQ(ask(2), 64);
  EXPECT_EQ(ask(3), 128);
  // other attention settings computed other K/V: nothing to reuse
  AttentionParams other = options.attention.params;
  other.window = 16;
  EXPECT_EQ(ask(4, other), 128);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

// Holds the engine's thread inside a callback until released, so that a test can fill the queue.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false, entered = false;
  TokenCallback callback() {
    return [this](const TokenEvent&) {
      std::unique_lock lock(mutex);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
      return true;
    };
  }
  void wait_entered() {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
};

TEST(Engine, QueueOverflowCancellationAndBlocksReturned) {
  auto model = test::load_fixture_model(kModel);
  EngineOptions options = small_options();
  options.max_batch = 1;
  options.max_queue = 2;
  auto engine = Engine::create(model, options);
  Request r;
  r.prompt = prompt_ids(10, model->config().vocab_size, 5);
  r.max_new_tokens = 3;
  Gate gate;
  engine->submit(r, gate.callback());
  gate.wait_entered();  // the first request runs and holds the engine's thread
  EXPECT_GT(engine->stats().kv_blocks_used, 0);
  Collector waiting_a, waiting_b;
  const uint64_t a = engine->submit(r, waiting_a.callback());
  engine->submit(r, waiting_b.callback());
  EXPECT_EQ(engine->stats().waiting, 2);
  EXPECT_THROW(engine->submit(r, [](const TokenEvent&) { return true; }), QueueFull);
  engine->cancel(a);  // cancelled while waiting
  gate.release();
  waiting_a.wait();
  waiting_b.wait();
  EXPECT_EQ(waiting_a.last.reason, FinishReason::cancelled);
  EXPECT_TRUE(waiting_a.tokens.empty());
  EXPECT_EQ(waiting_b.last.reason, FinishReason::length);
  EXPECT_EQ(waiting_b.tokens.size(), 3u);

  // cancelled while running: its blocks go back at once
  Request long_run = r;
  long_run.max_new_tokens = 200;
  Gate running;
  const uint64_t id = engine->submit(long_run, running.callback());
  running.wait_entered();
  engine->cancel(id);
  running.release();
  engine->shutdown(false);
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_LT(s.generated_tokens_total, 3 + 3 + 200);
}

// A pool that holds one context: the second request waits for the first one's blocks, then runs.
TEST(Engine, RequestsWaitForTheBlocksOfAFullPool) {
  auto model = test::load_fixture_model(kModel);
  EngineOptions options = small_options();
  const model::ModelConfig& c = model->config();
  const double block_bytes = 2.0 * double(c.num_layers * c.num_kv_heads * c.head_dim) * 4 * double(options.kv_block_tokens);
  options.kv_memory_gib = block_bytes * double(options.max_context / options.kv_block_tokens) / double(1ull << 30);
  auto engine = Engine::create(model, options);
  EXPECT_EQ(engine->stats().kv_blocks_total, options.max_context / options.kv_block_tokens);
  std::vector<Request> requests(3);
  std::vector<std::unique_ptr<Collector>> collectors;
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].prompt = prompt_ids(100 + int64_t(i), c.vocab_size, int(i));
    requests[i].max_new_tokens = 60;  // 160+ tokens each: two never fit the 256-token pool together
    collectors.push_back(std::make_unique<Collector>());
    engine->submit(requests[i], collectors.back()->callback());
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    collectors[i]->wait();
    EXPECT_EQ(collectors[i]->tokens, generate_alone(model, requests[i], options.attention, options.prefill_chunk));
  }
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

TEST(Engine, ShutdownCancellingEndsEverySequence) {
  auto model = test::load_fixture_model(kModel);
  auto engine = Engine::create(model, small_options());
  Request r;
  r.prompt = prompt_ids(10, model->config().vocab_size, 2);
  r.max_new_tokens = 100000;
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < 3; ++i) {
    collectors.push_back(std::make_unique<Collector>());
    engine->submit(r, collectors.back()->callback());
  }
  engine->shutdown(true);
  for (auto& c : collectors) {
    c->wait();
    EXPECT_TRUE(c->last.reason == FinishReason::cancelled || c->last.reason == FinishReason::context);
  }
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  EXPECT_THROW(engine->submit(r, [](const TokenEvent&) { return true; }), Error);
}

}  // namespace
}  // namespace dattn::server
