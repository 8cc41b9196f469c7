#include "dattn/attn/params.h"

#include <cmath>

#include "dattn/core/error.h"

#include <algorithm>

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
  DATTN_CHECK(p.cuda.kv_splits >= 0 && p.cuda.kv_splits <= kMaxCudaKvSplits,
              "cuda kv_splits must be in 0 .. {} (0 = planned per call), got {}", kMaxCudaKvSplits, p.cuda.kv_splits);
  DATTN_CHECK(int(p.pattern) <= int(KeyPattern::block_topk), "unknown key pattern value {}", int(p.pattern));
  DATTN_CHECK(int(p.delta_variant) <= int(DeltaVariant::interpolate), "unknown delta variant value {}",
              int(p.delta_variant));
  if (p.pattern == KeyPattern::block_topk) {
    DATTN_CHECK(p.block_q >= 1, "block_q must be >= 1, got {}", p.block_q);
    DATTN_CHECK(p.block_k >= 1, "block_k must be >= 1, got {}", p.block_k);
    DATTN_CHECK(p.topk >= 0, "topk must be >= 0, got {}", p.topk);
  }
}

std::string_view pattern_name(KeyPattern p) {
  switch (p) {
    case KeyPattern::window_sink: return "window_sink";
    case KeyPattern::block_topk: return "block_topk";
  }
  return "?";
}

KeyPattern parse_pattern(std::string_view name) {
  if (name == "window_sink") return KeyPattern::window_sink;
  if (name == "block_topk") return KeyPattern::block_topk;
  fail("unknown key pattern '{}' (expected window_sink or block_topk)", name);
}

std::string_view delta_variant_name(DeltaVariant v) {
  switch (v) {
    case DeltaVariant::repeat: return "repeat";
    case DeltaVariant::interpolate: return "interpolate";
  }
  return "?";
}

DeltaVariant parse_delta_variant(std::string_view name) {
  if (name == "repeat") return DeltaVariant::repeat;
  if (name == "interpolate") return DeltaVariant::interpolate;
  fail("unknown delta variant '{}' (expected repeat or interpolate)", name);
}

AttentionMode parse_correction(std::string_view name) {
  if (name == "none") return AttentionMode::sparse;
  if (name == "recompute") return AttentionMode::recompute;
  if (name == "delta") return AttentionMode::delta;
  fail("unknown correction '{}' (expected none, recompute or delta)", name);
}

std::string_view correction_name(AttentionMode m) { return m == AttentionMode::sparse ? "none" : mode_name(m); }

AttentionShape attention_shape(const TensorView& q, const TensorView& k) {
  return {q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]};
}

double dense_pairs(int64_t n_q, int64_t n_kv) {
  // rows at positions n_kv-n_q .. n_kv-1, row at position p sees p+1 keys
  double first = double(n_kv - n_q) + 1.0, last = double(n_kv);
  return (first + last) * double(n_q) / 2.0;
}

static double sparse_row_pairs(int64_t pos, const AttentionParams& p) {
  if (p.pattern == KeyPattern::block_topk) {
    // an upper estimate (the exact count depends on the selection): the sink blocks, the window plus the
    // query block's own span and a partial block at each end, and topk whole blocks; never more than dense
    const double sink_keys = double((p.sink + p.block_k - 1) / p.block_k * p.block_k);
    const double keys = sink_keys + double(p.window + p.block_q + 2 * p.block_k + p.topk * p.block_k);
    return std::min(double(pos + 1), keys);
  }
  SparseKeys keys = sparse_keys(pos, p.window, p.sink);
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
      pairs += sparse_row_pairs(pos, p);
    } else if (plan.is_tail(row)) {
      pairs += double(pos + 1);
    } else {
      pairs += sparse_row_pairs(pos, p);
      if (plan.is_anchor(row)) pairs += double(pos + 1);
    }
  }
  // recompute skips the sparse pass at anchors; delta needs it for the correction
  if (p.mode == AttentionMode::recompute)
    for (int64_t j = 0; j < plan.num_anchors(); ++j)
      pairs -= sparse_row_pairs(s.position(j * plan.gamma), p);
  return pairs;
}

}  // namespace dattn
