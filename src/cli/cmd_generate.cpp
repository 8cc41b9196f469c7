// `dattn generate`: tokenizes a prompt, prefills it (dense or Delta Attention), streams the continuation.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "flag_values.h"
#include "model_dir_option.h"
#include "dattn/attn/params.h"
#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "dattn/model/generate.h"
#include "dattn/model/sampler.h"
#include "dattn/model/tokenizer.h"

namespace dattn::cli {
namespace {

struct GenerateFlags {
  std::string model_dir, prompt, prompt_file, system;
  bool chat = false;
  PrefillFlags prefill;
  int64_t max_new_tokens = 128, context = 0;
  // unset: generation_config.json decides (greedy unless it says do_sample)
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  bool greedy = false, verbose = false;
  uint64_t seed = 0;
  int threads = 0;
};

// Redraws one stderr line: a bar, tokens done, tokens/s and the time left at that rate.
class PrefillProgress {
 public:
  explicit PrefillProgress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  void update(int64_t done, int64_t total) {
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? done / seconds : 0;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    constexpr int kWidth = 30;
    const int filled = int(kWidth * done / std::max<int64_t>(total, 1));
    fmt::print(stderr, "\rprefill [{}{}] {}/{} tokens  {:.0f} tok/s  ETA {:.1f}s ", std::string(size_t(filled), '#'),
               std::string(size_t(kWidth - filled), '.'), done, total, rate, eta);
    if (done == total) fmt::print(stderr, "\r\033[K");  // leave the line clean for the output
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};


// The flags win; without any, generation_config.json's do_sample / temperature / top_k / top_p (as
// transformers' generate() would use them); --greedy forces argmax.
model::SamplingParams sampling_params(const GenerateFlags& f, const model::ModelConfig::GenerationDefaults& g) {
  model::SamplingParams p{.seed = f.seed};
  if (f.greedy) {
    DATTN_CHECK(!f.temperature && !f.top_k && !f.top_p, "--greedy cannot be combined with --temperature, --top-k or --top-p");
    return p;
  }
  const bool any_flag = f.temperature || f.top_k || f.top_p;
  if (!any_flag && !g.do_sample) return p;  // greedy
  const bool from_config = !any_flag || g.do_sample;
  p.temperature = f.temperature.value_or(from_config ? g.temperature : 1.0);
  p.top_k = f.top_k.value_or(from_config ? g.top_k : 0);
  p.top_p = f.top_p.value_or(from_config ? g.top_p : 1.0);
  return p;
}

std::string describe(const model::SamplingParams& p) {
  if (p.temperature <= 0) return "greedy";
  if (p.temperature < model::kGreedyBelowTemperature)
    return fmt::format("greedy (temperature {} is below {})", p.temperature, model::kGreedyBelowTemperature);
  return fmt::format("temperature {}, top-k {}, top-p {}, seed {}", p.temperature, p.top_k, p.top_p, p.seed);
}

// Per delta layer: the anchor gap ||dense(a) - sparse(a)|| / ||dense(a)|| of the prefill (--verbose).
void print_anchor_gaps(const std::vector<model::LayerAnchorGap>& gaps) {
  bool any = false;
  for (const auto& g : gaps) any = any || g.samples > 0;
  if (!any) {
    fmt::print(stderr, "anchor gap: none measured (needs a delta layer whose prefill has anchors)\n");
    return;
  }
  fmt::print(stderr, "anchor gap per layer (mean over heads and anchors, largest head mean):\n");
  for (size_t layer = 0; layer < gaps.size(); ++layer) {
    const auto& g = gaps[layer];
    if (g.samples == 0) continue;
    fmt::print(stderr, "  layer {:>3}: mean {:.4f}  max head {:.4f}{}\n", layer, g.mean, g.max_head_mean,
               g.went_dense ? "  (adaptive: dense after the first chunk)" : "");
  }
}

void run_generate(const GenerateFlags& f) {
  check_device(f.prefill.device);
  model::AttentionPlan plan = attention_plan(f.prefill);
  plan.report_anchor_gap = f.verbose;
  const std::string prompt = f.prompt_file.empty() ? f.prompt : read_input_text("--prompt-file", f.prompt_file);

  Tokenizer tokenizer = Tokenizer::load(f.model_dir);
  std::vector<int32_t> ids;
  if (f.chat) {
    std::vector<ChatMessage> messages;
    if (!f.system.empty()) messages.push_back({"system", f.system});
    messages.push_back({"user", prompt});
    ids = tokenizer.encode_chat(messages, /*add_generation_prompt=*/true);
  } else {
    DATTN_CHECK(f.system.empty(), "--system needs --chat");
    ids = tokenizer.encode(prompt, /*add_special_tokens=*/true);
  }
  DATTN_CHECK(!ids.empty(), "the prompt encodes to no tokens");

  const model::ModelConfig config = model::load_model_config(f.model_dir);
  DATTN_CHECK(tokenizer.vocab_size() <= config.vocab_size, "the tokenizer has {} ids but the model's vocab_size is {}",
              tokenizer.vocab_size(), config.vocab_size);
  model::SessionOptions session_options;
  session_options.context = f.context > 0 ? f.context : int64_t(ids.size()) + f.max_new_tokens;
  session_options.chunk_size = prefill_chunk(f.prefill);
  session_options.attention = plan;
  session_options.num_threads = f.threads;
  DATTN_CHECK(int64_t(ids.size()) <= session_options.context,
              "the prompt has {} tokens, more than --ctx {} (raise --ctx)", ids.size(), session_options.context);
  warn_past_model_context(config, session_options.context, "the context (prompt + --max-new-tokens)");
  std::unique_ptr<model::InferenceSession> session = open_session(f.prefill.device, f.model_dir, session_options);

  model::GenerateOptions options;
  options.max_new_tokens = f.max_new_tokens;
  options.sampling = sampling_params(f, config.generation);
  options.stop_ids = model::merged_stop_ids(config.eos_token_ids, tokenizer.eos_ids());
  PrefillProgress progress(::isatty(STDERR_FILENO) != 0);
  options.on_prefill_progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
  StreamDecoder stream(tokenizer, /*skip_special_tokens=*/true);
  options.on_token = [&](int32_t id) {
    std::string piece = stream.push(id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };

  model::GenerateResult result = model::generate(*session, ids, options);
  std::string tail = stream.finish();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);

  const model::GenerateStats& s = result.stats;
  fmt::print(stderr,
             "prefill: {} tokens in {:.1f} ms ({:.1f} tok/s, attention {})\n"
             "decode: {} tokens, {:.1f} tok/s{}, {}\n"
             "peak memory: {:.1f} MiB (KV cache {:.1f} MiB){}\n",
             s.prompt_tokens, s.prefill_ms, s.prefill_tokens_per_s(), f.prefill.attention, s.generated_tokens,
             s.decode_tokens_per_s(),
             s.stopped_by_stop_token ? " (stop token)" : (s.stopped_by_context ? " (context full)" : ""),
             describe(options.sampling),
             double(model::peak_resident_bytes()) / (1 << 20), double(session->kv_cache_bytes()) / (1 << 20),
             session->peak_device_bytes() ? fmt::format(", peak GPU memory in use {:.1f} MiB",
                                                        double(session->peak_device_bytes()) / (1 << 20))
                                          : std::string());
  if (f.verbose) print_anchor_gaps(session->anchor_gaps());
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with a Hugging Face Llama/Mistral/Qwen model directory");
  cmd->add_option("--model", f->model_dir, "model directory (config.json, *.safetensors, tokenizer.json) or a .gguf file")
      ->required()
      ->transform(model_dir_resolver());
  auto* prompt = cmd->add_option("--prompt", f->prompt, "prompt text");
  auto* prompt_file = cmd->add_option("--prompt-file", f->prompt_file, "file holding the prompt text (- reads stdin)");
  prompt->excludes(prompt_file);
  prompt_file->excludes(prompt);
  cmd->add_flag("--chat", f->chat, "wrap the prompt in the model's chat template (llama3, mistral, chatml)");
  cmd->add_option("--system", f->system, "system message (with --chat)");
  add_prefill_flags(*cmd, f->prefill);
  cmd->add_option("--max-new-tokens", f->max_new_tokens, "tokens to generate at most")
      ->capture_default_str()
      ->check(int_range(0, int64_t(1) << 30));
  cmd->add_option("--ctx", f->context, "context (KV cache) size in tokens (0 = prompt + max new tokens)")
      ->check(int_range(0, int64_t(1) << 31));
  cmd->add_option("--temperature", f->temperature,
                  fmt::format("sampling temperature; 0 or below {} = greedy (default: generation_config.json, greedy "
                              "unless do_sample)",
                              model::kGreedyBelowTemperature))
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--top-k", f->top_k, "keep the k most likely tokens, 0 = all (default: generation_config.json)")
      ->check(int_range(0, std::numeric_limits<int32_t>::max()));
  cmd->add_option("--top-p", f->top_p, "nucleus sampling mass, 1 = all (default: generation_config.json)")
      ->check(positive_number(1.0));
  cmd->add_flag("--greedy", f->greedy, "argmax decoding whatever generation_config.json says");
  cmd->add_option("--seed", f->seed, "sampling seed")->capture_default_str()->check(uint64_value());
  add_threads_flag(*cmd, f->threads);
  cmd->add_flag("--verbose", f->verbose, "after the prefill, print each delta layer's anchor gap");
  cmd->callback([f, prompt, prompt_file] {
    DATTN_CHECK(prompt->count() + prompt_file->count() == 1, "give the prompt with --prompt or --prompt-file");
    run_generate(*f);
  });
}

}  // namespace dattn::cli
