#include "dattn/attn/params.h"

#include <cmath>

#include "dattn/core/error.h"

namespace dattn {

std::string_view mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::dense: return "dense";
    case AttentionMode::sparse: return "sparse";
    case AttentionMode::recompute: return "recompute";
    case AttentionMode::delta: return "delta";
  }
  return "?";
}

AttentionMode parse_mode(std::string_view name) {
  if (name == "dense") return AttentionMode::dense;
  if (name == "sparse") return AttentionMode::sparse;
  if (name == "recompute") return AttentionMode::recompute;
  if (name == "delta") return AttentionMode::delta;
  fail("unknown attention mode '{}' (expected dense, sparse, recompute or delta)", name);
}

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::automatic: return "auto";
    case Backend::reference: return "reference";
    case Backend::cpu: return "cpu";
    case Backend::cuda: return "cuda";
  }
  return "?";
}

Backend parse_backend(std::string_view name) {
  if (name == "auto") return Backend::automatic;
  if (name == "reference") return Backend::reference;
  if (name == "cpu") return Backend::cpu;
  if (name == "cuda") return Backend::cuda;
  fail("unknown backend '{}' (expected auto, reference, cpu or cuda)", name);
}

void validate_attention_params(const AttentionParams& p) {
  DATTN_CHECK(int(p.mode) <= int(AttentionMode::delta), "unknown attention mode value {}", int(p.mode));
  DATTN_CHECK(p.gamma >= 1, "gamma must be >= 1, got {} (allowed: 1 .. 2^63-1)", p.gamma);
  DATTN_CHECK(p.window >= 1, "window must be >= 1, got {} (allowed: 1 .. 2^63-1)", p.window);
  DATTN_CHECK(p.sink >= 0, "sink must be >= 0, got {} (allowed: 0 .. 2^63-1)", p.sink);
  DATTN_CHECK(p.tail_min >= -1, "tail_min must be >= 0 (or -1 for the default), got {}", p.tail_min);
  DATTN_CHECK(std::isfinite(p.scale) && p.scale >= 0.0 && p.scale <= kMaxAttentionScale,
              "scale must be finite and positive (0 = 1/sqrt(d)), at most {:g}, got {}", kMaxAttentionScale, p.scale);
  DATTN_CHECK(p.num_threads >= 0 && p.num_threads <= kMaxThreads,
              "num_threads must be in 0 .. {} (0 = default), got {}", kMaxThreads, p.num_threads);
}

double dense_pairs(int64_t n_q, int64_t n_kv) {
  // rows at positions n_kv-n_q .. n_kv-1, row at position p sees p+1 keys
  double first = double(n_kv - n_q) + 1.0, last = double(n_kv);
  return (first + last) * double(n_q) / 2.0;
}

static double sparse_row_pairs(int64_t pos, int64_t window, int64_t sink) {
  SparseKeys keys = sparse_keys(pos, window, sink);
  return double(keys.sink_end) + double(pos + 1 - keys.window_begin);
}

double mode_pairs(const AttentionShape& s, const AttentionParams& p) {
  if (p.mode == AttentionMode::dense) return dense_pairs(s.n_q, s.n_kv);
  RowPlan plan = make_row_plan(s.n_q, p);
  double pairs = 0;
  bool sparse_everywhere = p.mode == AttentionMode::sparse;
  for (int64_t row = 0; row < s.n_q; ++row) {
    int64_t pos = s.position(row);
    if (sparse_everywhere) {
      pairs += sparse_row_pairs(pos, p.window, p.sink);
    } else if (plan.is_tail(row)) {
      pairs += double(pos + 1);
    } else {
      pairs += sparse_row_pairs(pos, p.window, p.sink);
      if (plan.is_anchor(row)) pairs += double(pos + 1);
    }
  }
  // recompute skips the sparse pass at anchors; delta needs it for the correction
  if (p.mode == AttentionMode::recompute)
    for (int64_t j = 0; j < plan.num_anchors(); ++j)
      pairs -= sparse_row_pairs(s.position(j * plan.gamma), p.window, p.sink);
  return pairs;
}

}  // namespace dattn
