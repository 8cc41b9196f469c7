// dattn_engine_bench: submits N requests of token-id prompts (greedy, or sampled) at once to the serving
// engine and reports wall time, aggregate generated tokens/s, time to first token and the largest gap
// between two tokens of one stream; with --max-batch 1 the same requests run one at a time (the baseline).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "dattn/model/model.h"
#include "dattn/server/engine.h"

using namespace dattn;
using Clock = std::chrono::steady_clock;

// ", \"decode_stage_ms_per_step\": {stage: ms, ...}, \"decode_device_ms_per_step\": total" (profiled runs).
std::string stage_fields(const server::EngineStats& s) {
  if (s.decode_stage_ms.empty() || s.decode_only_steps == 0) return "";
  std::string stages;
  double total = 0;
  for (const auto& [name, ms] : s.decode_stage_ms) {
    const double per_step = ms / double(s.decode_only_steps);
    stages += fmt::format("{}\"{}\": {:.3f}", stages.empty() ? "" : ", ", name, per_step);
    total += per_step;
  }
  return fmt::format(", \"decode_stage_ms_per_step\": {{{}}}, \"decode_device_ms_per_step\": {:.3f}", stages, total);
}

int main(int argc, char** argv) {
  CLI::App app{"serving engine throughput"};
  std::string model_dir = DATTN_SOURCE_DIR "/models/dattn-tiny-16k", device = "cpu", mode = "delta";
  int64_t requests = 8, prompt_tokens = 512, new_tokens = 64, max_batch = 8, chunk = 2048, context = 0;
  int64_t window = 256, sink = 128, gamma = 64;
  double kv_gib = 1.0, temperature = 0.0, top_p = 1.0;
  int64_t top_k = 0;
  app.add_option("--model", model_dir, "model directory");
  app.add_option("--device", device, "cpu or cuda");
  app.add_option("--requests", requests, "requests submitted at once");
  app.add_option("--prompt-tokens", prompt_tokens, "tokens per prompt (ids, distinct per request)");
  app.add_option("--new-tokens", new_tokens, "tokens generated per request");
  app.add_option("--max-batch", max_batch, "sequences per step (1: one request at a time)");
  app.add_option("--chunk", chunk, "prefill chunk rows");
  app.add_option("--ctx", context, "max context (0: the model's)");
  app.add_option("--kv-memory", kv_gib, "KV pool GiB");
  app.add_option("--attention", mode, "prefill mode");
  app.add_option("--window", window);
  app.add_option("--sink", sink);
  app.add_option("--gamma", gamma);
  bool profile = false;
  app.add_option("--temperature", temperature, "0: greedy; above it each request samples (seed = its index)");
  app.add_option("--top-p", top_p);
  app.add_option("--top-k", top_k);
  app.add_flag("--profile", profile, "device time per stage of the decode-only steps (cuda)");
  CLI11_PARSE(app, argc, argv);
  try {
    const auto model = model::Model::load(model_dir);
    server::EngineOptions o;
    o.device = device;
    o.max_batch = max_batch;
    o.prefill_chunk = chunk;
    o.max_context = context;
    o.kv_memory_gib = kv_gib;
    o.max_queue = requests;
    o.attention.params = {.mode = parse_mode(mode), .window = window, .sink = sink, .gamma = gamma};
    o.profile_decode = profile;
    auto engine = server::Engine::create(model, o);
    std::mutex mutex;
    std::condition_variable cv;
    int64_t done = 0, generated = 0;
    const size_t n = static_cast<size_t>(requests);
    std::vector<double> ttft(n), max_gap(n);
    std::vector<Clock::time_point> last(n);
    const auto start = Clock::now();
    const int64_t vocab = model->config().vocab_size;
    for (int64_t i = 0; i < requests; ++i) {
      server::Request r;
      for (int64_t t = 0; t < prompt_tokens; ++t) r.prompt.push_back(int32_t((t * 7919 + i * 104729 + 13) % vocab));
      r.max_new_tokens = new_tokens;
      r.sampling = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .seed = uint64_t(i)};
      engine->submit(std::move(r), [&, i](const server::TokenEvent& e) {
        std::lock_guard lock(mutex);
        const auto now = Clock::now();
        if (e.token >= 0) {
          ++generated;
          if (e.completion_tokens > 1)
            max_gap[size_t(i)] = std::max(max_gap[size_t(i)],
                                          std::chrono::duration<double, std::milli>(now - last[size_t(i)]).count());
          else
            ttft[size_t(i)] = e.time_to_first_token_ms;
          last[size_t(i)] = now;
        }
        if (e.finished && ++done == requests) cv.notify_all();
        return true;
      });
    }
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return done == requests; });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    double ttft_sum = 0;
    for (double t : ttft) ttft_sum += t;
    const server::EngineStats s = engine->stats();
    fmt::print(
        "{{\"device\": \"{}\", \"requests\": {}, \"prompt_tokens\": {}, \"new_tokens\": {}, \"max_batch\": {}, "
        "\"chunk\": {}, \"seconds\": {:.3f}, \"generated_tokens_per_s\": {:.1f}, \"ttft_ms_mean\": {:.1f}, "
        "\"ttft_ms_max\": {:.1f}, \"max_inter_token_gap_ms\": {:.1f}, \"peak_running\": {}, "
        "\"decode_only_steps\": {}, \"decode_step_ms\": {:.3f}{}}}\n",
        device, requests, prompt_tokens, new_tokens, max_batch, chunk, seconds, double(generated) / seconds,
        ttft_sum / double(requests), *std::max_element(ttft.begin(), ttft.end()),
        *std::max_element(max_gap.begin(), max_gap.end()), s.peak_running, s.decode_only_steps,
        s.decode_only_steps ? 1e3 * s.decode_only_seconds / double(s.decode_only_steps) : 0.0,
        stage_fields(s));
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
