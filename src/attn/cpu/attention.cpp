// dattn::cpu::attention: plans the tiles, runs each phase with parallel_for, and applies each tile's
// epilogue (plain write, recompute's anchor skip, delta's anchor buffer, correction and anchor gap).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "anchor_gaps.h"
#include "dattn/core/error.h"
#include "dattn/core/threads.h"
#include "simd.h"
#include "tile.h"
#include "unchecked_backends.h"
#include "work_plan.h"

namespace dattn::cpu {
namespace {

// Delta mode's only extra memory: one head_dim vector per (batch, query head, anchor), i.e.
// O(n_q / gamma * h * d). It first holds the anchor's dense output, then delta = dense - sparse.
class AnchorBuffer {
 public:
  AnchorBuffer(const AttentionShape& s, int64_t anchors)
      : anchors_(anchors), head_dim_(s.head_dim), h_q_(s.h_q),
        values_(size_t(s.batch * s.h_q * anchors * s.head_dim)) {}
  float* at(int64_t batch, int64_t head, int64_t anchor) {
    return values_.data() + ((batch * h_q_ + head) * anchors_ + anchor) * head_dim_;
  }

 private:
  int64_t anchors_, head_dim_, h_q_;
  std::vector<float> values_;
};

struct Outputs {
  TensorView out, lse;
  RowPlan rows;
  AnchorBuffer* anchors;
  float* gaps;  // delta with an anchor gap requested: per (batch, head, anchor) ||delta|| / ||dense||, else null
};

float norm(const float* x, int64_t d) {
  double sum = 0;
  for (int64_t c = 0; c < d; ++c) sum += double(x[c]) * double(x[c]);
  return float(std::sqrt(sum));
}

void* row_address(const TensorView& out, int64_t batch, int64_t row, int64_t head) {
  return static_cast<char*>(out.data) + out.offset(batch, row, head, 0) * int64_t(dtype_size(out.dtype));
}

void write_row(const Outputs& o, int64_t batch, int64_t row, int64_t head, const float* values, float lse) {
  const TensorView& out = o.out;
  store_row(values, out.shape[3], row_address(out, batch, row, head), out.dtype, out.stride[3]);
  if (o.lse.data) static_cast<float*>(o.lse.data)[o.lse.offset(batch, head, row, 0)] = lse;
}

void finish_tile(const Outputs& o, const WorkItem& item, const TileWorkspace& ws, const AttentionShape& s,
                 std::vector<float>& row_values) {
  const QueryTile& t = item.tile;
  const int64_t group = s.group(), d = s.head_dim;
  const RowPlan& plan = o.rows;

  if (item.epilogue == Epilogue::delta_corrected || item.epilogue == Epilogue::delta_sparse) {
    // anchors of this tile first: their buffer entry becomes delta = dense - sparse
    for (int64_t r = 0; r < t.row_count; ++r) {
      if (!plan.is_anchor(t.row(r))) continue;
      for (int64_t g = 0; g < group; ++g) {
        const int64_t head = t.kv_head * group + g, anchor = t.row(r) / plan.gamma;
        float* delta = o.anchors->at(t.batch, head, anchor);
        const float dense_norm = o.gaps ? norm(delta, d) : 0.0f;
        for (int64_t c = 0; c < d; ++c) delta[c] -= ws.output(c, r * group + g);
        if (o.gaps)
          o.gaps[(t.batch * s.h_q + head) * plan.num_anchors() + anchor] =
              dense_norm > 0 ? norm(delta, d) / dense_norm : 0.0f;
      }
    }
  }
  for (int64_t r = 0; r < t.row_count; ++r) {
    const int64_t row = t.row(r);
    if (item.epilogue == Epilogue::write_non_anchors && plan.is_anchor(row)) continue;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t m = r * group + g, head = t.kv_head * group + g;
      if (item.epilogue == Epilogue::anchor_dense) {
        float* dense = o.anchors->at(t.batch, head, row / plan.gamma);
        for (int64_t c = 0; c < d; ++c) dense[c] = ws.output(c, m);
        continue;
      }
      if (item.epilogue == Epilogue::delta_corrected) {
        const float* delta = o.anchors->at(t.batch, head, plan.anchor_of(row) / plan.gamma);
        for (int64_t c = 0; c < d; ++c) row_values[size_t(c)] = ws.output(c, m) + delta[c];
      } else {
        for (int64_t c = 0; c < d; ++c) row_values[size_t(c)] = ws.output(c, m);
      }
      write_row(o, t.batch, row, head, row_values.data(), ws.lse(m));
    }
  }
}

// Interpolate variant, after every tile: row i of block j gets (1 - t) delta_j + t delta_{j+1}, t = (i - a_j) / gamma
// (the last block repeats delta_j). Anchors have t = 0, so they become sparse + delta = dense.
void add_interpolated_deltas(const Outputs& o, const AttentionShape& s, int threads) {
  const RowPlan& plan = o.rows;
  const int64_t anchors = plan.num_anchors(), d = s.head_dim;
  const TensorView& out = o.out;
  parallel_for(s.batch * s.h_q * anchors, threads, [&](int64_t i, int) {
    const int64_t b = i / (s.h_q * anchors), head = i / anchors % s.h_q, j = i % anchors;
    const float* delta = o.anchors->at(b, head, j);
    const float* next = j + 1 < anchors ? o.anchors->at(b, head, j + 1) : delta;
    std::vector<float> row(static_cast<size_t>(d));
    const int64_t end = std::min(plan.sparse_rows, (j + 1) * plan.gamma);
    for (int64_t r = j * plan.gamma; r < end; ++r) {
      const float t = float(r - j * plan.gamma) / float(plan.gamma);
      void* address = row_address(out, b, r, head);
      load_row(address, out.dtype, out.stride[3], d, row.data());
      for (int64_t c = 0; c < d; ++c) row[size_t(c)] += (1.0f - t) * delta[c] + t * next[c];
      store_row(row.data(), d, address, out.dtype, out.stride[3]);
    }
  });
}

}  // namespace

void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params) {
  AttentionProblem problem;
  problem.q = q;
  problem.k = k;
  problem.v = v;
  problem.shape = attention_shape(q, k);
  problem.window = params.window;
  problem.sink = params.sink;
  const double scale = params.scale != 0.0 ? params.scale : 1.0 / std::sqrt(double(problem.shape.head_dim));
  problem.score_scale = float(scale * 1.4426950408889634);  // log2(e)
  DATTN_CHECK(problem.shape.n_kv < std::numeric_limits<int32_t>::max(),
              "cpu backend: n_kv {} exceeds the int32 key positions of its masks", problem.shape.n_kv);

  const int threads = params.num_threads > 0 ? params.num_threads : default_num_threads();
  const KeyPatternPlan pattern(q, k, params, /*fp64=*/false, threads);
  problem.pattern = &pattern;

  const RowPlan rows = make_row_plan(problem.shape.n_q, params);
  const bool delta = params.mode == AttentionMode::delta;
  AnchorBuffer anchors(problem.shape, delta ? rows.num_anchors() : 0);
  std::vector<float> gaps(delta && params.anchor_gap ? size_t(problem.shape.batch * problem.shape.h_q * rows.num_anchors()) : 0);
  const Outputs outputs{out, lse, rows, &anchors, gaps.empty() ? nullptr : gaps.data()};

  std::vector<TileWorkspace> workspaces(static_cast<size_t>(threads));
  std::vector<std::vector<float>> row_values(size_t(threads), std::vector<float>(size_t(problem.shape.head_dim)));
  for (const std::vector<WorkItem>& phase : plan_work(problem, params)) {
    parallel_for(int64_t(phase.size()), threads, [&](int64_t i, int thread) {
      const WorkItem& item = phase[size_t(i)];
      compute_tile(problem, item.tile, workspaces[size_t(thread)]);
      finish_tile(outputs, item, workspaces[size_t(thread)], problem.shape, row_values[size_t(thread)]);
    });
  }
  if (delta && params.delta_variant == DeltaVariant::interpolate) add_interpolated_deltas(outputs, problem.shape, threads);
  if (delta && params.anchor_gap)
    *params.anchor_gap = reduce_anchor_gaps(gaps, problem.shape.batch * problem.shape.h_q, rows.num_anchors());
}

}  // namespace dattn::cpu
