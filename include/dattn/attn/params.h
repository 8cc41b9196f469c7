// The one plain parameter struct shared by every attention backend, and the row plan of the spec
// (which rows are anchors, which are the dense tail). See docs/SPEC.md.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "dattn/attn/window_sink.h"
#include "dattn/core/tensor.h"
#include "dattn/core/threads.h"

namespace dattn {

// `dense`, or the correction applied on top of the key pattern: sparse = no correction (spec "Modes").
enum class AttentionMode : uint8_t { dense, sparse, recompute, delta };
enum class Backend : uint8_t { automatic, reference, cpu, cuda };
// Which keys a sparse row sees (spec "The pieces"): sliding window + sink, or block top-k (which also keeps
// the sink, window and diagonal blocks, plus the topk best-scoring other key blocks of its query block).
enum class KeyPattern : uint8_t { window_sink, block_topk };
// How delta spreads the anchors' corrections over the other rows: repeat Δ of the block's anchor (the
// paper), or interpolate linearly between the block's anchor and the next one (the last block repeats).
enum class DeltaVariant : uint8_t { repeat, interpolate };

std::string_view mode_name(AttentionMode m);
AttentionMode parse_mode(std::string_view name);
std::string_view backend_name(Backend b);
Backend parse_backend(std::string_view name);
std::string_view pattern_name(KeyPattern p);
KeyPattern parse_pattern(std::string_view name);
std::string_view delta_variant_name(DeltaVariant v);
DeltaVariant parse_delta_variant(std::string_view name);
// "none" | "recompute" | "delta" -> sparse | recompute | delta; the name of a mode as a correction.
AttentionMode parse_correction(std::string_view name);
std::string_view correction_name(AttentionMode m);

// Relative size of the delta correction at the anchors, per (batch, query head): for each anchor a,
// ||dense(a) - sparse(a)|| / ||dense(a)|| (0 where dense(a) is zero), then its mean and max over the anchors.
struct AnchorGap {
  int64_t anchors = 0;            // anchors per head (0: the call had none, mean and max are 0)
  std::vector<float> mean, max;   // index batch * h_q + head
};

// Explicit choices among the CUDA kernels' paths, so that benchmarks and tests can compare them; the
// defaults take the fastest path the device and the tensors' layout allow. The CPU backends ignore it.
struct CudaKernelConfig {
  bool tma = true;               // sm_90a: K/V tiles by TMA where the layout allows (false: cp.async)
  bool warp_specialized = true;  // sm_90a with TMA: producer + two consumer warpgroups (false: one warpgroup)
  int kv_splits = 0;             // dense rows' split-KV: 0 = planned per call, 1 = never split, n = n chunks
};
inline constexpr int kMaxCudaKvSplits = 64;

// Allowed ranges (validate_attention_params checks them; every backend relies on it):
//   window [1, INT64_MAX], sink [0, INT64_MAX], gamma [1, INT64_MAX], tail_min -1 or [0, INT64_MAX]
//   (values past the chunk saturate: window >= n_kv is dense, a tail >= n_q makes every row dense),
//   scale 0 or a finite positive number at most kMaxAttentionScale (its fp32 exp2-domain form stays finite),
//   num_threads [0, kMaxThreads], cuda.kv_splits [0, kMaxCudaKvSplits].
struct AttentionParams {
  AttentionMode mode = AttentionMode::delta;
  KeyPattern pattern = KeyPattern::window_sink;
  int64_t window = 2048;   // keys j with p - j < window
  int64_t sink = 1024;     // keys j < sink
  int64_t block_q = 64;    // block_topk: query rows per query block (by row index in the chunk)
  int64_t block_k = 64;    // block_topk: keys per key block (by absolute key index)
  int64_t topk = 8;        // block_topk: best-scoring key blocks kept beyond sink, window and diagonal
  int64_t gamma = 64;      // anchor stride
  DeltaVariant delta_variant = DeltaVariant::repeat;
  int64_t tail_min = -1;   // < 0: max(128, gamma)
  double scale = 0.0;      // 0: 1/sqrt(head_dim)
  Backend backend = Backend::automatic;
  int num_threads = 0;     // CPU backends: 0 = default_num_threads()
  void* stream = nullptr;  // CUDA backend: a cudaStream_t, nullptr = default stream
  AnchorGap* anchor_gap = nullptr;  // delta mode: filled with the anchor gap when not null
  CudaKernelConfig cuda{};          // CUDA backend: which kernel paths to take (defaults: the fastest)
  // NaN or Inf in q, k or v is refused with an error (one extra read of the inputs). A caller that has
  // already checked every row it passes (the CPU model runtime checks each new row once) may skip it.
  bool skip_finite_check = false;
};

// Kernels multiply the scale by log2(e) in fp32; 1e30 leaves that and any plausible score finite.
inline constexpr double kMaxAttentionScale = 1e30;

// Throws dattn::Error naming the field, its value and the allowed range.
void validate_attention_params(const AttentionParams& p);

// Everything a kernel needs to know about the shapes, derived once from q and k.
struct AttentionShape {
  int64_t batch, n_q, n_kv, h_q, h_kv, head_dim;
  int64_t group() const { return h_q / h_kv; }     // query heads per kv head
  int64_t position(int64_t row) const { return n_kv - n_q + row; }  // absolute position of a query row
};
AttentionShape attention_shape(const TensorView& q, const TensorView& k);

// Row classes of one chunk of n_q rows (spec "Modes").
struct RowPlan {
  int64_t gamma = 1;
  int64_t tail = 0;          // number of dense rows at the end
  int64_t sparse_rows = 0;   // s_p = n_q - tail (0 when every row is dense)
  // Rows [0, sparse_rows) form blocks of gamma rows, each led by its anchor. When tail_min is not a
  // multiple of gamma, sparse_rows is not either and the last block is partial but still has its anchor
  // (the spec's floor(s_p / gamma) would leave those rows uncovered), hence the rounding up.
  int64_t num_anchors() const { return (sparse_rows + gamma - 1) / gamma; }
  int64_t anchor_of(int64_t row) const { return (row / gamma) * gamma; }
  bool is_tail(int64_t row) const { return row >= sparse_rows; }
  bool is_anchor(int64_t row) const { return row < sparse_rows && row % gamma == 0; }
};

inline int64_t effective_tail_min(const AttentionParams& p) {
  return p.tail_min >= 0 ? p.tail_min : (p.gamma > 128 ? p.gamma : 128);
}

// Saturating: tail = n_q mod gamma + tail_min is compared with n_q without forming the sum, so tail_min
// or gamma near INT64_MAX makes every row dense instead of wrapping around.
inline RowPlan make_row_plan(int64_t n_q, const AttentionParams& p) {
  RowPlan plan;
  plan.gamma = p.gamma;
  const int64_t remainder = n_q % p.gamma;
  const int64_t tail_min = effective_tail_min(p);
  plan.tail = tail_min >= n_q - remainder ? n_q : remainder + tail_min;
  plan.sparse_rows = n_q - plan.tail;
  return plan;
}

// a + b for non-negative a, b, saturating at INT64_MAX (window + sink with values up to INT64_MAX).
inline int64_t saturating_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

// Keys visible to a sparse row at absolute position pos: [0, sink_end) and [window_begin, pos], never
// overlapping, so each key counts once (window_sink.h holds the geometry).
using SparseKeys = window_sink::RowKeyRanges<int64_t>;
inline SparseKeys sparse_keys(int64_t pos, int64_t window, int64_t sink) {
  return window_sink::row_key_ranges(pos, window, sink);
}

// Query-key pairs each mode visits (for GFLOP/s and cost reports), summed over one head.
double dense_pairs(int64_t n_q, int64_t n_kv);
double mode_pairs(const AttentionShape& s, const AttentionParams& p);

}  // namespace dattn
