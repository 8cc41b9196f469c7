// Host side of split-KV for the dense-rows kernel (device side: split_kv.cuh): how many key chunks each
// query tile is cut into, and the scratch the partials need. No CUDA types here.
#pragma once
#include <cstddef>

#include "dattn/attn/params.h"
#include "kernel_params.h"

namespace dattn::cuda::detail {

inline constexpr int kKeyTileKeys = 64;  // TileShape::kBlockN (static_assert in launch_kernels.cuh)
inline constexpr int kCtasPerSm = 2;     // TileShape::kMinBlocksPerSm: CTAs resident per SM
inline constexpr int kWsCtasPerSm = 1;   // WsTileShape::kMinBlocksPerSm (the warp-specialised kernels)
#ifndef DATTN_CUDA_WS_BLOCK_N
#define DATTN_CUDA_WS_BLOCK_N 128
#endif
inline constexpr int kWsKeyTileKeys = DATTN_CUDA_WS_BLOCK_N;  // WsTileShape::kBlockN
// Split only while the grid is smaller than this many full waves of resident CTAs (batch * h_q * tiles <
// kTargetWaves * sm_count * kCtasPerSm): a larger grid already keeps every SM busy (one-shot prefill at 128K
// has 17 dense-row tiles per head, 544 CTAs for 32 heads).
inline constexpr int kTargetWaves = 2;
// At most this many waves of split CTAs: bounds the partials' scratch (128 * (head_dim + 1) floats per CTA).
inline constexpr int kMaxSplitWaves = 4;
// A chunk shorter than this (1024 keys) spends more on its pipeline ramp and partial store than it saves.
inline constexpr int kMinKeyTilesPerSplit = 16;
// What a chunk costs beyond its key tiles (the unoverlapped first K/V load, the Q load, the partial store),
// in key tiles: the planner's cost model (split_kv.cpp).
inline constexpr int kSplitOverheadTiles = 2;
inline constexpr int kMaxKvSplits = kMaxCudaKvSplits;  // CudaKernelConfig::kv_splits

struct SplitPlan {
  int kv_splits = 1;        // 1: the unsplit kernel
  int split_key_tiles = 0;  // key tiles per chunk
};

// The plan for the dense-rows tiles in p (contiguous_tiles, anchor_tiles, batch, h_q, n_kv set).
// forced_splits > 0 fixes the number of chunks (1 = never split), even if some chunks are then empty for
// every tile; 0 chooses (split_kv.cpp): no split for a grid of kTargetWaves waves or more, else the chunk
// count with the least modelled time, waves * (chunk + kSplitOverheadTiles), chunks at least
// kMinKeyTilesPerSplit key tiles, at most kMaxSplitWaves waves of CTAs.
// ctas_per_sm and key_tile_keys: CTAs of the dense-rows kernel resident per SM and its keys per tile
// (kWsCtasPerSm and kWsKeyTileKeys when p.warp_specialized); chunks are counted in those key tiles.
SplitPlan plan_kv_splits(const AttentionKernelParams& p, int sm_count, int forced_splits,
                         int ctas_per_sm = kCtasPerSm, int key_tile_keys = kKeyTileKeys);

// Multiprocessor count of the current device, queried once per device.
int current_device_sm_count();

// z-slices of the split dense-rows grid: one per chunk, plus the anchors' sparse pass when they write Δ
// (AnchorOutput::delta).
inline int split_kv_slices(const AttentionKernelParams& p, AnchorOutput anchors) {
  return p.kv_splits + (anchors == AnchorOutput::delta && p.anchor_tiles > 0 ? 1 : 0);
}

// fp32 elements of split_o and split_lse.
inline size_t split_o_floats(const AttentionKernelParams& p, int block_m, int head_dim) {
  return size_t(p.batch) * size_t(p.h_q) * size_t(p.contiguous_tiles + p.anchor_tiles) * size_t(p.kv_splits) *
         size_t(block_m) * size_t(head_dim);
}
inline size_t split_lse_floats(const AttentionKernelParams& p, int block_m) {
  return split_o_floats(p, block_m, 1);
}

}  // namespace dattn::cuda::detail
