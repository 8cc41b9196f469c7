// `dattn demo`: the main job. Runs the embedded model (models/dattn-tiny-16k) on needle-in-a-haystack
// prompts with dense, sparse and delta prefill (dense decode) and shows the answers and prefill times
// side by side: sliding-window prefill loses needles that Δ-corrected prefill finds, at a fraction of
// dense's cost.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "flag_values.h"
#include "model_dir_option.h"
#include "dattn/core/error.h"
#include "dattn/eval/ruler_tasks.h"
#include "dattn/eval/scoring.h"
#include "dattn/model/config.h"
#include "dattn/model/generate.h"
#include "dattn/model/session.h"
#include "dattn/model/tokenizer.h"
#include "embedded_model.h"

namespace dattn::cli {
namespace {

struct DemoFlags {
  std::string model_dir;  // empty: the embedded model
  std::string task = "niah_single_3";
  int64_t length = 16384;
  int64_t samples = 3;
  uint64_t seed = 42;
  std::string attention = "dense,sparse,delta";
  std::string device = "cpu";
  int threads = 0;
  // The paper's window 2048 + sink 1024 at 131K tokens is 1/64 and 1/128 of the context; at the embedded
  // model's 16K the same fractions are 256 and 128 (docs/RESULTS.md shows why the unscaled ones lose
  // little on this 6-layer model).
  SparsityFlags sparsity = [] {
    SparsityFlags s;
    s.window = 256;
    s.sink = 128;
    return s;
  }();
};

struct ModeResult {
  AttentionMode mode;
  int correct = 0;
  double prefill_ms_total = 0;
};

std::string shorten(std::string text, size_t max_chars) {
  for (char& c : text)
    if (c == '\n') c = ' ';
  if (text.size() > max_chars) text = text.substr(0, max_chars - 3) + "...";
  return text;
}

void run_demo(const DemoFlags& f) {
  check_device(f.device);
  const std::filesystem::path dir = f.model_dir.empty() ? embedded_model_dir() : std::filesystem::path(f.model_dir);
  const eval::RulerTask task = eval::parse_ruler_task(f.task);
  DATTN_CHECK(f.samples >= 1, "--samples must be >= 1, got {}", f.samples);
  const std::vector<AttentionMode> modes = parse_mode_list(f.sparsity.modes(f.attention));

  const Tokenizer tokenizer = Tokenizer::load(dir);
  const model::ModelConfig config = model::load_model_config(dir);
  warn_past_model_context(config, f.length, "--length");
  const int64_t max_new = eval::ruler_tokens_to_generate(task);
  model::SessionOptions options;
  options.context = f.length + max_new;
  options.chunk_size = model::kDefaultPrefillChunk;  // as every other command
  options.num_threads = f.threads;
  std::unique_ptr<model::InferenceSession> session = open_session(f.device, dir.string(), options);
  const std::vector<int32_t> stop_ids = model::merged_stop_ids(config.eos_token_ids, tokenizer.eos_ids());

  const auto& sp = f.sparsity;
  fmt::print("dattn demo: {} ({} layers, hidden {}, {} / {} heads), {} on {}\n", dir.string(), config.num_layers,
             config.hidden_size, config.num_heads, config.num_kv_heads, f.task, f.device);
  fmt::print("{} prompts of {} tokens; sparse = window {} + sink {}; delta = sparse + Δ from every {}th row; "
             "decode is dense\n\n",
             f.samples, f.length, sp.window, sp.sink, sp.gamma);

  std::vector<ModeResult> results;
  for (AttentionMode m : modes) results.push_back({m});
  eval::TokenizerCounter counter(tokenizer);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  for (int64_t i = 0; i < f.samples; ++i) {
    const eval::RulerSample sample =
        eval::generate_ruler_sample(task, i, {.target_length = f.length, .seed = f.seed}, counter);
    const std::vector<int32_t> prompt = tokenizer.encode(sample.input, /*add_special_tokens=*/true);
    std::string expected;
    for (const std::string& r : sample.outputs) expected += (expected.empty() ? "" : ", ") + r;
    fmt::print("prompt {}/{} ({} tokens), expected answer: {}\n", i + 1, f.samples, prompt.size(), expected);
    for (ModeResult& r : results) {
      if (tty) fmt::print(stderr, "  {} prefill of {} tokens...\r", mode_name(r.mode), prompt.size());
      std::fflush(stderr);
      model::AttentionPlan plan;
      plan.params = sp.params(r.mode);
      session->reset();
      session->set_attention(plan);
      model::GenerateOptions gen;
      gen.max_new_tokens = max_new;
      gen.stop_ids = stop_ids;
      const model::GenerateResult out = model::generate(*session, prompt, gen);
      if (tty) fmt::print(stderr, "\r\033[K");
      const std::string answer = eval::postprocess_prediction(tokenizer.decode(out.tokens, true));
      const double score = eval::string_match_all(answer, sample.outputs);
      r.correct += score == 1.0;
      r.prefill_ms_total += out.stats.prefill_ms;
      fmt::print("  {:<9} {:<4} prefill {:>8.0f} ms   answer: {}\n", mode_name(r.mode),
                 score == 1.0 ? "ok" : score > 0 ? "part" : "miss", out.stats.prefill_ms, shorten(answer, 60));
    }
    fmt::print("\n");
  }

  const ModeResult* dense = nullptr;
  for (const ModeResult& r : results)
    if (r.mode == AttentionMode::dense) dense = &r;
  fmt::print("{:<10} {:>10} {:>18} {:>18}\n", "mode", "correct", "mean prefill (ms)", "speedup vs dense");
  for (const ModeResult& r : results) {
    const double mean = r.prefill_ms_total / double(f.samples);
    fmt::print("{:<10} {:>6}/{:<3} {:>18.0f} {:>17}\n", mode_name(r.mode), r.correct, f.samples, mean,
               dense ? fmt::format("{:.2f}x", dense->prefill_ms_total / r.prefill_ms_total) : "-");
  }
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto f = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "The embedded model on needle-in-a-haystack prompts: dense vs sparse vs delta prefill, side by side");
  cmd->add_option("--model", f->model_dir, "model directory, .gguf file or cached repo id (default: the embedded models/dattn-tiny-16k)")
      ->transform(model_dir_resolver());
  cmd->add_option("--task", f->task, "RULER needle task of the prompts")->capture_default_str();
  cmd->add_option("--length", f->length, "prompt length in tokens (answer included)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(256), int64_t(1) << 22));
  cmd->add_option("--samples", f->samples, "prompts")->capture_default_str()->check(int_range(1, 1000000));
  cmd->add_option("--seed", f->seed, "seed of the prompts")->capture_default_str()->check(uint64_value());
  cmd->add_option("--attention", f->attention, "modes, comma-separated: dense,sparse,recompute,delta")
      ->capture_default_str();
  add_sparsity_flags(*cmd, f->sparsity);
  cmd->add_option("--device", f->device, "cpu|cuda")->capture_default_str();
  add_threads_flag(*cmd, f->threads);
  cmd->callback([f] { run_demo(*f); });
}

}  // namespace dattn::cli
