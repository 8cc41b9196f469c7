// The CPU KV cache as a pool of fixed-size blocks: per layer (num_blocks, block_tokens, kv_heads, head_dim)
// fp32 for K and for V. A sequence owns a block table; token t of it lives in block table[t / block_tokens]
// at row t % block_tokens. A single-sequence session is the special case of one block of `context` tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dattn/core/tensor.h"

namespace dattn::model {

class PagedKvCache {
 public:
  // shared_layers: every layer uses the same storage (a caller that runs one layer at a time over whole
  // sequences and needs no layer's K/V afterwards, like the fidelity probe). Throws dattn::Error naming the
  // size when the pool cannot be allocated.
  PagedKvCache(int64_t layers, int64_t num_blocks, int64_t block_tokens, int64_t kv_heads, int64_t head_dim,
               bool shared_layers = false);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_tokens() const { return block_tokens_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t row_floats() const { return kv_heads_ * head_dim_; }
  uint64_t bytes() const;

  float* k_row(int64_t layer, int32_t block, int64_t row) { return k_.get() + offset(layer, block, row); }
  float* v_row(int64_t layer, int32_t block, int64_t row) { return v_.get() + offset(layer, block, row); }
  const float* k_row(int64_t layer, int32_t block, int64_t row) const { return k_.get() + offset(layer, block, row); }
  const float* v_row(int64_t layer, int32_t block, int64_t row) const { return v_.get() + offset(layer, block, row); }

  // Copies `rows` rows of K and V (row_floats() each) into positions [position, position + rows).
  void write(int64_t layer, std::span<const int32_t> table, int64_t position, int64_t rows, const float* k,
             const float* v);
  // K and V of positions [0, n_kv) as (1, n_kv, kv_heads, head_dim) views: straight into the pool when the
  // table's blocks follow each other, else gathered into `scratch` (resized as needed).
  std::pair<TensorView, TensorView> view(int64_t layer, std::span<const int32_t> table, int64_t n_kv,
                                         std::vector<float>& scratch) const;

 private:
  int64_t layers_, num_blocks_, block_tokens_, kv_heads_, head_dim_, layer_stride_;
  std::unique_ptr<float[]> k_, v_;
  int64_t offset(int64_t layer, int32_t block, int64_t row) const {
    return layer * layer_stride_ + (int64_t(block) * block_tokens_ + row) * row_floats();
  }
};

// Dense attention of one query row per sequence over its paged K/V (the decode step of a batch):
// q and out (n_seq, h_q, head_dim) fp32, sequence s attends to positions [0, lengths[s]) through
// tables[s]. GQA: query head h reads kv head h / (h_q / h_kv). Parallel over (sequence, kv head).
struct PagedDecodeArgs {
  const float* q;
  float* out;
  std::span<const std::span<const int32_t>> tables;
  std::span<const int64_t> lengths;
  int64_t heads_q;
  double scale;
  int num_threads = 0;
};
void paged_decode_attention(const PagedKvCache& cache, int64_t layer, const PagedDecodeArgs& args);

}  // namespace dattn::model
