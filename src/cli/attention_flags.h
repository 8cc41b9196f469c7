// Flags that several `dattn` commands share, registered and turned into parameters in one place.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dattn/attn/params.h"
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

// How a model command prefills: --attention, the sparsity flags, --tail-min, --dense-layers,
// --layer-modes, --adaptive-gap, --backend, --chunk, --device.
struct PrefillFlags {
  std::string attention = "dense", layer_modes, backend = "auto", device = "cpu";
  SparsityFlags sparsity;
  int64_t tail_min = -1, dense_layers = 0, chunk = 0;  // chunk 0: prefill_chunk() picks by device
  double adaptive_gap = 0;  // AttentionPlan::adaptive_gap_threshold
};
// Rows per prefill forward pass: --chunk when given, else 2048 on the CPU (activations stay in cache) and
// 32768 on the GPU (few enough passes that anchors and GEMMs fill the device; ~150 KB of workspace per
// row for an 8B model).
int64_t prefill_chunk(const PrefillFlags& flags);
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
