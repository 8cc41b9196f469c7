// Launchers of the forward pass's small fused kernels (everything but the GEMMs and attention).
// bf16 tensors travel as uint16_t bits; all math is fp32. Rows are tokens, row-major.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dattn::model::cuda_detail {

// out[r] = float(table[ids[r]]): the embeddings of `rows` token ids into the fp32 residual stream.
void embed_rows(const int32_t* ids, const uint16_t* table, int64_t rows, int64_t hidden, float* out,
                cudaStream_t stream);

// out[r] = bf16(x[r] * rsqrt(mean(x[r]^2) + eps) * weight), the pre-norm of a block (transformers' RMSNorm).
void rms_norm_to_bf16(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, uint16_t* out,
                      cudaStream_t stream);

// Everything between the q/k/v GEMM and attention, one pass over its bf16 output (rows, q_dim + 2 kv_dim;
// bf16 as transformers' projections round, and half the bytes of fp32 through this memory-bound pass):
// bias (Qwen2), per-head RMSNorm of q and k (Qwen3), rotary embedding of q and k at positions
// first_position + r (rotate_half pairing, fp32 angles as transformers computes them), then bf16 stores:
// q into (rows, h_q, padded_head_dim), k and v into the cache rows first_position.. of this layer
// (context, h_kv, padded_head_dim). Padding lanes are never written (they stay zero).
struct QkvEpilogueArgs {
  const uint16_t* qkv;
  const float* bias;    // null: none
  const float* q_norm;  // null: no q/k norm
  const float* k_norm;
  float norm_eps;
  const float* inv_freq;  // (head_dim / 2)
  int64_t rows, first_position;
  int heads_q, heads_kv, head_dim, padded_head_dim;
  uint16_t* q_out;
  uint16_t* k_cache;
  uint16_t* v_cache;
  // a batch of sequences: row r sits at positions[r] and its K/V go to cache row cache_rows[r] (device
  // arrays); null: position first_position + r, cache row = position
  const int32_t* positions = nullptr;
  const int64_t* cache_rows = nullptr;
};
void qkv_epilogue(const QkvEpilogueArgs& args, cudaStream_t stream);

// out[r, i] = bf16(silu(gate[r, i] + bg[i]) * (up[r, i] + bu[i])); gate_up is (rows, 2 * inter) with the
// gate half first; bias (2 * inter) may be null.
void swiglu(const uint16_t* gate_up, const float* bias, int64_t rows, int64_t inter, uint16_t* out,
            cudaStream_t stream);

// out[j] = pool[table[j / block_tokens] * block_tokens + j % block_tokens] for rows j < rows of row_elems
// bf16 each (row_elems a multiple of 8): a sequence's K or V read out of a paged pool in order.
void gather_rows(const uint16_t* pool, const int32_t* table, int64_t rows, int64_t block_tokens, int64_t row_elems,
                 uint16_t* out, cudaStream_t stream);

// x[r, i] += bias[i] over (rows, n).
void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream);

}  // namespace dattn::model::cuda_detail
