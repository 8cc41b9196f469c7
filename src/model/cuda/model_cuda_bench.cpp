// dattn_model_cuda_bench: loads a model directory once onto the GPU and times prefills of random token
// ids (each mode and length of --runs, the cache reset in between) and greedy decode steps after a prefill.
// Prints one JSON object per line; bench/model_bench.py drives it.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/model/gguf_model.h"
#include "dattn/model/cuda_session.h"
#include "dattn/model/sampler.h"

namespace {

using namespace dattn;
using namespace dattn::model;
using Clock = std::chrono::steady_clock;

struct Run {
  AttentionMode mode;
  int64_t tokens;
  int64_t chunk = 0;  // 0: --chunk
};

std::vector<Run> parse_runs(const std::string& text) {
  std::vector<Run> runs;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    const size_t colon = item.find(':');
    DATTN_CHECK(colon != std::string::npos, "--runs: '{}' must look like MODE:TOKENS[:CHUNK]", item);
    const size_t colon2 = item.find(':', colon + 1);
    Run run{parse_mode(item.substr(0, colon)), std::stoll(item.substr(colon + 1, colon2 - colon - 1))};
    if (colon2 != std::string::npos) run.chunk = std::stoll(item.substr(colon2 + 1));
    DATTN_CHECK(run.tokens >= 1 && run.chunk >= 0, "--runs: bad tokens or chunk in '{}'", item);
    runs.push_back(run);
    begin = end + 1;
  }
  return runs;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void emit(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

nlohmann::json stages_json(const std::vector<std::pair<std::string, double>>& stages) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, ms] : stages) out[name] = ms;
  return out;
}

int main(int argc, char** argv) {
  CLI::App app{"Time GPU prefill and decode of a model directory"};
  std::string model_dir, runs_text = "dense:4096";
  int64_t chunk = 4096, window = 2048, sink = 1024, gamma = 64, decode_tokens = 0, decode_after = 0, warmup = 2048;
  app.add_option("--model", model_dir, "model directory")->required();
  app.add_option("--runs", runs_text,
                 "MODE:TOKENS[:CHUNK],... prefills to time (dense|sparse|recompute|delta; CHUNK <= --chunk)");
  app.add_option("--chunk", chunk, "prefill chunk size (the session's largest)");
  app.add_option("--window", window);
  app.add_option("--sink", sink);
  app.add_option("--gamma", gamma);
  app.add_option("--decode-tokens", decode_tokens, "greedy decode steps to time after a dense prefill");
  app.add_option("--decode-after", decode_after, "prompt tokens before the timed decode steps");
  app.add_option("--warmup", warmup, "untimed prefill tokens first (kernel and cuBLAS setup)");
  bool profile = false;
  app.add_flag("--profile", profile, "after each timed run, a second one with per-stage GPU times (CUDA events)");
  CLI11_PARSE(app, argc, argv);

  try {
    const std::vector<Run> runs = parse_runs(runs_text);
    int64_t context = std::max(warmup, decode_after + decode_tokens * (profile ? 2 : 1));
    for (const Run& r : runs) context = std::max(context, r.tokens);

    SessionOptions options;
    options.context = context;
    options.chunk_size = chunk;
    auto t = Clock::now();
    const ModelConfig config = load_model_config(model_dir);
    CudaSession session(config, open_any_checkpoint(model_dir, DType::bf16), options);
    emit({{"event", "loaded"}, {"ms", ms_since(t)}, {"context", context}});

    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(0, int32_t(config.vocab_size - 1));
    auto random_ids = [&](int64_t n) {
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int32_t& id : ids) id = token(rng);
      return ids;
    };
    auto plan_for = [&](AttentionMode mode) {
      AttentionPlan plan;
      plan.params = {.mode = mode, .window = window, .sink = sink, .gamma = gamma};
      return plan;
    };

    if (warmup > 0) {
      session.set_attention(plan_for(AttentionMode::delta));
      session.prefill(random_ids(warmup));
      session.reset();
    }
    for (const Run& r : runs) {
      session.reset();
      session.set_attention(plan_for(r.mode));
      const std::vector<int32_t> ids = random_ids(r.tokens);
      const int64_t run_chunk = r.chunk > 0 ? std::min(r.chunk, chunk) : chunk;
      PrefillOptions prefill_options;
      prefill_options.chunk_size = run_chunk;
      t = Clock::now();
      session.prefill(ids, prefill_options);
      const double ms = ms_since(t);
      emit({{"event", "prefill"}, {"mode", std::string(mode_name(r.mode))}, {"tokens", r.tokens}, {"ms", ms},
            {"tokens_per_s", r.tokens * 1000.0 / ms}, {"chunk", run_chunk}, {"window", window}, {"sink", sink},
            {"gamma", gamma}});
      if (profile) {
        session.reset();
        session.set_profiling(true);
        session.prefill(ids, prefill_options);
        emit({{"event", "profile"}, {"what", "prefill"}, {"mode", std::string(mode_name(r.mode))},
              {"tokens", r.tokens}, {"chunk", run_chunk}, {"stages_ms", stages_json(session.take_profile())}});
        session.set_profiling(false);
      }
    }
    if (decode_tokens > 0) {
      session.reset();
      session.set_attention(plan_for(AttentionMode::delta));
      std::vector<float> logits = session.prefill(random_ids(decode_after));
      t = Clock::now();
      for (int64_t i = 0; i < decode_tokens; ++i) logits = session.decode(argmax(logits));
      const double ms = ms_since(t);
      emit({{"event", "decode"}, {"context", decode_after}, {"tokens", decode_tokens}, {"ms", ms},
            {"tokens_per_s", decode_tokens * 1000.0 / ms}});
      if (profile) {
        session.set_profiling(true);
        for (int64_t i = 0; i < decode_tokens; ++i) logits = session.decode(argmax(logits));
        emit({{"event", "profile"}, {"what", "decode"}, {"context", decode_after + decode_tokens},
              {"tokens", decode_tokens}, {"stages_ms", stages_json(session.take_profile())}});
        session.set_profiling(false);
      }
    }
    const DeviceMemoryReport m = session.memory();
    emit({{"event", "memory"}, {"weights_bytes", m.weights}, {"kv_cache_bytes", m.kv_cache},
          {"workspace_bytes", m.workspace}, {"peak_in_use_bytes", m.peak_in_use}, {"context", context}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dattn_model_cuda_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
