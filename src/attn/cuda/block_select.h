// Block top-k on the device (spec "key patterns"; the same selection as dattn::select_key_blocks): block
// means, scores by one fp32 GEMM per chunk of query blocks (cuBLAS), the top-k of each query block, and
// the per-tile lists of 64-key units that the sparse kernels walk (kernel_params.h, block_list). Nothing
// here leaves the device except through selection_to_host (tests, benchmarks).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "dattn/attn/key_pattern.h"
#include "dattn/attn/params.h"
#include "device_scratch.h"
#include "dattn/core/tensor.h"

namespace dattn::cuda::detail {

// Checks what the device selection and the block_list kernels need beyond validate_attention_params (a
// clear error naming the value otherwise): block_q and block_k multiples of 64, topk <= kMaxDeviceTopk.
void check_block_topk_params(const AttentionParams& params);

class DeviceBlockSelection {
 public:
  // Selects for the query blocks that hold rows [0, rows) (all of them for selection_to_host), then builds
  // the unit lists of the query tiles of tile_rows rows (128) that hold rows [0, rows).
  DeviceBlockSelection(const TensorView& q, const TensorView& k, const AttentionParams& params, int64_t rows,
                       int tile_rows, cudaStream_t stream);

  const int32_t* units() const { return units_.data(); }
  const int32_t* unit_counts() const { return unit_counts_.data(); }
  int unit_capacity() const { return int(unit_capacity_); }
  int query_tiles() const { return int(query_tiles_); }
  // The per-(batch, kv head, query block) lists in block_k units, as select_key_blocks returns them
  // (waits for the stream).
  BlockSelection selection_to_host() const;

 private:
  int64_t batch_ = 0, h_kv_ = 0, q_blocks_ = 0, block_q_ = 0, block_k_ = 0, list_capacity_ = 0;
  int64_t query_tiles_ = 0, unit_capacity_ = 0;
  DeviceScratch<int32_t> lists_;        // (batch, h_kv, q_blocks, list_capacity_) key blocks
  DeviceScratch<int32_t> list_counts_;  // (batch, h_kv, q_blocks)
  DeviceScratch<int32_t> units_;        // (batch, h_kv, query_tiles_, unit_capacity_) entries (unit << 2 | owners)
  DeviceScratch<int32_t> unit_counts_;  // (batch, h_kv, query_tiles_)
};

// The device's selection for q and k under params (block top-k), copied to the host: what the sparse
// kernels of a call with these inputs walk (tests compare it with select_key_blocks; benchmarks hand it to
// other implementations).
BlockSelection device_block_selection(const TensorView& q, const TensorView& k, const AttentionParams& params);

}  // namespace dattn::cuda::detail
