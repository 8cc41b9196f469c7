#include "dattn/server/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <set>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/server/metrics.h"
#include "dattn/server/prompt.h"
#include "client_connection.h"
#include "generation.h"

namespace dattn::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// How long a stream may stay silent before a keep-alive comment: writing is how a vanished client shows up.
constexpr auto kHeartbeat = std::chrono::milliseconds(200);

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(error_body(error), "application/json");
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;  // constant time in the contents: no guessing the key byte by byte from timings
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ b[i]);
  return diff == 0;
}

// Endpoints named in metrics; anything else counts as "other" (no unbounded label values).
std::string endpoint_label(const std::string& path) {
  static const std::set<std::string> known = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health",
                                              "/metrics"};
  return known.count(path) ? path : "other";
}

std::string random_id(std::string_view prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return fmt::format("{}{:016x}{:08x}", prefix, salt, counter.fetch_add(1));
}

}  // namespace

struct HttpServer::Impl {
  Engine& engine;
  const Tokenizer& tokenizer;
  std::vector<int32_t> stop_ids;
  ServerOptions options;
  ChatPrompt chat_prompt;
  httplib::Server http;
  Metrics metrics;
  const int64_t started_at = int64_t(std::time(nullptr));

  std::mutex mutex;  // guards in_flight and draining
  std::condition_variable in_flight_changed;
  std::set<uint64_t> in_flight;  // engine ids of requests being answered
  bool draining = false, stopped = false;

  Impl(Engine& e, const Tokenizer& t, std::vector<int32_t> ids, ServerOptions o)
      : engine(e), tokenizer(t), stop_ids(std::move(ids)), options(std::move(o)), chat_prompt(t) {}

  void setup();
  void completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  std::vector<int32_t> prompt_ids(const CompletionRequest& request);
  uint64_t submit(const CompletionRequest& request, std::vector<int32_t> prompt, std::shared_ptr<Generation> gen);
  void release(uint64_t id, const Generation& gen);
  void client_left(uint64_t id, Generation& gen);  // cancels the sequence: its KV blocks free at the next step
  // Non-streaming: waits for the completion; false (sequence cancelled and released) if the client left.
  bool wait_or_cancel_if_client_leaves(const httplib::Request& req, uint64_t id, Generation& gen);
  void stream(httplib::Response& res, Endpoint endpoint, const CompletionRequest& request, uint64_t id,
              std::shared_ptr<Generation> gen, ResponseIds ids);
};

void HttpServer::Impl::setup() {
  const int threads = std::max(1, options.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http.set_read_timeout(options.read_timeout_s, 0);
  http.set_write_timeout(options.write_timeout_s, 0);
  http.set_keep_alive_timeout(options.idle_timeout_s);
  http.set_payload_max_length(options.max_body_bytes);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let two servers share a port.
  http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    const std::string_view bearer = "Bearer ";
    const bool ok = header.size() > bearer.size() && header.compare(0, bearer.size(), bearer) == 0 &&
                    same_secret(std::string_view(header).substr(bearer.size()), options.api_key);
    if (ok) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, header.empty() ? "missing API key: send 'Authorization: Bearer <key>'"
                                                 : "incorrect API key in the Authorization header",
                             "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own refusals (no route, body too large, unreadable request) get OpenAI-shaped bodies too.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      send_error(res, ApiError(413, fmt::format("the request body is larger than {} bytes", options.max_body_bytes)));
    } else if (res.status == 404) {
      send_error(res, ApiError(404, fmt::format("no endpoint {} {}", req.method, req.path), "", "not_found"));
    } else {
      send_error(res, ApiError(res.status, fmt::format("the request could not be served (HTTP {})", res.status)));
    }
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, message, "", "internal_error", "server_error"));
  });
  http.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex);
    if (draining) res.set_header("Connection", "close");  // no idle keep-alive holds up the exit
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_request(endpoint_label(req.path), res.status);
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex);
    res.status = draining ? 503 : 200;
    res.set_content(draining ? R"({"status":"shutting down"})" : R"({"status":"ok"})", "application/json");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json model = {{"id", options.limits.model_id}, {"object", "model"}, {"created", started_at},
                  {"owned_by", "dattn"}, {"max_model_len", options.limits.max_context}};
    res.set_content(json{{"object", "list"}, {"data", json::array({model})}}.dump(), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard lock(mutex);
      metrics.set_in_flight(int64_t(in_flight.size()));
    }
    res.set_content(metrics.format(engine.stats()), "text/plain; version=0.0.4");
  });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, Endpoint::chat); });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, Endpoint::completion); });
}

std::vector<int32_t> HttpServer::Impl::prompt_ids(const CompletionRequest& request) {
  const char* param = request.endpoint == Endpoint::chat ? "messages" : "prompt";
  std::vector<int32_t> ids;
  try {
    if (request.endpoint == Endpoint::chat) {
      ids = chat_prompt.encode(request.messages);
    } else if (request.prompt_ids) {
      ids = *request.prompt_ids;
    } else {
      ids = tokenizer.encode(request.prompt_text, /*add_special_tokens=*/true);
    }
  } catch (const Error& e) {
    throw ApiError(400, e.what(), param, "invalid_value");
  }
  check_prompt_length(int64_t(ids.size()), options.limits, param);
  return ids;
}

uint64_t HttpServer::Impl::submit(const CompletionRequest& request, std::vector<int32_t> prompt,
                                  std::shared_ptr<Generation> gen) {
  Request engine_request;
  engine_request.prompt = std::move(prompt);
  engine_request.max_new_tokens = request.max_tokens;
  engine_request.sampling = request.sampling;
  if (!request.seeded) engine_request.sampling.seed = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  if (!request.ignore_eos) engine_request.stop_ids = stop_ids;
  engine_request.attention = request.attention;
  std::lock_guard lock(mutex);  // held across submit so that shutdown() sees every id it must wait for
  if (draining) throw ApiError(503, "the server is shutting down", "", "server_shutting_down", "server_error");
  uint64_t id = 0;
  try {
    id = engine.submit(std::move(engine_request), [gen](const TokenEvent& event) { return gen->on_event(event); });
  } catch (const QueueFull& e) {
    throw ApiError(429, fmt::format("the server is at capacity, try again later ({})", e.what()), "", "queue_full",
                   "rate_limit_error");
  } catch (const Error& e) {
    // The prompt was checked already: what the engine still refuses is the attention override.
    throw ApiError(400, e.what(), request.attention ? "attention" : "", "invalid_value");
  }
  in_flight.insert(id);
  return id;
}

void HttpServer::Impl::release(uint64_t id, const Generation& gen) {
  if (auto ttft = gen.time_to_first_token_s()) metrics.observe_time_to_first_token(*ttft);
  const Usage usage = gen.usage();
  metrics.observe_request(gen.elapsed_s(), usage.prompt_tokens, usage.completion_tokens);
  std::lock_guard lock(mutex);
  in_flight.erase(id);
  in_flight_changed.notify_all();
}

void HttpServer::Impl::completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  const auto arrival = Clock::now();
  try {
    const CompletionRequest request = parse_completion_request(req.body, endpoint, options.limits);
    std::vector<int32_t> prompt = prompt_ids(request);
    auto gen = std::make_shared<Generation>(tokenizer, request.stop, arrival);
    const uint64_t id = submit(request, std::move(prompt), gen);
    ResponseIds ids{random_id(endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-"), int64_t(std::time(nullptr)),
                    options.limits.model_id};
    if (request.stream) {
      stream(res, endpoint, request, id, std::move(gen), std::move(ids));
      return;
    }
    if (!wait_or_cancel_if_client_leaves(req, id, *gen)) return;  // nobody to answer
    const Generation::Update all = gen->take_all();
    release(id, *gen);
    if (auto error = gen->error()) throw ApiError(500, *error, "", "engine_error", "server_error");
    res.set_content(completion_body(endpoint, ids, all.text, gen->finish_reason(), gen->usage()), "application/json");
  } catch (const ApiError& error) {
    if (error.status == 429) res.set_header("Retry-After", "1");
    send_error(res, error);
  }
}

void HttpServer::Impl::client_left(uint64_t id, Generation& gen) {
  gen.abandon();
  engine.cancel(id);
}

bool HttpServer::Impl::wait_or_cancel_if_client_leaves(const httplib::Request& req, uint64_t id, Generation& gen) {
  const auto client = ClientConnection::find(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  while (!gen.wait_finished(kHeartbeat)) {
    if (client && client->closed_by_peer()) {
      client_left(id, gen);
      gen.take_all();  // the engine ends the sequence (cancelled) at its next step
      release(id, gen);
      return false;
    }
  }
  return true;
}

void HttpServer::Impl::stream(httplib::Response& res, Endpoint endpoint, const CompletionRequest& request,
                              uint64_t id, std::shared_ptr<Generation> gen, ResponseIds ids) {
  struct State {
    bool first = true, done = false;
  };
  auto state = std::make_shared<State>();
  const bool include_usage = request.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [=](size_t, httplib::DataSink& sink) {
        std::string out;
        if (state->first && endpoint == Endpoint::chat) {
          out = chunk_event(endpoint, ids, "", "", true);  // the role, at once: the client sees the 200 early
          state->first = false;
        }
        const Generation::Update update = gen->take(kHeartbeat);
        if (!update.text.empty()) {
          out += chunk_event(endpoint, ids, update.text, "", state->first);
          state->first = false;
        }
        if (update.finished) {
          if (auto error = gen->error()) {
            out += error_event(ApiError(500, *error, "", "engine_error", "server_error"));
          } else {
            out += chunk_event(endpoint, ids, "", gen->finish_reason(), state->first);
            if (include_usage) out += usage_event(endpoint, ids, gen->usage());
          }
          out += kSseDone;
        }
        if (out.empty()) out = kSseHeartbeat;
        if (!sink.write(out.data(), out.size())) return false;  // the client is gone
        if (update.finished) {
          state->done = true;
          sink.done();
        }
        return true;
      },
      [this, id, gen, state](bool success) {
        if (!success || !state->done) client_left(id, *gen);
        release(id, *gen);
      });
}

HttpServer::HttpServer(Engine& engine, const Tokenizer& tokenizer, std::vector<int32_t> stop_ids,
                       ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, tokenizer, std::move(stop_ids), std::move(options))) {
  impl_->setup();
}

HttpServer::~HttpServer() { shutdown(); }

int HttpServer::bind() {
  const ServerOptions& o = impl_->options;
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  DATTN_CHECK(port > 0, "cannot listen on {}:{} (address in use, or not an address of this machine?)", o.host, o.port);
  return port;
}

void HttpServer::serve() { impl_->http.listen_after_bind(); }

std::string HttpServer::chat_format() const { return impl_->chat_prompt.describe(); }

void HttpServer::shutdown() {
  Impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  if (s.stopped) return;
  s.draining = true;
  const auto grace = std::chrono::duration<double>(s.options.shutdown_grace_s);
  if (!s.in_flight_changed.wait_for(lock, grace, [&] { return s.in_flight.empty(); })) {
    for (uint64_t id : s.in_flight) s.engine.cancel(id);
    // Cancelled requests still end their responses (finish_reason "cancelled"); a stuck client write is
    // bounded by the write timeout.
    s.in_flight_changed.wait_for(lock, std::chrono::seconds(s.options.write_timeout_s + 5),
                                 [&] { return s.in_flight.empty(); });
  }
  s.stopped = true;
  lock.unlock();
  s.http.stop();
}

}  // namespace dattn::server
