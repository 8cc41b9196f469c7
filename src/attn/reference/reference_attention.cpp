// The naive reference: fp64 accumulation, one row at a time, written to be obviously right.
#include <cmath>
#include <vector>

#include "dattn/attn/key_pattern.h"
#include "unchecked_backends.h"

namespace dattn::reference {
namespace {

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

double norm(const std::vector<double>& x) {
  double sum = 0;
  for (double e : x) sum += e * e;
  return std::sqrt(sum);
}

}  // namespace

void attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const TensorView& lse, const AttentionParams& params) {
  const AttentionShape s = attention_shape(q, k);
  const double scale = params.scale != 0.0 ? params.scale : 1.0 / std::sqrt(double(s.head_dim));
  const RowPlan plan = make_row_plan(s.n_q, params);
  const KeyPatternPlan pattern(q, k, params, /*fp64=*/true, 1);
  const bool delta = params.mode == AttentionMode::delta;
  const int64_t anchors = delta ? plan.num_anchors() : 0;
  if (delta && params.anchor_gap) *params.anchor_gap = {anchors, std::vector<float>(size_t(s.batch * s.h_q)),
                                                        std::vector<float>(size_t(s.batch * s.h_q))};

  auto dense_of = [&](int64_t b, int64_t row, int64_t h, std::vector<double>& o) {
    return attend(q, k, v, b, row, h, h / s.group(), scale, {{0, s.position(row) + 1}}, o);
  };
  std::vector<KeyRange> ranges;
  auto sparse_of = [&](int64_t b, int64_t row, int64_t h, std::vector<double>& o) {
    pattern.row_ranges(b, h / s.group(), row, ranges);
    return attend(q, k, v, b, row, h, h / s.group(), scale, ranges, o);
  };

  std::vector<std::vector<double>> deltas(static_cast<size_t>(anchors));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.h_q; ++h) {
      // Δ = dense - sparse of every anchor first, so a row can use the next block's anchor too
      double gap_sum = 0, gap_max = 0;
      for (int64_t j = 0; j < anchors; ++j) {
        std::vector<double> dense, sparse;
        dense_of(b, j * plan.gamma, h, dense);
        sparse_of(b, j * plan.gamma, h, sparse);
        deltas[size_t(j)].resize(dense.size());
        for (size_t c = 0; c < dense.size(); ++c) deltas[size_t(j)][c] = dense[c] - sparse[c];
        const double dense_norm = norm(dense), gap = dense_norm > 0 ? norm(deltas[size_t(j)]) / dense_norm : 0.0;
        gap_sum += gap;
        gap_max = std::max(gap_max, gap);
      }
      if (delta && params.anchor_gap && anchors > 0) {
        params.anchor_gap->mean[size_t(b * s.h_q + h)] = float(gap_sum / double(anchors));
        params.anchor_gap->max[size_t(b * s.h_q + h)] = float(gap_max);
      }
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
          if (delta) {
            const int64_t j = row / plan.gamma;
            const bool interpolate = params.delta_variant == DeltaVariant::interpolate && j + 1 < anchors;
            const double t = interpolate ? double(row - j * plan.gamma) / double(plan.gamma) : 0.0;
            for (size_t c = 0; c < result.size(); ++c)
              result[c] += (1 - t) * deltas[size_t(j)][c] + (interpolate ? t * deltas[size_t(j + 1)][c] : 0.0);
          }
        }
        for (int64_t c = 0; c < s.head_dim; ++c) out.set(b, row, h, c, float(result[size_t(c)]));
        if (lse.data) lse.set(b, h, row, 0, float(row_lse));
      }
    }
}

}  // namespace dattn::reference
