// One query tile of the CPU backend: up to ~96 (query row, head) columns that share one kv head,
// attended over the union of their allowed keys with a tiled online softmax. See docs/CPU_KERNELS.md.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "dattn/attn/key_pattern.h"

namespace dattn::cpu {

// Everything a tile needs, derived once per call.
struct AttentionProblem {
  TensorView q, k, v;
  AttentionShape shape;
  int64_t window = 0, sink = 0;
  const KeyPatternPlan* pattern = nullptr;  // which keys sparse rows see
  float score_scale = 0;  // scale * log2(e): scores live in the base-2 domain, so softmax uses exp2
};

// Query rows first_row + r * row_step (r < row_count) of every head in kv group `kv_head`.
// Column m of the tile is (row r, head kv_head * group + g) with m = r * group + g.
struct QueryTile {
  int64_t batch = 0, kv_head = 0;
  int64_t first_row = 0, row_count = 0, row_step = 1;
  bool dense = true;  // dense (keys 0..p) or sparse rows (the key pattern; rows of one pattern segment)
  int64_t row(int64_t r) const { return first_row + r * row_step; }
};

// Per-thread scratch, grown on demand and reused across tiles. After compute_tile:
// output(c, m) holds the normalised fp32 result and lse(m) the natural-log LSE of column m.
class TileWorkspace {
 public:
  float output(int64_t channel, int64_t column) const { return output_[channel * columns_ + column]; }
  float lse(int64_t column) const { return lse_[column]; }

 private:
  friend void compute_tile(const AttentionProblem&, const QueryTile&, TileWorkspace&);
  void reserve(int64_t columns, int64_t head_dim, int64_t key_block);

  struct FreeAligned {
    void operator()(void* p) const;
  };
  using Buffer = std::unique_ptr<float[], FreeAligned>;
  static Buffer allocate(int64_t floats);

  int64_t columns_ = 0;  // padded column count (a multiple of 16): the leading dimension below
  int64_t capacity_columns_ = 0, capacity_head_dim_ = 0;
  Buffer query_t_;       // head_dim x columns, pre-scaled by score_scale
  Buffer keys_, values_; // key_block x head_dim, fp32
  Buffer scores_;        // key_block x columns: scores, then probabilities
  Buffer output_;        // head_dim x columns, running (then normalised) output
  Buffer row_max_, row_sum_, alpha_, shift_, block_sum_, lse_;  // per column softmax state
  Buffer row_buffer_;    // one head_dim row for dtype conversion
  std::unique_ptr<int32_t[]> sink_end_, window_begin_, key_end_;  // per column allowed keys
  std::vector<RowKeys> rows_;      // per tile row bounds
  std::vector<KeyRange> ranges_;   // key ranges the tile visits
};

// Runs the tile: packs Q^T, then for each block of allowed keys packs K and V, computes scores,
// masks only blocks that need it, updates the online softmax and accumulates P.V.
void compute_tile(const AttentionProblem& problem, const QueryTile& tile, TileWorkspace& ws);

}  // namespace dattn::cpu
