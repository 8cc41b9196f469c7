// The HTTP layer over a scripted engine (it echoes the prompt, one token per step): streaming framing,
// cancellation of a vanished client, queue overflow, auth, error bodies and the draining shutdown, each
// deterministic and independent of the real engine's speed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/server/http_server.h"
#include "dattn/server/metrics.h"

namespace dattn::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class EchoEngine : public Engine {
 public:
  EchoEngine(int64_t max_batch, int64_t max_queue, std::chrono::milliseconds step) : step_(step) {
    options_.max_batch = max_batch;
    options_.max_queue = max_queue;
    thread_ = std::thread([this] { loop(); });
  }
  ~EchoEngine() override { shutdown(true); }

  uint64_t submit(Request request, TokenCallback on_event) override {
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFull("the engine is shutting down");
    DATTN_CHECK(!request.prompt.empty(), "empty prompt");
    if (int64_t(sequences_.size()) >= options_.max_batch + options_.max_queue) {
      throw QueueFull(fmt::format("{} requests are waiting", options_.max_queue));
    }
    last_stop_ids_ = request.stop_ids;
    sequences_.push_back({++next_id_, std::move(request), std::move(on_event)});
    return next_id_;
  }
  void cancel(uint64_t id) override {
    std::lock_guard lock(mutex_);
    cancel_requests_.insert(id);
  }
  EngineStats stats() const override {
    std::lock_guard lock(mutex_);
    EngineStats s;
    s.running = std::min<int64_t>(int64_t(sequences_.size()), options_.max_batch);
    s.waiting = int64_t(sequences_.size()) - s.running;
    s.kv_blocks_total = 64;
    s.kv_blocks_used = s.running;
    return s;
  }
  void shutdown(bool cancel_running) override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (cancel_running) {
        for (const Sequence& s : sequences_) cancel_requests_.insert(s.id);
      }
    }
    if (thread_.joinable()) thread_.join();
  }
  const EngineOptions& options() const override { return options_; }

  std::vector<int32_t> last_stop_ids() const {
    std::lock_guard lock(mutex_);
    return last_stop_ids_;
  }

  // A sequence that reaches this many tokens ends with reason error, as the real engine ends one whose
  // logits are NaN (set before the requests it applies to).
  std::atomic<int64_t> fail_after_tokens{-1};

  // Ids whose sequence ended cancelled (by cancel() or by the callback returning false).
  std::set<uint64_t> cancelled() const {
    std::lock_guard lock(mutex_);
    return cancelled_;
  }

 private:
  struct Sequence {
    uint64_t id;
    Request request;
    TokenCallback on_event;
    int64_t generated = 0;
  };

  void loop() {
    while (true) {
      std::this_thread::sleep_for(step_);
      std::vector<Sequence*> batch;
      {
        std::lock_guard lock(mutex_);
        if (stopping_ && sequences_.empty()) return;
        for (size_t i = 0; i < sequences_.size() && int64_t(i) < options_.max_batch; ++i) batch.push_back(&sequences_[i]);
      }
      std::set<uint64_t> done;
      for (Sequence* s : batch) {
        TokenEvent event;
        event.prompt_tokens = int64_t(s->request.prompt.size());
        bool cancel;
        {
          std::lock_guard lock(mutex_);
          cancel = cancel_requests_.count(s->id) > 0;
        }
        if (cancel) {
          event.finished = true;
          event.reason = FinishReason::cancelled;
          event.completion_tokens = s->generated;
          s->on_event(event);
          done.insert(s->id);
          continue;
        }
        if (s->generated == fail_after_tokens) {
          event.finished = true;
          event.reason = FinishReason::error;
          event.error = "logit 7 is NaN: the model produced invalid values";
          event.completion_tokens = s->generated;
          s->on_event(event);
          done.insert(s->id);
          continue;
        }
        event.token = s->request.prompt[size_t(s->generated % int64_t(s->request.prompt.size()))];
        event.completion_tokens = ++s->generated;
        event.finished = s->generated == s->request.max_new_tokens;
        event.reason = event.finished ? FinishReason::length : FinishReason::none;
        if (!s->on_event(event)) {
          std::lock_guard lock(mutex_);
          cancel_requests_.insert(s->id);  // ended by the next step, as a real engine would
        } else if (event.finished) {
          done.insert(s->id);
        }
      }
      std::lock_guard lock(mutex_);
      for (const Sequence& s : sequences_) {
        if (done.count(s.id) && cancel_requests_.count(s.id)) cancelled_.insert(s.id);
      }
      std::erase_if(sequences_, [&](const Sequence& s) { return done.count(s.id) > 0; });
    }
  }

  EngineOptions options_;
  std::chrono::milliseconds step_;
  mutable std::mutex mutex_;
  std::deque<Sequence> sequences_;
  std::set<uint64_t> cancel_requests_, cancelled_;
  std::vector<int32_t> last_stop_ids_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::load(DATTN_SOURCE_DIR "/models/dattn-tiny-16k");
  return t;
}

// A server on a free loopback port over an EchoEngine, served on its own thread.
struct Harness {
  explicit Harness(int64_t max_batch = 4, int64_t max_queue = 4, ServerOptions options = {},
                   std::vector<int32_t> stop_ids = {})
      : engine(max_batch, max_queue, 5ms) {
    options.port = 0;
    options.limits.model_id = "tiny";
    options.limits.max_context = 20000;
    options.limits.vocab_size = tokenizer().vocab_size();
    server = std::make_unique<HttpServer>(engine, tokenizer(), std::move(stop_ids), options);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~Harness() {
    server->shutdown();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  EchoEngine engine;
  std::unique_ptr<HttpServer> server;
  int port = 0;
  std::thread thread;
};

std::string completion_request(const std::vector<int32_t>& prompt, int64_t max_tokens, bool stream) {
  return json{{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"stream", stream}}.dump();
}

// Text of the data: events of an SSE body, and whether it ended with [DONE].
std::pair<std::string, bool> sse_text(const std::string& body, std::string* finish = nullptr) {
  std::string text;
  bool done = false;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line";
    if (end == std::string::npos) break;
    const std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event[0] == ':') continue;  // keep-alive comment
    EXPECT_FALSE(done) << "data after [DONE]";
    if (event == "data: [DONE]") {
      done = true;
      continue;
    }
    const json chunk = json::parse(event.substr(6));
    text += chunk["choices"][0]["text"].get<std::string>();
    if (finish && !chunk["choices"][0]["finish_reason"].is_null()) *finish = chunk["choices"][0]["finish_reason"];
  }
  return {text, done};
}

// Sends a raw completion request and returns its socket, nothing read yet.
int send_request(int port, const std::string& body) {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(::send(sock, request.data(), request.size(), 0), ssize_t(request.size()));
  return sock;
}

// Opens a raw streaming request and returns the socket once the first bytes of the response arrived.
int open_stream(int port, const std::string& body) {
  const int sock = send_request(port, body);
  char buffer[512];
  EXPECT_GT(::recv(sock, buffer, sizeof(buffer), 0), 0);
  return sock;
}

TEST(HttpServer, StreamEchoesTheEngineAndEndsWithDone) {
  Harness h;
  const std::vector<int32_t> prompt = tokenizer().encode("In the beginning", false);
  auto res = h.client().Post("/v1/completions", completion_request(prompt, 7, true), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  std::string finish;
  auto [text, done] = sse_text(res->body, &finish);
  EXPECT_TRUE(done);
  EXPECT_EQ(finish, "length");
  std::vector<int32_t> echoed;
  for (int i = 0; i < 7; ++i) echoed.push_back(prompt[size_t(i) % prompt.size()]);
  EXPECT_EQ(text, tokenizer().decode(echoed, true));

  auto plain = h.client().Post("/v1/completions", completion_request(prompt, 7, false), "application/json");
  ASSERT_TRUE(plain);
  const json body = json::parse(plain->body);
  EXPECT_EQ(body["choices"][0]["text"], text);
  EXPECT_EQ(body["usage"]["completion_tokens"], 7);
  EXPECT_EQ(body["usage"]["prompt_tokens"], int64_t(prompt.size()));
}

TEST(HttpServer, IgnoreEosLeavesOutTheEndTokens) {
  Harness h(4, 4, {}, /*stop_ids=*/{3, 7});
  json body = json::parse(completion_request({5, 6}, 2, false));
  ASSERT_EQ(h.client().Post("/v1/completions", body.dump(), "application/json")->status, 200);
  EXPECT_EQ(h.engine.last_stop_ids(), (std::vector<int32_t>{3, 7}));
  body["ignore_eos"] = true;
  ASSERT_EQ(h.client().Post("/v1/completions", body.dump(), "application/json")->status, 200);
  EXPECT_TRUE(h.engine.last_stop_ids().empty());
  body["ignore_eos"] = "yes";
  EXPECT_EQ(h.client().Post("/v1/completions", body.dump(), "application/json")->status, 400);
}

TEST(HttpServer, ClientLeavingMidStreamCancelsItsSequence) {
  Harness h;
  const int sock = open_stream(h.port, completion_request({5, 6, 7}, 20000, true));
  ::close(sock);
  const auto start = std::chrono::steady_clock::now();
  while (h.engine.cancelled().empty()) {
    ASSERT_LT(std::chrono::steady_clock::now() - start, 2s) << "the sequence was not cancelled";
    std::this_thread::sleep_for(5ms);
  }
  while (h.engine.stats().running > 0) std::this_thread::sleep_for(5ms);  // bounded by the test's timeout
  auto res = h.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, ClientLeavingANonStreamingRequestCancelsItsSequence) {
  Harness h;
  // no response bytes come before the completion ends: send, wait until the engine runs it, leave
  const int sock = send_request(h.port, completion_request({5, 6, 7}, 20000, false));
  const auto start = std::chrono::steady_clock::now();
  while (h.engine.stats().running == 0) {
    ASSERT_LT(std::chrono::steady_clock::now() - start, 5s) << "the request never reached the engine";
    std::this_thread::sleep_for(5ms);
  }
  ::close(sock);
  const auto left = std::chrono::steady_clock::now();
  while (h.engine.cancelled().empty()) {
    ASSERT_LT(std::chrono::steady_clock::now() - left, 2s) << "the sequence was not cancelled";
    std::this_thread::sleep_for(5ms);
  }
  auto res = h.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// An engine error (NaN logits, say): the non-streaming answer is a 500 naming it; a stream that already sent
// tokens ends with an error event and [DONE]; the server goes on answering.
TEST(HttpServer, AnEngineErrorIsA500OrAnErrorEventAndTheServerGoesOn) {
  Harness h;
  h.engine.fail_after_tokens = 3;
  const std::vector<int32_t> prompt = tokenizer().encode("In the beginning", false);
  auto res = h.client().Post("/v1/completions", completion_request(prompt, 10, false), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  const json error = json::parse(res->body)["error"];
  EXPECT_EQ(error["code"], "engine_error");
  EXPECT_NE(error["message"].get<std::string>().find("logit 7 is NaN"), std::string::npos) << res->body;

  res = h.client().Post("/v1/completions", completion_request(prompt, 10, true), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);  // the status went out with the first tokens
  const size_t error_at = res->body.find("data: {\"error\"");
  ASSERT_NE(error_at, std::string::npos) << res->body;
  EXPECT_LT(res->body.find("\"text\""), error_at) << "the tokens before the error are streamed";
  const size_t error_end = res->body.find("\n\n", error_at);
  ASSERT_NE(error_end, std::string::npos);
  const json event = json::parse(res->body.substr(error_at + 6, error_end - error_at - 6))["error"];
  EXPECT_EQ(event["code"], "engine_error");
  EXPECT_NE(event["message"].get<std::string>().find("logit 7 is NaN"), std::string::npos) << res->body;
  EXPECT_EQ(res->body.substr(error_end + 2), "data: [DONE]\n\n") << res->body;

  h.engine.fail_after_tokens = -1;
  res = h.client().Post("/v1/completions", completion_request(prompt, 4, false), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, FullQueueGives429WithRetryAfter) {
  Harness h(/*max_batch=*/1, /*max_queue=*/0);
  const int sock = open_stream(h.port, completion_request({5, 6, 7}, 20000, true));
  auto res = h.client().Post("/v1/completions", completion_request({5}, 3, false), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("capacity"), std::string::npos);
  ::close(sock);
  while (h.engine.stats().running > 0) std::this_thread::sleep_for(5ms);
  res = h.client().Post("/v1/completions", completion_request({5}, 3, false), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, AuthAndErrorBodies) {
  ServerOptions options;
  options.api_key = "k3y";
  options.max_body_bytes = 1000;
  Harness h(4, 4, options);
  httplib::Client c = h.client();
  auto res = c.Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(c.Get("/health")->status, 200);
  const httplib::Headers auth = {{"Authorization", "Bearer k3y"}};
  EXPECT_EQ(c.Get("/v1/models", auth)->status, 200);
  EXPECT_EQ(c.Get("/metrics", {{"Authorization", "Bearer k3"}})->status, 401);
  res = c.Post("/v1/completions", auth, std::string(2000, 'x'), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("1000"), std::string::npos);
  res = c.Get("/v2/nothing", auth);
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  res = c.Post("/v1/completions", auth, "{\"model\":\"tiny\",\"prompt\":[1],\"max_tokens\":\"x\"}", "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "max_tokens");
  // httplib's logger (where requests are counted) runs after the response bytes are sent, so on a loaded
  // machine the count can trail the client by a scheduling slice: poll for it instead of reading once.
  const std::string counted_413 = "dattn_http_requests_total{endpoint=\"/v1/completions\",status=\"413\"} 1";
  std::string metrics = c.Get("/metrics", auth)->body;
  for (const auto start = std::chrono::steady_clock::now();
       metrics.find(counted_413) == std::string::npos && std::chrono::steady_clock::now() - start < 5s;) {
    std::this_thread::sleep_for(10ms);
    metrics = c.Get("/metrics", auth)->body;
  }
  EXPECT_NE(metrics.find(counted_413), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("dattn_kv_cache_blocks_used 0"), std::string::npos);
}

// The per-layer anchor gap gauges: only layers that saw a delta prefill, none before the first one.
TEST(Metrics, AnchorGapGaugesPerLayer) {
  Metrics metrics;
  EngineStats stats;
  EXPECT_EQ(metrics.format(stats).find("dattn_anchor_gap"), std::string::npos);
  stats.anchor_gap_mean = {0.25, 0.0};
  stats.anchor_gap_max = {0.5, 0.0};
  stats.anchor_gap_samples = {12, 0};
  const std::string text = metrics.format(stats);
  EXPECT_NE(text.find("dattn_anchor_gap_mean{layer=\"0\"} 0.25"), std::string::npos) << text;
  EXPECT_NE(text.find("dattn_anchor_gap_max_head{layer=\"0\"} 0.5"), std::string::npos) << text;
  EXPECT_EQ(text.find("layer=\"1\""), std::string::npos) << "layer 1 had no delta prefill";
}

TEST(HttpServer, ShutdownCancelsAfterTheGracePeriodAndEndsTheStream) {
  ServerOptions options;
  options.shutdown_grace_s = 0.2;
  auto h = std::make_unique<Harness>(4, 4, options);
  const int sock = open_stream(h->port, completion_request({5, 6, 7}, 20000, true));
  std::thread stopper([&] { h->server->shutdown(); });
  std::string body;
  char buffer[4096];
  // Until the end of the stream, then close: an idle keep-alive connection would hold the exit for the idle
  // timeout.
  for (ssize_t n; body.find("data: [DONE]") == std::string::npos && (n = ::recv(sock, buffer, sizeof(buffer), 0)) > 0;) {
    body.append(buffer, size_t(n));
  }
  ::close(sock);
  stopper.join();
  EXPECT_NE(body.find("\"finish_reason\":\"cancelled\""), std::string::npos);
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
  h.reset();  // serve() has returned: the destructor's join does not hang
}

}  // namespace
}  // namespace dattn::server
