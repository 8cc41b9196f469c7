// The naive reference: fp64 accumulation, one row at a time, written to be obviously right.
#include <cmath>
#include <vector>

#include "dattn/attn/backends.h"

namespace dattn::reference {
namespace {

struct KeyRange {
  int64_t begin, end;  // [begin, end)
};

// Softmax attention of query (b, row, h) over the union of disjoint key ranges.
// Returns the output in `out` (size d) and the natural-log LSE of the scaled scores.
double attend(const TensorView& q, const TensorView& k, const TensorView& v, int64_t b, int64_t row,
              int64_t h, int64_t kv_head, double scale, const std::vector<KeyRange>& ranges,
              std::vector<double>& out) {
  const int64_t d = q.shape[3];
  std::vector<double> scores;
  std::vector<int64_t> keys;
  for (const KeyRange& r : ranges)
    for (int64_t j = r.begin; j < r.end; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += double(q.get(b, row, h, c)) * double(k.get(b, j, kv_head, c));
      scores.push_back(dot * scale);
      keys.push_back(j);
    }
  double max_score = -INFINITY;
  for (double s : scores) max_score = std::max(max_score, s);
  double sum = 0;
  for (double& s : scores) sum += (s = std::exp(s - max_score));
  out.assign(size_t(d), 0.0);
  for (size_t n = 0; n < keys.size(); ++n)
    for (int64_t c = 0; c < d; ++c) out[size_t(c)] += scores[n] / sum * double(v.get(b, keys[n], kv_head, c));
  return max_score + std::log(sum);
}

}  // namespace

void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params) {
  const AttentionShape s = attention_shape(q, k);
  const double scale = params.scale != 0.0 ? params.scale : 1.0 / std::sqrt(double(s.head_dim));
  const RowPlan plan = make_row_plan(s.n_q, params);
  std::vector<double> anchor_dense, anchor_sparse;

  auto dense_of = [&](int64_t b, int64_t row, int64_t h, std::vector<double>& o) {
    return attend(q, k, v, b, row, h, h / s.group(), scale, {{0, s.position(row) + 1}}, o);
  };
  auto sparse_of = [&](int64_t b, int64_t row, int64_t h, std::vector<double>& o) {
    int64_t pos = s.position(row);
    SparseKeys keys = sparse_keys(pos, params.window, params.sink);
    return attend(q, k, v, b, row, h, h / s.group(), scale, {{0, keys.sink_end}, {keys.window_begin, pos + 1}}, o);
  };

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.h_q; ++h)
      for (int64_t row = 0; row < s.n_q; ++row) {
        std::vector<double> result;
        double row_lse;
        bool dense_row = params.mode == AttentionMode::dense ||
                         (params.mode != AttentionMode::sparse && plan.is_tail(row)) ||
                         (params.mode == AttentionMode::recompute && plan.is_anchor(row));
        if (dense_row) {
          row_lse = dense_of(b, row, h, result);
        } else {
          row_lse = sparse_of(b, row, h, result);
          if (params.mode == AttentionMode::delta) {
            // rows run in order, so the block's anchor is met first: its Δ serves the whole block
            if (plan.is_anchor(row)) {
              dense_of(b, row, h, anchor_dense);
              anchor_sparse = result;
            }
            for (size_t c = 0; c < result.size(); ++c) result[c] += anchor_dense[c] - anchor_sparse[c];
          }
        }
        for (int64_t c = 0; c < s.head_dim; ++c) out.set(b, row, h, c, float(result[size_t(c)]));
        if (lse.data) lse.set(b, h, row, 0, float(row_lse));
      }
}

}  // namespace dattn::reference
