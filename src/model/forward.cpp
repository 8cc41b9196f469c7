#include "dattn/model/forward.h"

#include <algorithm>

namespace dattn::model {

int64_t ForwardBatch::logit_rows() const {
  int64_t n = 0;
  for (const SequenceRows& s : sequences) n += s.rows - s.logits_from;
  return n;
}

void forward_layer(ForwardBackend& backend, const ForwardBatch& batch, int64_t layer) {
  backend.attention_inputs(layer, batch);
  backend.attention(layer, batch);
  backend.attention_output(layer, batch);
  backend.mlp(layer, batch);
}

void run_forward(ForwardBackend& backend, const ForwardBatch& batch, int64_t num_layers, float* logits) {
  backend.embed(batch);
  for (int64_t layer = 0; layer < num_layers; ++layer) forward_layer(backend, batch, layer);
  if (batch.logit_rows() > 0) backend.logits(batch, logits);
}

std::vector<float> prefill_in_chunks(std::span<const int32_t> ids, int64_t chunk, const PrefillOptions& options,
                                     int64_t vocab, const AttentionPlan& plan, int64_t num_layers,
                                     std::vector<LayerAnchorGap>& gaps, const ChunkRunner& run_chunk) {
  const int64_t n = int64_t(ids.size());
  std::vector<float> logits(size_t(options.all_logits ? n * vocab : vocab));
  if (options.chunk_size > 0) chunk = std::min(chunk, options.chunk_size);
  gaps.assign(size_t(num_layers), LayerAnchorGap{});
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    int64_t first_logit_row = rows;  // none
    float* out = logits.data();
    if (options.all_logits) {
      first_logit_row = 0;
      out += start * vocab;
    } else if (start + rows == n) {
      first_logit_row = rows - 1;
    }
    run_chunk(ids.subspan(size_t(start), size_t(rows)), first_logit_row, out);
    if (start == 0 && plan.adaptive_gap_threshold > 0)
      for (LayerAnchorGap& gap : gaps) gap.went_dense = gap.samples > 0 && gap.mean > plan.adaptive_gap_threshold;
    if (options.on_progress) options.on_progress(start + rows, n);
  }
  return logits;
}

AttentionParams layer_attention(const SequenceRows& sequence, int64_t layer, double model_scale) {
  AttentionParams p = sequence.attention ? sequence.attention->for_layer(layer) : AttentionParams{};
  if (sequence.decode || !sequence.attention) p.mode = AttentionMode::dense;
  if (sequence.anchor_gaps && (*sequence.anchor_gaps)[size_t(layer)].went_dense) p.mode = AttentionMode::dense;
  if (p.scale == 0) p.scale = model_scale;
  return p;
}

}  // namespace dattn::model
