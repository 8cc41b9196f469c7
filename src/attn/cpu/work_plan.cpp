// Tiling of the rows per mode: tile heights, block alignment for delta, cost ordering.
#include "work_plan.h"

#include <algorithm>
#include <numeric>

namespace dattn::cpu {
namespace {

// Target (row, head) columns per tile: enough for every K/V block load to serve many columns,
// small enough that the working set (Q^T, O^T, scores) stays in L2.
constexpr int64_t kTargetColumns = 96;

struct TileShape {
  int64_t max_rows;  // rows per tile
  int64_t unit;      // preferred multiple of rows, so rows * group fills whole 16-column panels
};

TileShape tile_shape(int64_t group) {
  const int64_t unit = 16 / std::gcd<int64_t>(group, 16);
  return {std::max<int64_t>(1, kTargetColumns / group), unit};
}

// Splits `count` consecutive items starting at `first` into near-equal pieces of at most about max_rows,
// each a multiple of unit where possible. Calls emit(first_of_piece, size).
template <typename Emit>
void split(int64_t first, int64_t count, TileShape shape, Emit emit) {
  if (count <= 0) return;
  const int64_t pieces = (count + shape.max_rows - 1) / shape.max_rows;
  int64_t size = (count + pieces - 1) / pieces;
  size = (size + shape.unit - 1) / shape.unit * shape.unit;
  for (int64_t begin = 0; begin < count; begin += size) emit(first + begin, std::min(size, count - begin));
}

double tile_cost(const AttentionProblem& p, const QueryTile& t) {
  const int64_t last_keys = p.shape.position(t.row(t.row_count - 1)) + 1;
  // in double: window and sink may be anywhere up to INT64_MAX
  const double sparse_keys = double(p.window) + double(p.sink) + double(t.row_count);
  const double keys = t.dense ? double(last_keys) : std::min(double(last_keys), sparse_keys);
  return keys * double(t.row_count);
}

}  // namespace

std::vector<std::vector<WorkItem>> plan_work(const AttentionProblem& problem, const AttentionParams& params) {
  const AttentionShape& s = problem.shape;
  const TileShape shape = tile_shape(s.group());
  const RowPlan rows = make_row_plan(s.n_q, params);
  const int64_t gamma = rows.gamma;
  const int64_t anchors = rows.num_anchors();
  std::vector<std::vector<WorkItem>> phases(3);

  // One item per (batch, kv head) for each tile of rows.
  auto add = [&](int phase, int64_t first, int64_t count, int64_t step, bool dense, Epilogue epilogue) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t kv = 0; kv < s.h_kv; ++kv) {
        WorkItem item{QueryTile{b, kv, first, count, step, dense}, epilogue, 0};
        item.cost = tile_cost(problem, item.tile);
        phases[size_t(phase)].push_back(item);
      }
  };
  auto add_rows = [&](int phase, int64_t first, int64_t count, bool dense, Epilogue epilogue) {
    split(first, count, shape, [&](int64_t f, int64_t n) { add(phase, f, n, 1, dense, epilogue); });
  };
  // Sparse rows [first, end) cut at the pattern's segment ends (and at gamma blocks when asked); each piece
  // is split into tiles, handed to emit(first, count).
  auto for_sparse_tiles = [&](int64_t first, int64_t end, bool cut_at_gamma, auto emit) {
    for (int64_t begin = first; begin < end;) {
      int64_t piece_end = std::min(end, problem.pattern->segment_end(begin));
      if (cut_at_gamma) piece_end = std::min(piece_end, (begin / gamma + 1) * gamma);
      split(begin, piece_end - begin, shape, emit);
      begin = piece_end;
    }
  };
  auto add_sparse_rows = [&](int phase, int64_t first, int64_t end, Epilogue epilogue) {
    for_sparse_tiles(first, end, false, [&](int64_t f, int64_t n) { add(phase, f, n, 1, false, epilogue); });
  };
  const bool window_sink = params.pattern == KeyPattern::window_sink;
  auto add_anchors = [&](int phase, Epilogue epilogue) {
    split(0, anchors, shape, [&](int64_t f, int64_t n) { add(phase, f * gamma, n, gamma, true, epilogue); });
  };

  switch (params.mode) {
    case AttentionMode::dense: add_rows(0, 0, s.n_q, true, Epilogue::write); break;
    case AttentionMode::sparse: add_sparse_rows(0, 0, s.n_q, Epilogue::write); break;
    case AttentionMode::recompute:
      add_anchors(0, Epilogue::write);
      add_rows(0, rows.sparse_rows, rows.tail, true, Epilogue::write);
      add_sparse_rows(0, 0, rows.sparse_rows, Epilogue::write_non_anchors);
      break;
    case AttentionMode::delta:
      add_anchors(0, Epilogue::anchor_dense);
      add_rows(0, rows.sparse_rows, rows.tail, true, Epilogue::write);
      if (params.delta_variant == DeltaVariant::interpolate) {
        add_sparse_rows(1, 0, rows.sparse_rows, Epilogue::delta_sparse);
      } else if (!window_sink) {
        // pieces of one gamma block and one query block; the piece holding the anchor goes first
        for_sparse_tiles(0, rows.sparse_rows, true, [&](int64_t f, int64_t n) {
          add(f % gamma == 0 ? 1 : 2, f, n, 1, false, Epilogue::delta_corrected);
        });
      } else if (gamma <= shape.max_rows) {
        // whole blocks per tile: every tile holds the anchors of its rows
        const int64_t blocks = shape.max_rows / gamma;
        for (int64_t first = 0; first < rows.sparse_rows; first += blocks * gamma)
          add(1, first, std::min(blocks * gamma, rows.sparse_rows - first), 1, false, Epilogue::delta_corrected);
      } else {
        // each block split into tiles; the first holds the anchor
        for (int64_t anchor = 0; anchor < rows.sparse_rows; anchor += gamma)
          split(anchor, std::min(gamma, rows.sparse_rows - anchor), shape, [&](int64_t f, int64_t n) {
            add(f == anchor ? 1 : 2, f, n, 1, false, Epilogue::delta_corrected);
          });
      }
      break;
  }
  for (auto& phase : phases)
    std::stable_sort(phase.begin(), phase.end(), [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  std::erase_if(phases, [](const std::vector<WorkItem>& p) { return p.empty(); });
  return phases;
}

}  // namespace dattn::cpu
