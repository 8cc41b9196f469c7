// The kernels of block top-k's device selection (block_select.cu), behind plain launchers: block means,
// the top-k of each query block from a chunk of scores, and the per-tile lists of 64-key units. The host
// side (block_select.h/.cpp) allocates, runs the score GEMMs and owns the buffers. Only plain C++17 dattn
// headers here (the .cu compiles as C++17).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "dattn/attn/window_sink.h"

namespace dattn::cuda::detail {

inline constexpr int kUnitKeys = 64;              // kernel_params.h: keys per listed unit
inline constexpr int64_t kMaxDeviceTopk = 128;    // each lane of the top-k kernel holds a list this long

struct SelectGeometry {
  int64_t batch, n_q, n_kv, h_q, h_kv, group, head_dim;
  int64_t block_q, block_k, window, sink, topk;
  int64_t q_blocks, k_blocks, list_capacity;
  int64_t q_row_stride, q_head_stride, q_batch_stride, k_row_stride, k_head_stride, k_batch_stride;
  const void* q;
  const void* k;
};

// The key blocks of query block qb: [0, sink_blocks) and [window_block, last_block] are kept; candidates
// are [sink_blocks, window_block) (none when window_block <= sink_blocks).
using QueryBlockKeys = window_sink::KeyBlocks<int64_t>;

__host__ __device__ inline QueryBlockKeys query_block_keys(const SelectGeometry& g, int64_t qb) {
  const int64_t r0 = qb * g.block_q, r1 = r0 + g.block_q < g.n_q ? r0 + g.block_q : g.n_q;
  return window_sink::key_blocks(g.n_kv - g.n_q + r0, g.n_kv - g.n_q + r1 - 1, g.window, g.sink, g.block_k);
}

void launch_block_means(const SelectGeometry& g, bool bf16, float* key_means, float* query_means,
                        cudaStream_t stream);
// Lists of the query blocks [qb0, qb0 + count) from their scores (row-major, score_stride per block).
void launch_top_blocks(const SelectGeometry& g, int64_t qb0, int64_t count, const float* scores,
                       int64_t score_stride, int32_t* lists, int32_t* list_counts, cudaStream_t stream);
void launch_tile_units(const SelectGeometry& g, int64_t rows, int tile_rows, int64_t query_tiles,
                       const int32_t* lists, const int32_t* list_counts, int64_t unit_capacity, int32_t* units,
                       int32_t* unit_counts, cudaStream_t stream);

}  // namespace dattn::cuda::detail
