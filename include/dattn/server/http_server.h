// `dattn serve`'s HTTP side: OpenAI-shaped endpoints over an Engine, with auth, limits, timeouts,
// metrics and a draining shutdown.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dattn/model/tokenizer.h"
#include "dattn/server/api.h"
#include "dattn/server/engine.h"

namespace dattn::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (bind() says which)
  std::string api_key;              // empty: no authentication
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413
  int http_threads = 32;            // connections served at once; more wait for a free thread
  int read_timeout_s = 30, write_timeout_s = 30, idle_timeout_s = 5;
  double shutdown_grace_s = 30;     // in-flight requests may finish this long before they are cancelled
  ApiLimits limits;
};

class HttpServer {
 public:
  // stop_ids: the token ids that end a generation (end of turn, eos). Throws dattn::Error when the
  // model's chat template cannot be parsed.
  HttpServer(Engine& engine, const Tokenizer& tokenizer, std::vector<int32_t> stop_ids, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port. Throws dattn::Error when the address cannot be bound.
  int bind();
  // Answers requests until shutdown() is done.
  void serve();
  // How chat messages become a prompt (the model's template, a built-in layout or plain lines).
  std::string chat_format() const;
  // Thread-safe and idempotent: new completion requests get 503, in-flight ones may finish within the
  // grace period and are cancelled after it, then serve() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dattn::server
