#include "attention_flags.h"

#include <algorithm>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
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
  cmd.add_option("--window", flags.window, "sliding window of sparse attention")->capture_default_str();
  cmd.add_option("--sink", flags.sink, "sink keys of sparse attention")->capture_default_str();
  cmd.add_option("--gamma", flags.gamma, "delta anchor stride")->capture_default_str();
  cmd.add_option("--pattern", flags.pattern, "key pattern of sparse rows: window_sink|block_topk")->capture_default_str();
  cmd.add_option("--block-q", flags.block_q, "block_topk: query rows per block")->capture_default_str();
  cmd.add_option("--block-k", flags.block_k, "block_topk: keys per block")->capture_default_str();
  cmd.add_option("--topk", flags.topk, "block_topk: best-scoring key blocks kept beyond sink, window, diagonal")
      ->capture_default_str();
  cmd.add_option("--correction", flags.correction,
                 "none|recompute|delta over the pattern (replaces --mode/--attention; none = sparse)");
  cmd.add_option("--delta-variant", flags.delta_variant, "delta over a block: repeat (paper)|interpolate")
      ->capture_default_str();
}

void add_prefill_flags(CLI::App& cmd, PrefillFlags& flags) {
  cmd.add_option("--attention", flags.attention, "prefill attention: dense|sparse|recompute|delta")
      ->capture_default_str();
  add_sparsity_flags(cmd, flags.sparsity);
  cmd.add_option("--tail-min", flags.tail_min, "minimum dense tail rows (default max(128, gamma))");
  cmd.add_option("--dense-layers", flags.dense_layers, "first N layers prefill densely")->capture_default_str();
  cmd.add_option("--layer-modes", flags.layer_modes, "per-layer modes, e.g. 0-1:dense,31:recompute");
  cmd.add_option("--adaptive-gap", flags.adaptive_gap,
                 "delta layers whose anchor gap on the prompt's first chunk exceeds this prefill the rest densely "
                 "(0 = off; cpu)")
      ->capture_default_str();
  cmd.add_option("--backend", flags.backend, "attention backend: auto|reference|cpu|cuda")->capture_default_str();
  cmd.add_option("--chunk", flags.chunk, "prefill chunk size in tokens (0: 2048 on cpu, 32768 on cuda)")
      ->capture_default_str();
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
  return plan;
}

int64_t prefill_chunk(const PrefillFlags& flags) {
  DATTN_CHECK(flags.chunk >= 0, "--chunk must be >= 0, got {}", flags.chunk);
  if (flags.chunk > 0) return flags.chunk;
  return flags.device == "cuda" ? 32768 : 2048;
}

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
  DATTN_CHECK(device == "cpu" || options.attention.adaptive_gap_threshold == 0,
              "--adaptive-gap needs the anchor gap, which only the cpu runtime measures (--device cpu)");
  if (device == "cuda") return model::make_cuda_session(model_dir, std::move(options));
  return std::make_unique<model::Session>(model::Model::load(model_dir), std::move(options));
}

void check_device(const std::string& device) {
  if (device == "cpu") return;
  DATTN_CHECK(device == "cuda", "--device must be cpu or cuda, got '{}'", device);
  DATTN_CHECK(cuda::available(), "--device cuda: this build has no CUDA support or no GPU is present; use --device cpu");
}

}  // namespace dattn::cli
