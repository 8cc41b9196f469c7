// Dense attention of one new token over the whole KV cache (decode), split over the keys so that every
// SM streams a slice of the cache (flash-decoding): the prefill kernels tile 128 query rows, which a
// single row would leave idle. Query heads of one kv head share each K/V read (GQA). The same kernel
// serves a batch of sequences whose K/V sit in the blocks of a paged pool (block tables).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dattn::model::cuda_detail {

inline constexpr int kDecodeMaxGroup = 8;        // query heads per kv head the kernel packs
inline constexpr int64_t kDecodeSplitKeys = 512;  // keys per split

struct DecodeAttentionArgs {
  const uint16_t* q;  // (num_seqs, h_q, head_dim) bf16, one token per sequence
  const uint16_t* k;  // (n_kv, h_kv, head_dim) bf16, rows contiguous; paged: (blocks, block_tokens, h_kv, head_dim)
  const uint16_t* v;
  uint16_t* out;      // (num_seqs, h_q, head_dim) bf16
  int64_t n_kv;       // keys of the one sequence; paged: the longest sequence's
  int heads_q, heads_kv, head_dim;  // head_dim 64 or 128
  float scale;
  float* partials;    // decode_partials_floats() floats of scratch
  // paged batch: sequence s attends to keys [0, seq_lengths[s]) held by the blocks
  // block_tables[s * max_blocks ..] (device memory); null block_tables: one contiguous sequence
  int num_seqs = 1;
  const int32_t* block_tables = nullptr;
  const int64_t* seq_lengths = nullptr;
  int max_blocks = 0;
  int block_tokens = 0;
};

// Scratch the split results need for num_seqs sequences of at most n_kv keys.
int64_t decode_partials_floats(int64_t n_kv, int heads_q, int head_dim, int num_seqs = 1);

void decode_attention(const DecodeAttentionArgs& args, cudaStream_t stream);

}  // namespace dattn::model::cuda_detail
