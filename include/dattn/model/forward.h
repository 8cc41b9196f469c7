// The forward pass of a decoder-only transformer, written once: the layer loop over a batch of rows that
// may belong to several sequences (a prefill chunk of one, decode steps of others). A backend (the CPU's
// CpuForward, the GPU session's) supplies the stages; the loop and the batch description are shared.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dattn/model/session.h"

namespace dattn::model {

// The rows of one sequence inside a forward batch.
struct SequenceRows {
  int64_t first_row = 0;  // first row of the batch that belongs to this sequence
  int64_t rows = 0;
  int64_t position = 0;   // tokens of this sequence already cached: its rows sit at position, position + 1, ...
  bool decode = false;    // a one-token step: dense attention over the cache (spec: decode is always dense)
  int64_t logits_from = 0;  // logits of rows [logits_from, rows) of this sequence; logits_from == rows: none
  const AttentionPlan* attention = nullptr;  // prefill attention (unused for decode)
  std::span<const int32_t> block_table;      // the KV cache blocks that hold this sequence, in order
  // Per layer, this sequence's anchor gaps (the plan's report_anchor_gap / adaptive policy); a layer marked
  // went_dense prefills densely. nullptr: not measured (a backend that cannot measure ignores it).
  std::vector<LayerAnchorGap>* anchor_gaps = nullptr;
};

struct ForwardBatch {
  std::span<const int32_t> ids;         // one token per row
  std::vector<SequenceRows> sequences;  // disjoint runs of rows covering ids, in row order
  int64_t rows() const { return int64_t(ids.size()); }
  int64_t logit_rows() const;           // rows with logits, summed over the sequences
};

// The stages of one layer as a device computes them. Activations live in the backend.
class ForwardBackend {
 public:
  virtual ~ForwardBackend() = default;
  virtual void embed(const ForwardBatch& batch) = 0;  // token embeddings into the residual stream
  // input norm, q/k/v projections, (q/k norm), RoPE; K and V into the sequences' cache blocks
  virtual void attention_inputs(int64_t layer, const ForwardBatch& batch) = 0;
  virtual void attention(int64_t layer, const ForwardBatch& batch) = 0;
  virtual void attention_output(int64_t layer, const ForwardBatch& batch) = 0;  // o_proj + residual
  virtual void mlp(int64_t layer, const ForwardBatch& batch) = 0;  // post-attention norm, SwiGLU + residual
  // final norm and lm_head of the rows with logits, (logit_rows, vocab) row-major in sequence order
  virtual void logits(const ForwardBatch& batch, float* out) = 0;
  // Per-stage device time of the passes run while profiling is on (a GPU backend; others measure nothing):
  // switch on or off, and read the running totals (ms per stage, in order of first appearance).
  virtual void set_stage_profiling(bool /*enabled*/) {}
  virtual std::vector<std::pair<std::string, double>> stage_profile() { return {}; }
};

void forward_layer(ForwardBackend& backend, const ForwardBatch& batch, int64_t layer);
void run_forward(ForwardBackend& backend, const ForwardBatch& batch, int64_t num_layers, float* logits);

// The chunked prefill of one sequence, written once for every session: chunks of at most `chunk` rows
// (PrefillOptions::chunk_size may lower it), logits of the last row or of every row, progress, and the
// adaptive policy (after the first chunk, a layer whose mean anchor gap exceeds the plan's threshold is
// marked went_dense, so the rest of the prompt prefills it densely). `gaps` is reset to one entry a layer;
// run_chunk(ids, first_logit_row, logits) runs one chunk with `gaps` as its sequence's anchor_gaps.
using ChunkRunner = std::function<void(std::span<const int32_t> ids, int64_t first_logit_row, float* logits)>;
std::vector<float> prefill_in_chunks(std::span<const int32_t> ids, int64_t chunk, const PrefillOptions& options,
                                     int64_t vocab, const AttentionPlan& plan, int64_t num_layers,
                                     std::vector<LayerAnchorGap>& gaps, const ChunkRunner& run_chunk);

// The attention parameters of a sequence's rows in a layer: the plan's, dense for a decode step or a layer
// the adaptive policy switched to dense, the model's softmax scale unless the plan sets one.
AttentionParams layer_attention(const SequenceRows& sequence, int64_t layer, double model_scale);

}  // namespace dattn::model
