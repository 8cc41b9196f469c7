// dattn::cpu::attention: plans the tiles, runs each phase with parallel_for, and applies each tile's
// epilogue (plain write, recompute's anchor skip, delta's anchor buffer and correction).
#include <cmath>
#include <limits>
#include <vector>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/core/threads.h"
#include "simd.h"
#include "tile.h"
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
};

void write_row(const Outputs& o, int64_t batch, int64_t row, int64_t head, const float* values, float lse) {
  const TensorView& out = o.out;
  void* dst = static_cast<char*>(out.data) + out.offset(batch, row, head, 0) * int64_t(dtype_size(out.dtype));
  store_row(values, out.shape[3], dst, out.dtype, out.stride[3]);
  if (o.lse.data) static_cast<float*>(o.lse.data)[o.lse.offset(batch, head, row, 0)] = lse;
}

void finish_tile(const Outputs& o, const WorkItem& item, const TileWorkspace& ws, const AttentionShape& s,
                 std::vector<float>& row_values) {
  const QueryTile& t = item.tile;
  const int64_t group = s.group(), d = s.head_dim;
  const RowPlan& plan = o.rows;

  if (item.epilogue == Epilogue::delta_corrected) {
    // anchors of this tile first: their buffer entry becomes delta = dense - sparse
    for (int64_t r = 0; r < t.row_count; ++r) {
      if (!plan.is_anchor(t.row(r))) continue;
      for (int64_t g = 0; g < group; ++g) {
        float* delta = o.anchors->at(t.batch, t.kv_head * group + g, t.row(r) / plan.gamma);
        for (int64_t c = 0; c < d; ++c) delta[c] -= ws.output(c, r * group + g);
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

  const RowPlan rows = make_row_plan(problem.shape.n_q, params);
  const bool delta = params.mode == AttentionMode::delta;
  AnchorBuffer anchors(problem.shape, delta ? rows.num_anchors() : 0);
  const Outputs outputs{out, lse, rows, &anchors};

  const int threads = params.num_threads > 0 ? params.num_threads : default_num_threads();
  std::vector<TileWorkspace> workspaces(static_cast<size_t>(threads));
  std::vector<std::vector<float>> row_values(size_t(threads), std::vector<float>(size_t(problem.shape.head_dim)));
  for (const std::vector<WorkItem>& phase : plan_work(problem, params)) {
    parallel_for(int64_t(phase.size()), threads, [&](int64_t i, int thread) {
      const WorkItem& item = phase[size_t(i)];
      compute_tile(problem, item.tile, workspaces[size_t(thread)]);
      finish_tile(outputs, item, workspaces[size_t(thread)], problem.shape, row_values[size_t(thread)]);
    });
  }
}

}  // namespace dattn::cpu
