// Dense attention of one new token over the whole KV cache (decode), split over the keys so that every
// SM streams a slice of the cache (flash-decoding): the prefill kernels tile 128 query rows, which a
// single row would leave idle. Query heads of one kv head share each K/V read (GQA).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dattn::model::cuda_detail {

inline constexpr int kDecodeMaxGroup = 8;        // query heads per kv head the kernel packs
inline constexpr int64_t kDecodeSplitKeys = 512;  // keys per split

struct DecodeAttentionArgs {
  const uint16_t* q;  // (h_q, head_dim) bf16, one token
  const uint16_t* k;  // (n_kv, h_kv, head_dim) bf16, rows contiguous
  const uint16_t* v;
  uint16_t* out;      // (h_q, head_dim) bf16
  int64_t n_kv;
  int heads_q, heads_kv, head_dim;  // head_dim 64 or 128
  float scale;
  float* partials;    // decode_partials_floats() floats of scratch
};

// Scratch the split results need for a context of n_kv keys.
int64_t decode_partials_floats(int64_t n_kv, int heads_q, int head_dim);

void decode_attention(const DecodeAttentionArgs& args, cudaStream_t stream);

}  // namespace dattn::model::cuda_detail
