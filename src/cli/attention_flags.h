// Flags that several `dattn` commands share, registered and turned into parameters in one place.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dattn/attn/params.h"
#include "dattn/model/config.h"
#include "dattn/model/session.h"

namespace dattn::cli {

// --window, --sink, --gamma (paper defaults), the key pattern (--pattern, --block-q, --block-k, --topk), the
// correction (--correction, which replaces the command's --mode / --attention when given) and --delta-variant.
struct SparsityFlags {
  int64_t window = 2048, sink = 1024, gamma = 64;
  std::string pattern = "window_sink", correction, delta_variant = "repeat";
  int64_t block_q = 64, block_k = 64, topk = 8;
  AttentionParams params(AttentionMode mode) const;  // the other fields at their defaults
  // The mode text to use: --correction's mode name when given, else the command's own mode (list).
  std::string modes(const std::string& given) const;
};
void add_sparsity_flags(CLI::App& cmd, SparsityFlags& flags);
void add_tail_min_flag(CLI::App& cmd, int64_t& tail_min);
// --threads, checked against 0 .. kMaxThreads.
void add_threads_flag(CLI::App& cmd, int& threads);

// The text a flag names: a file, or standard input for "-"; a directory is refused (not read as empty).
std::string read_input_text(std::string_view flag, const std::string& path);
// A warning on stderr when `tokens` exceeds the model's max_position_embeddings.
void warn_past_model_context(const model::ModelConfig& config, int64_t tokens, std::string_view what);

// How a model command prefills: --attention, the sparsity flags, --tail-min, --dense-layers,
// --layer-modes, --adaptive-gap, --backend, --chunk, --device.
struct PrefillFlags {
  std::string attention = "dense", layer_modes, backend = "auto", device = "cpu";
  SparsityFlags sparsity;
  int64_t tail_min = -1, dense_layers = 0, chunk = 0;  // chunk 0: model::kDefaultPrefillChunk
  double adaptive_gap = 0;  // AttentionPlan::adaptive_gap_threshold
};
// Rows per prefill forward pass: --chunk when given, else model::kDefaultPrefillChunk (the same on every
// device and in generate, logits, demo and eval, so one prompt gives the same logits everywhere).
int64_t prefill_chunk(const PrefillFlags& flags);
void add_chunk_flag(CLI::App& cmd, int64_t& chunk);
void add_prefill_flags(CLI::App& cmd, PrefillFlags& flags);
// Throws dattn::Error naming a bad mode, backend or layer spec.
model::AttentionPlan attention_plan(const PrefillFlags& flags);
// "dense,sparse,delta" -> modes; throws dattn::Error naming a bad mode or an empty list.
std::vector<AttentionMode> parse_mode_list(const std::string& text);
// Throws unless device is "cpu", or "cuda" with a CUDA build and a GPU present.
void check_device(const std::string& device);
// A session on the device ("cpu": Session over the loaded model, "cuda": CudaSession) for a model directory.
std::unique_ptr<model::InferenceSession> open_session(const std::string& device, const std::string& model_dir,
                                                      model::SessionOptions options);

}  // namespace dattn::cli
