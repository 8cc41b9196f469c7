#include "attention_flags.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <sstream>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "flag_values.h"
#include "dattn/model/cuda_session.h"

namespace dattn::cli {

AttentionParams SparsityFlags::params(AttentionMode mode) const {
  AttentionParams p;
  p.mode = mode;
  p.window = window;
  p.sink = sink;
  p.gamma = gamma;
  p.pattern = parse_pattern(pattern);
  p.block_q = block_q;
  p.block_k = block_k;
  p.topk = topk;
  p.delta_variant = parse_delta_variant(delta_variant);
  return p;
}

std::string SparsityFlags::modes(const std::string& given) const {
  return correction.empty() ? given : std::string(mode_name(parse_correction(correction)));
}

void add_sparsity_flags(CLI::App& cmd, SparsityFlags& flags) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  cmd.add_option("--window", flags.window, "sliding window of sparse attention (>= the length: dense)")
      ->capture_default_str()
      ->check(int_range(1, kMax));
  cmd.add_option("--sink", flags.sink, "sink keys of sparse attention")->capture_default_str()->check(int_range(0, kMax));
  cmd.add_option("--gamma", flags.gamma, "delta anchor stride")->capture_default_str()->check(int_range(1, kMax));
  cmd.add_option("--pattern", flags.pattern, "key pattern of sparse rows: window_sink|block_topk")->capture_default_str();
  cmd.add_option("--block-q", flags.block_q, "block_topk: query rows per block")->capture_default_str()->check(int_range(1, kMax));
  cmd.add_option("--block-k", flags.block_k, "block_topk: keys per block")->capture_default_str()->check(int_range(1, kMax));
  cmd.add_option("--topk", flags.topk, "block_topk: best-scoring key blocks kept beyond sink, window, diagonal")
      ->capture_default_str()
      ->check(int_range(0, kMax));
  cmd.add_option("--correction", flags.correction,
                 "none|recompute|delta over the pattern (replaces --mode/--attention; none = sparse)");
  cmd.add_option("--delta-variant", flags.delta_variant, "delta over a block: repeat (paper)|interpolate")
      ->capture_default_str();
}

void add_tail_min_flag(CLI::App& cmd, int64_t& tail_min) {
  cmd.add_option("--tail-min", tail_min, "minimum dense tail rows (default max(128, gamma); >= the chunk: all dense)")
      ->check(int_range(0, std::numeric_limits<int64_t>::max()));
}

void add_threads_flag(CLI::App& cmd, int& threads) {
  cmd.add_option("--threads", threads, "CPU threads (0 = all cores)")->check(int_range(0, kMaxThreads));
}

std::string read_input_text(std::string_view flag, const std::string& path) {
  if (path == "-") {
    std::ostringstream text;
    text << std::cin.rdbuf();
    DATTN_CHECK(!std::cin.bad(), "{} -: cannot read standard input", flag);
    return text.str();
  }
  std::error_code ec;
  DATTN_CHECK(!std::filesystem::is_directory(path, ec), "{} '{}' is a directory; give a text file (or - for stdin)",
              flag, path);
  return read_text_file(path);
}

void warn_past_model_context(const model::ModelConfig& config, int64_t tokens, std::string_view what) {
  if (config.max_position_embeddings <= 0 || tokens <= config.max_position_embeddings) return;
  fmt::print(stderr,
             "dattn: warning: {} has {} tokens, more than the model's max_position_embeddings {} (config.json): "
             "positions past it were never trained and the output is likely meaningless\n",
             what, tokens, config.max_position_embeddings);
}

void add_prefill_flags(CLI::App& cmd, PrefillFlags& flags) {
  cmd.add_option("--attention", flags.attention, "prefill attention: dense|sparse|recompute|delta")
      ->capture_default_str();
  add_sparsity_flags(cmd, flags.sparsity);
  add_tail_min_flag(cmd, flags.tail_min);
  cmd.add_option("--dense-layers", flags.dense_layers, "first N layers prefill densely")
      ->capture_default_str()
      ->check(int_range(0, int64_t(1) << 20));
  cmd.add_option("--layer-modes", flags.layer_modes, "per-layer modes, e.g. 0-1:dense,31:recompute");
  cmd.add_option("--adaptive-gap", flags.adaptive_gap,
                 "delta layers whose anchor gap on the prompt's first chunk exceeds this prefill the rest densely "
                 "(0 = off)")
      ->capture_default_str();
  cmd.add_option("--backend", flags.backend, "attention backend: auto|reference|cpu|cuda")->capture_default_str();
  add_chunk_flag(cmd, flags.chunk);
  cmd.add_option("--device", flags.device, "cpu|cuda")->capture_default_str();
}

model::AttentionPlan attention_plan(const PrefillFlags& flags) {
  model::AttentionPlan plan;
  plan.params = flags.sparsity.params(parse_mode(flags.sparsity.modes(flags.attention)));
  plan.params.tail_min = flags.tail_min;
  plan.params.backend = parse_backend(flags.backend);
  plan.dense_first_layers = flags.dense_layers;
  plan.adaptive_gap_threshold = flags.adaptive_gap;
  plan.add_layer_modes(flags.layer_modes);
  validate_attention_params(plan.params);
  return plan;
}

void add_chunk_flag(CLI::App& cmd, int64_t& chunk) {
  cmd.add_option("--chunk", chunk,
                 fmt::format("prefill chunk size in tokens (0: {}, on every device and in every command)",
                             model::kDefaultPrefillChunk))
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 31));
}

int64_t prefill_chunk(const PrefillFlags& flags) { return model::prefill_chunk_or_default(flags.chunk); }

std::vector<AttentionMode> parse_mode_list(const std::string& text) {
  std::vector<AttentionMode> modes;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    if (end > begin) modes.push_back(parse_mode(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  DATTN_CHECK(!modes.empty(), "the list of attention modes '{}' names no mode", text);
  return modes;
}

std::unique_ptr<model::InferenceSession> open_session(const std::string& device, const std::string& model_dir,
                                                      model::SessionOptions options) {
  check_device(device);
  if (device == "cuda") return model::make_cuda_session(model_dir, std::move(options));
  return std::make_unique<model::Session>(model::Model::load(model_dir), std::move(options));
}

void check_device(const std::string& device) {
  if (device == "cpu") return;
  DATTN_CHECK(device == "cuda", "--device must be cpu or cuda, got '{}'", device);
  DATTN_CHECK(cuda::available(), "--device cuda: this build has no CUDA support or no GPU is present; use --device cpu");
}

}  // namespace dattn::cli
