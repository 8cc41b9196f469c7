// Key patterns (spec "The pieces"): which keys a sparse query row sees, written once and used by the
// reference and the CPU kernels. A pattern answers two questions: which key ranges a tile of query rows
// visits, and, per row, the bounds that decide which keys inside those ranges it may see (so a tile masks
// only key blocks where some row sees part of the block).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "dattn/attn/params.h"

namespace dattn {

struct KeyRange {
  int64_t begin, end;  // [begin, end)
};

// Keys a row sees inside the ranges its tile visits: j < sink_end, or window_begin <= j < end. A dense row
// (and a block top-k row, whose ranges are its selected blocks) has sink_end = window_begin = end = p + 1.
struct RowKeys {
  int64_t sink_end, window_begin, end;
  bool has_window() const { return window_begin < end; }
  bool sees_any(int64_t j0, int64_t j1) const { return j0 < sink_end || (has_window() && j0 < end && j1 > window_begin); }
  bool sees_all(int64_t j0, int64_t j1) const { return j1 <= sink_end || (j0 >= window_begin && j1 <= end); }
};

// Block top-k's selection: per (batch, kv head, query block) the ascending indices of the kept key blocks
// (block index j / block_k). Never a dense mask: about (sink/b_k + window/b_k + 2 + topk) entries a list.
struct BlockSelection {
  int64_t batch = 0, h_kv = 0, q_blocks = 0, block_q = 1, block_k = 1;
  std::vector<int64_t> offsets;     // batch * h_kv * q_blocks + 1 entries into key_blocks
  std::vector<int32_t> key_blocks;

  std::span<const int32_t> blocks(int64_t b, int64_t kv_head, int64_t q_block) const {
    const size_t list = size_t((b * h_kv + kv_head) * q_blocks + q_block);
    return {key_blocks.data() + offsets[list], size_t(offsets[list + 1] - offsets[list])};
  }
  bool operator==(const BlockSelection&) const = default;
};

// The score of key block kb for query block qb and kv head h: mean over the query block's rows and over the
// kv head's query heads of q, dot the mean over the key block's keys of k (scale omitted: it does not change
// the ranking). Keeps the mandatory blocks (any key < sink; overlapping the window of any of the block's rows,
// which includes the diagonal) and the `topk` best-scoring other blocks that hold a key <= the block's last
// position (ties: the lower block index wins). Accumulates in double when `fp64`, else in float (the CPU
// kernel); the two agree except where two scores tie within float rounding.
BlockSelection select_key_blocks(const TensorView& q, const TensorView& k, const AttentionParams& params, bool fp64,
                                 int num_threads);

// The key pattern of one attention call, with its selection computed once (block top-k in a mode with
// sparse rows; the fp64 flag and threads go to select_key_blocks).
class KeyPatternPlan {
 public:
  KeyPatternPlan(const TensorView& q, const TensorView& k, const AttentionParams& params, bool fp64, int num_threads);

  // Sparse rows [row, segment_end(row)) share their key structure, so they may share a tile.
  int64_t segment_end(int64_t row) const;
  // Bounds of a row (dense: every key j <= p).
  RowKeys row_keys(int64_t row, bool dense) const;
  // The ascending, disjoint key ranges a sparse row sees (exactly its key set S(p)).
  void row_ranges(int64_t batch, int64_t kv_head, int64_t row, std::vector<KeyRange>& out) const;
  // The key ranges a tile visits: the union of its rows' keys (rows from one segment when sparse, ascending).
  void tile_ranges(int64_t batch, int64_t kv_head, int64_t first_row, const std::vector<RowKeys>& rows, bool dense,
                   std::vector<KeyRange>& out) const;
  const BlockSelection& selection() const { return selection_; }

 private:
  void append_blocks(int64_t batch, int64_t kv_head, int64_t row, int64_t end, std::vector<KeyRange>& out) const;
  AttentionShape shape_;
  KeyPattern pattern_;
  int64_t window_, sink_;
  BlockSelection selection_;
};

}  // namespace dattn
