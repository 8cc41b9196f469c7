// The CPU backend of the forward pass: fp32 activations for up to max_rows rows, OpenBLAS projections
// over the whole batch (one GEMM per weight), K/V into a PagedKvCache, prefill attention through the
// Delta Attention operator (continued prefill over the cache), decode rows through paged_decode_attention.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "dattn/model/forward.h"
#include "dattn/model/model.h"
#include "dattn/model/paged_kv.h"

namespace dattn::model {

class CpuForward final : public ForwardBackend {
 public:
  // attention_chunk: a sequence's prefill rows go to the operator in calls of at most this many rows
  // (continued prefill), so a batch of more rows than that gets the row plan of that chunking.
  CpuForward(const Model& model, PagedKvCache& cache, int64_t max_rows, int64_t attention_chunk, int num_threads);

  void embed(const ForwardBatch& batch) override;
  void attention_inputs(int64_t layer, const ForwardBatch& batch) override;
  void attention(int64_t layer, const ForwardBatch& batch) override;
  void attention_output(int64_t layer, const ForwardBatch& batch) override;
  void mlp(int64_t layer, const ForwardBatch& batch) override;
  void logits(const ForwardBatch& batch, float* out) override;

  int64_t max_rows() const { return max_rows_; }
  // The batch's residual stream (rows, hidden) and the current layer's attention output (rows, h_q * d).
  const float* residual() const { return x_.data(); }
  const float* attention_result() const { return attn_.data(); }
  // Called after every prefill attention call with its arguments and the batch row of its first query
  // (the fidelity probe runs a second mode on the same q, k, v). Empty: not called.
  std::function<void(int64_t layer, int64_t first_row, const TensorView& q, const TensorView& k, const TensorView& v,
                     const AttentionParams& params)>
      on_prefill_attention;

 private:
  const Model& model_;
  PagedKvCache& cache_;
  int64_t max_rows_, attention_chunk_, mlp_rows_;
  int threads_;
  std::vector<float> x_, normed_, q_, k_, v_, attn_, gate_, up_, cos_, sin_;
  std::vector<float> kv_scratch_, decode_q_, decode_out_;
};

}  // namespace dattn::model
