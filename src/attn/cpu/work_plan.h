// How the CPU backend cuts one attention call into query tiles, per mode and phase.
#pragma once
#include <vector>

#include "tile.h"

namespace dattn::cpu {

// What happens to a tile's result (see cpu_attention.cpp).
enum class Epilogue : uint8_t {
  write,               // rows to out (+ lse)
  write_non_anchors,   // recompute: sparse rows to out, except anchors (written dense by their own tile)
  anchor_dense,        // delta: gathered anchors' dense output into the anchor buffer
  delta_corrected,     // delta: sparse rows + (dense - sparse) of their block's anchor
};

struct WorkItem {
  QueryTile tile;
  Epilogue epilogue = Epilogue::write;
  double cost = 0;  // query-key pairs, for ordering the costliest first
};

// Work runs in phases separated by a barrier; items inside a phase are independent and sorted by
// decreasing cost (parallel_for hands out indices in increasing order).
//   dense / sparse / recompute: one phase.
//   delta: (1) gathered anchors dense + tail rows dense, (2) sparse tiles that contain an anchor:
//   they turn the anchor buffer entry into delta = dense - sparse, (3) the other sparse tiles of
//   each block (only when gamma exceeds the tile height) read it.
std::vector<std::vector<WorkItem>> plan_work(const AttentionProblem& problem, const AttentionParams& params);

}  // namespace dattn::cpu
