#include "dattn/model/forward.h"

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

AttentionParams layer_attention(const SequenceRows& sequence, int64_t layer, double model_scale) {
  AttentionParams p = sequence.attention ? sequence.attention->for_layer(layer) : AttentionParams{};
  if (sequence.decode || !sequence.attention) p.mode = AttentionMode::dense;
  if (sequence.anchor_gaps && (*sequence.anchor_gaps)[size_t(layer)].went_dense) p.mode = AttentionMode::dense;
  if (p.scale == 0) p.scale = model_scale;
  return p;
}

}  // namespace dattn::model
