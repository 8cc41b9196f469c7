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
  delta_sparse,        // delta, interpolate: sparse rows to out, anchors' delta into the buffer; a final
                       // pass adds the interpolated corrections (it needs the next block's anchor too)
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
//   each block (only when gamma exceeds the tile height, or block top-k's query blocks cut a gamma
//   block) read it. The interpolate variant runs every sparse tile in (2) with Epilogue::delta_sparse.
// Sparse tiles never cross a segment of the key pattern (block top-k: a query block).
std::vector<std::vector<WorkItem>> plan_work(const AttentionProblem& problem, const AttentionParams& params);

}  // namespace dattn::cpu
