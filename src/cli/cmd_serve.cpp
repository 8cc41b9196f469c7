// `dattn serve`: an OpenAI-compatible HTTP server over the serving engine (docs/SERVER.md).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "model_dir_option.h"
#include "dattn/core/error.h"
#include "dattn/model/generate.h"
#include "dattn/server/engine.h"
#include "dattn/server/http_server.h"
#include "embedded_model.h"

namespace dattn::cli {
namespace {

struct ServeFlags {
  std::string model_dir, model_name;
  PrefillFlags prefill;
  server::ServerOptions server;
  int64_t max_batch = 16, max_context = 0, max_queue = 64, max_tokens = 256;
  double kv_memory_gib = 1.0;
  bool no_attention_override = false;
  int threads = 0;
};

// The sampling a request without temperature/top_p/top_k gets: the model's generation_config.json.
model::SamplingParams default_sampling(const model::ModelConfig::GenerationDefaults& g) {
  if (!g.do_sample) return {};
  return {.temperature = g.temperature, .top_k = g.top_k, .top_p = g.top_p};
}

// SIGINT/SIGTERM write their number into a pipe that a watcher thread reads: a handler, not sigwait,
// because threads started before main (OpenBLAS's pool) would not have the signals blocked.
int shutdown_pipe[2] = {-1, -1};

extern "C" void on_shutdown_signal(int signal) {
  const char byte = char(signal);
  [[maybe_unused]] const ssize_t n = ::write(shutdown_pipe[1], &byte, 1);  // async-signal-safe
}

void install_shutdown_handlers() {
  DATTN_CHECK(::pipe(shutdown_pipe) == 0, "cannot create the shutdown pipe: {}", std::strerror(errno));
  struct sigaction action {};
  action.sa_handler = on_shutdown_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a failed write, not the end of the server
}

void run_serve(ServeFlags f) {
  check_device(f.prefill.device);
  const std::filesystem::path dir = f.model_dir.empty() ? embedded_model_dir() : std::filesystem::path(f.model_dir);
  DATTN_CHECK(f.max_batch >= 1, "--max-batch must be >= 1, got {}", f.max_batch);
  DATTN_CHECK(f.kv_memory_gib > 0, "--kv-memory must be > 0 GiB, got {}", f.kv_memory_gib);
  DATTN_CHECK(f.max_context >= 0, "--max-context must be >= 0, got {}", f.max_context);
  DATTN_CHECK(f.max_queue >= 0, "--max-queue must be >= 0, got {}", f.max_queue);
  DATTN_CHECK(f.max_tokens >= 1, "--max-tokens must be >= 1, got {}", f.max_tokens);
  DATTN_CHECK(f.server.port >= 0 && f.server.port <= 65535, "--port must be in [0, 65535], got {}", f.server.port);
  DATTN_CHECK(f.server.http_threads >= 1, "--http-threads must be >= 1, got {}", f.server.http_threads);

  Tokenizer tokenizer = Tokenizer::load(dir);
  std::shared_ptr<const model::Model> model = model::Model::load(dir);
  const model::ModelConfig& config = model->config();
  DATTN_CHECK(tokenizer.vocab_size() <= config.vocab_size, "the tokenizer has {} ids but the model's vocab_size is {}",
              tokenizer.vocab_size(), config.vocab_size);

  server::EngineOptions engine_options;
  engine_options.device = f.prefill.device;
  engine_options.max_batch = f.max_batch;
  engine_options.kv_memory_gib = f.kv_memory_gib;
  engine_options.max_context = f.max_context;
  engine_options.prefill_chunk = prefill_chunk(f.prefill);
  engine_options.max_queue = f.max_queue;
  engine_options.attention = attention_plan(f.prefill);
  engine_options.num_threads = f.threads;
  std::unique_ptr<server::Engine> engine = server::Engine::create(model, engine_options);

  server::ServerOptions& options = f.server;
  server::ApiLimits& limits = options.limits;
  limits.model_id = f.model_name.empty() ? dir.filename().string() : f.model_name;
  if (limits.model_id.empty()) limits.model_id = dir.parent_path().filename().string();  // DIR given as "a/b/"
  limits.max_context = f.max_context > 0 ? f.max_context : config.max_position_embeddings;
  limits.vocab_size = tokenizer.vocab_size();
  limits.default_max_tokens = f.max_tokens;
  limits.default_sampling = default_sampling(config.generation);
  limits.default_attention = engine_options.attention.params;
  limits.allow_attention_override = !f.no_attention_override;

  server::HttpServer http(*engine, tokenizer, model::merged_stop_ids(config.eos_token_ids, tokenizer.eos_ids()),
                          options);
  const int port = http.bind();
  install_shutdown_handlers();
  std::thread signal_waiter([&] {
    char signal = 0;
    while (::read(shutdown_pipe[0], &signal, 1) < 0 && errno == EINTR) {
    }
    if (signal != 0) fmt::print(stderr, "dattn serve: {}, finishing in-flight requests\n", strsignal(signal));
    http.shutdown();
  });
  fmt::print(stderr, "dattn serve: model '{}' ({}), {}, {} prefill on {}, listening on http://{}:{}\n",
             limits.model_id, dir.string(), http.chat_format(), f.prefill.attention, f.prefill.device, options.host,
             port);
  std::fflush(stderr);
  http.serve();
  // serve() also ends without a signal when the listening socket fails: wake the waiter either way.
  on_shutdown_signal(0);
  signal_waiter.join();
  engine->shutdown(/*cancel_running=*/true);
  fmt::print(stderr, "dattn serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat and text completions)");
  cmd->add_option("--model", f->model_dir, "model directory, .gguf file or cached repo id (default: the embedded model)")
      ->transform(model_dir_resolver());
  cmd->add_option("--model-name", f->model_name, "the model id clients send (default: the directory's name)");
  cmd->add_option("--host", f->server.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", f->server.port, "port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", f->server.api_key, "require 'Authorization: Bearer KEY' on every endpoint but /health");
  add_prefill_flags(*cmd, f->prefill);
  cmd->add_option("--max-batch", f->max_batch, "sequences decoded together")->capture_default_str();
  cmd->add_option("--kv-memory", f->kv_memory_gib, "KV cache pool size in GiB")->capture_default_str();
  cmd->add_option("--max-context", f->max_context, "tokens per request, prompt + completion (0: the model's)")
      ->capture_default_str();
  cmd->add_option("--max-queue", f->max_queue, "requests waiting beyond the running ones; more get 429")
      ->capture_default_str();
  cmd->add_option("--max-tokens", f->max_tokens, "completion tokens of a chat request that names no max_tokens")
      ->capture_default_str();
  cmd->add_flag("--no-attention-override", f->no_attention_override, "refuse requests that set 'attention'");
  cmd->add_option("--http-threads", f->server.http_threads, "connections served at once")->capture_default_str();
  cmd->add_option("--max-body", f->server.max_body_bytes, "largest request body in bytes")->capture_default_str();
  cmd->add_option("--read-timeout", f->server.read_timeout_s, "seconds a request may take to arrive")->capture_default_str();
  cmd->add_option("--write-timeout", f->server.write_timeout_s, "seconds a response write may block")->capture_default_str();
  cmd->add_option("--idle-timeout", f->server.idle_timeout_s, "seconds an idle keep-alive connection is kept")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", f->server.shutdown_grace_s,
                  "seconds in-flight requests may finish after SIGTERM/SIGINT before they are cancelled")
      ->capture_default_str();
  cmd->add_option("--threads", f->threads, "CPU threads of the engine (0 = all cores)");
  cmd->callback([f] { run_serve(*f); });
}

}  // namespace dattn::cli
