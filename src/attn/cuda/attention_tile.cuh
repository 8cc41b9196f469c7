// The FlashAttention-2 style core shared by every kernel of the family: one CTA of 4 warps owns a tile
// of 128 query rows (32 per warp, Q kept in shared memory), streams 64-key K/V tiles through a two-stage
// pipeline (key_pass.cuh: TMA or cp.async), and keeps the online softmax (running max and sum, exp2
// domain) in fp32. This file: tile shapes, query/key tile geometry, masks, the softmax state, loads of
// the query tile, and the epilogue stores.
//
// A query tile is either consecutive rows or rows gathered with a stride (every gamma-th row: the
// anchors). Keys come as at most two ranges of key tiles: [0, last] for dense rows, or the sink tiles
// plus the window tiles for sparse rows. Only tiles that straddle a boundary (diagonal, window start,
// sink end, sequence end) evaluate the per-element mask.
#pragma once
#include <cuda_runtime.h>

#include "dattn/attn/window_sink.h"
#include "kernel_params.h"
#include "mma_primitives.cuh"
#include "tma_primitives.cuh"
#include "wgmma_primitives.cuh"

// Query m-tiles (16 rows) per warp; a build option only so that 1 and 2 can be timed against each other.
#ifndef DATTN_CUDA_M_TILES
#define DATTN_CUDA_M_TILES 2
#endif
// Whether the sm_90a binary computes P V on wgmma (1) or mma.sync (0), per kernel (the sm_80 binary always
// uses mma.sync). Build options so both can be timed against each other (bench/cuda/ab_bench.sh). Measured
// on an H200 (docs/CUDA_NOTES.md, runs 8-10): with cp.async loads wgmma made the sparse kernel 13% faster
// and the dense-rows kernel 10% slower at 128K; with TMA loads it makes the dense-rows kernel faster too
// (delta at 1M: 532 -> 474 ms).
#ifndef DATTN_CUDA_SPARSE_PV_WGMMA
#define DATTN_CUDA_SPARSE_PV_WGMMA 1
#endif
#ifndef DATTN_CUDA_DENSE_PV_WGMMA
#define DATTN_CUDA_DENSE_PV_WGMMA 1
#endif

namespace dattn::cuda::detail {

template <int kHeadDim_>
struct TileShape {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  // Each warp owns kMTiles x 16 query rows: every K/V fragment read from shared memory feeds kMTiles
  // matrix products, halving shared-memory traffic per flop against 16 rows per warp.
  static constexpr int kMTiles = DATTN_CUDA_M_TILES;
  static constexpr int kBlockM = 16 * kMTiles * kWarps;  // query rows per CTA
  static constexpr int kBlockN = 64;                     // keys per tile
  // A 16-byte pad per shared-memory row puts the 8 rows that one ldmatrix reads in distinct banks.
  static constexpr int kRowElems = kHeadDim + 8;
  static constexpr int kTileElems = kBlockN * kRowElems;
  static constexpr int kQueryElems = kBlockM * kRowElems;
  // Q (re-read every key tile, so it never occupies registers), then K and V in two stages each; every
  // region starts 1024-byte aligned (the swizzled wgmma layout needs it), then the two stages' TMA
  // barriers (8 bytes each), plus 1024 bytes to align the base.
  static constexpr int kBarrierOffsetElems = kQueryElems + 4 * kTileElems;
  static constexpr int kSmemBytes = kBarrierOffsetElems * 2 + 2 * 8 + 1024;
  static_assert(kQueryElems * 2 % 1024 == 0 && kTileElems * 2 % 1024 == 0);
  static constexpr int kMinBlocksPerSm = 2;
};

inline constexpr bool kSparseRowsPvWgmma = kHaveWgmma && DATTN_CUDA_SPARSE_PV_WGMMA;
inline constexpr bool kDenseRowsPvWgmma = kHaveWgmma && DATTN_CUDA_DENSE_PV_WGMMA;

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Dynamic shared memory is only guaranteed 16-byte aligned: round up to 1024 (kSmemBytes has the slack).
template <typename Elem>
__device__ __forceinline__ Elem* aligned_smem(unsigned char* raw) {
  const uint32_t address = shared_address(raw);
  return reinterpret_cast<Elem*>(raw + ((1024 - (address & 1023)) & 1023));
}

// The rows of one query tile: row r (0 <= r < rows) is query row row_begin + r * row_step.
struct QueryTile {
  int row_begin, row_step, rows;
  int pos_first, pos_last;  // absolute positions of the first and last valid row
  __device__ int row(int r) const { return row_begin + r * row_step; }
};

__device__ inline QueryTile make_query_tile(const AttentionKernelParams& p, int row_begin, int row_step,
                                            int rows) {
  const int offset = p.n_kv - p.n_q;
  return {row_begin, row_step, rows, offset + row_begin, offset + row_begin + (rows - 1) * row_step};
}

// How a key pass decides which keys a row sees: every causal key (dense), window + sink, or the key units
// that block top-k listed for the query tile (block_list; kernel_params.h).
enum class KeyMode { dense, window_sink, block_list };

// Key tiles to visit: [begin0, end0) then [begin1, end1). With KeyMode::block_list the tiles are positions
// in the tile's list of key units, `units` (begin0 = 0, end0 = the list's length).
struct KeyTileRanges {
  int begin0, end0, begin1, end1;
  const int32_t* units = nullptr;
};

// Block top-k: the listed key units of sparse query tile `tile` (128 rows) of (b, kv_head).
__device__ inline KeyTileRanges listed_key_units(const AttentionKernelParams& p, int b, int kv_head, int tile) {
  const int64_t list = (int64_t(b) * p.h_kv + kv_head) * p.query_tiles + tile;
  return {0, p.key_unit_counts[list], 0, 0, p.key_units + list * p.key_unit_capacity};
}
inline constexpr int kKeyUnit = 64;  // keys per listed unit: one TMA box, one 64-key tile
__device__ __forceinline__ int unit_first_key(int32_t entry) { return (entry >> 2) * kKeyUnit; }
// Does the 64-row group `group` of the query tile keep this listed unit?
__device__ __forceinline__ bool unit_kept_by(int32_t entry, int group) { return (entry >> group) & 1; }

template <int kBlockN>
__device__ inline KeyTileRanges dense_key_tiles(const QueryTile& qt) {
  return {0, qt.pos_last / kBlockN + 1, 0, 0};
}

template <int kBlockN>
__device__ inline KeyTileRanges sparse_key_tiles(const AttentionKernelParams& p, const QueryTile& qt) {
  const window_sink::KeyBlocks<int> tiles =
      window_sink::key_blocks(qt.pos_first, qt.pos_last, p.window, p.sink, kBlockN);
  if (tiles.window_block <= tiles.sink_blocks) return {0, tiles.last_block + 1, 0, 0};
  return {0, tiles.sink_blocks, tiles.window_block, tiles.last_block + 1};
}

// Copies up to kRows rows of head_dim elements (rows first_row + r * row_step, r < valid_rows) into a
// padded shared tile; missing rows become zeros so that masked products stay finite.
template <typename Elem, int kHeadDim, int kRows, bool kSwizzled = false>
__device__ __forceinline__ void load_tile_async(Elem* tile, const Elem* base, int64_t row_stride, int first_row,
                                                int row_step, int valid_rows) {
  using S = TileShape<kHeadDim>;
  constexpr int kChunksPerRow = kHeadDim / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % S::kThreads == 0);
#pragma unroll
  for (int i = 0; i < kChunks / S::kThreads; ++i) {
    const int chunk = int(threadIdx.x) + i * S::kThreads;
    const int r = chunk / kChunksPerRow, col = (chunk % kChunksPerRow) * 8;
    const bool valid = r < valid_rows;
    const Elem* src = valid ? base + int64_t(first_row + r * row_step) * row_stride + col : base;
    Elem* dst = kSwizzled ? tile + swizzled_offset(kRows, r, col / 8) : tile + r * S::kRowElems + col;
    cp_async_16(dst, src, valid);
  }
}

// Per-warp softmax state for its kM x 16 rows; in m-tile m each thread holds rows (lane / 4) and
// (lane / 4 + 8), indexed [m][0] and [m][1]. kM: TileShape's 2 for the one-warpgroup kernels, 1 for the
// warp-specialised ones (ws_key_pass.cuh), whose warpgroups own 64 rows each.
template <int kHeadDim, int kM_ = TileShape<kHeadDim>::kMTiles>
struct SoftmaxAccumulator {
  static constexpr int kM = kM_;
  float o[kM][kHeadDim / 8][4];
  float row_max[kM][2];  // unscaled scores
  float row_sum[kM][2];  // partial over this thread's columns until finish()

  __device__ void reset() {
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int d = 0; d < kHeadDim / 8; ++d)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[m][d][e] = 0.f;
      row_max[m][0] = row_max[m][1] = kNegInf;
      row_sum[m][0] = row_sum[m][1] = 0.f;
    }
  }

  // Normalises o in place and returns the natural-log LSE of every row the thread holds (row_max is in
  // unscaled score units, scale_log2 = softmax scale * log2(e)). A row that saw no key (possible only in
  // one chunk of a split key range) keeps o = 0 and gets LSE = -inf, never NaN.
  __device__ void finish(float scale_log2, float (&lse)[kM][2]) {
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        row_sum[m][r] += __shfl_xor_sync(0xffffffffu, row_sum[m][r], 1);
        row_sum[m][r] += __shfl_xor_sync(0xffffffffu, row_sum[m][r], 2);
        lse[m][r] = row_sum[m][r] > 0.f ? row_max[m][r] * (scale_log2 * kLn2) + __logf(row_sum[m][r]) : kNegInf;
      }
      const float inv0 = row_sum[m][0] > 0.f ? 1.f / row_sum[m][0] : 0.f;
      const float inv1 = row_sum[m][1] > 0.f ? 1.f / row_sum[m][1] : 0.f;
#pragma unroll
      for (int d = 0; d < kHeadDim / 8; ++d) {
        o[m][d][0] *= inv0;
        o[m][d][1] *= inv0;
        o[m][d][2] *= inv1;
        o[m][d][3] *= inv1;
      }
    }
  }
};

// The online softmax of one key tile for the thread's two rows of a 16-row block, in two steps so that
// the caller can rescale O in between (or later). s: the tile's unscaled scores, kN groups of 8 columns (a
// row's columns live in one quad of lanes); scale = softmax scale * log2(e).
// Step 1: the new running max, alpha (what O and the sum owe: exactly 1 once a row's max settles), the sum
// rescaled (not fused with step 2's adds: every key pass rounds alike), and the exp2 offset for step 2.
template <int kN>
__device__ __forceinline__ void softmax_new_max(const float (&s)[kN][4], float (&row_max)[2], float (&row_sum)[2],
                                                float scale, float (&alpha)[2], float (&base_scaled)[2]) {
  float new_max[2] = {row_max[0], row_max[1]};
#pragma unroll
  for (int n = 0; n < kN; ++n) {
    new_max[0] = fmaxf(new_max[0], fmaxf(s[n][0], s[n][1]));
    new_max[1] = fmaxf(new_max[1], fmaxf(s[n][2], s[n][3]));
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    new_max[r] = fmaxf(new_max[r], __shfl_xor_sync(0xffffffffu, new_max[r], 1));
    new_max[r] = fmaxf(new_max[r], __shfl_xor_sync(0xffffffffu, new_max[r], 2));
    const float base = new_max[r] == kNegInf ? 0.f : new_max[r];  // a row with no visible key yet stays at zero
    base_scaled[r] = base * scale;
    alpha[r] = fast_exp2((row_max[r] - base) * scale);
    row_max[r] = new_max[r];
    row_sum[r] = __fmul_rn(row_sum[r], alpha[r]);
  }
}

// Step 2: s = exp2(scale * s - base) in place (the probabilities, unnormalised), added to the sum.
template <int kN>
__device__ __forceinline__ void softmax_exponentiate(float (&s)[kN][4], const float (&base_scaled)[2], float scale,
                                                     float (&row_sum)[2]) {
#pragma unroll
  for (int n = 0; n < kN; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = fast_exp2(fmaf(s[n][e], scale, -base_scaled[e / 2]));
      row_sum[e / 2] += s[n][e];
    }
}

// O's share of a step: o *= alpha per row, skipped when every row max of the warp held (alpha exactly 1:
// most tiles of a long row).
template <int kD>
__device__ __forceinline__ void softmax_rescale(float (&o)[kD][4], const float (&alpha)[2]) {
  if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
    for (int d = 0; d < kD; ++d) {
      o[d][0] *= alpha[0];
      o[d][1] *= alpha[0];
      o[d][2] *= alpha[1];
      o[d][3] *= alpha[1];
    }
  }
}

// Query row (within the CTA tile) of the thread's row r (0/1) in m-tile m. With wgmma, m-tile m of
// warpgroup g is the (g + m)-th 64-row block (one warpgroup instruction, warp w of the group owning rows
// 16w..16w+15 of it: one warpgroup with 2 m-tiles, or one m-tile per warpgroup); with mma.sync a warp owns
// kM consecutive 16-row tiles.
template <int kHeadDim, int kM = TileShape<kHeadDim>::kMTiles>
__device__ __forceinline__ int local_row(int m, int r) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if constexpr (kHaveWgmma) return (warp / 4 + m) * 64 + (warp % 4) * 16 + lane / 4 + 8 * r;
  return (warp * kM + m) * 16 + lane / 4 + 8 * r;
}

// Calls f(m, r, local) for each row the thread holds in the tile (its row r of m-tile m, the tile's row
// `local`) that exists (local < qt.rows): the loop of every epilogue. Unrolled, so m and r index registers.
template <int kHeadDim, int kM, typename F>
__device__ __forceinline__ void for_each_thread_row(const QueryTile& qt, F&& f) {
#pragma unroll
  for (int m = 0; m < kM; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int local = local_row<kHeadDim, kM>(m, r);
      if (local < qt.rows) f(m, r, local);
    }
}

// Is key `key` visible to the query at position `pos`? (window + sink, or causal; a listed unit's keys are
// causal only, its ownership is checked by the caller)
template <KeyMode kMode>
__device__ __forceinline__ bool key_visible(const AttentionKernelParams& p, int key, int pos) {
  if constexpr (kMode == KeyMode::window_sink) return window_sink::sees_key(key, pos, p.window, p.sink);
  return key <= pos;
}

// Does any row of a strided query tile see a key of tile [kb, kb + kBlockN)? Gathered anchors are
// gamma positions apart, so the window tiles between their windows can be skipped entirely.
template <KeyMode kMode, int kBlockN>
__device__ __forceinline__ bool key_tile_needed(const AttentionKernelParams& p, const QueryTile& qt, int tile) {
  if (kMode != KeyMode::window_sink || qt.row_step == 1) return true;
  return window_sink::strided_rows_see_block(qt.pos_first, qt.row_step, qt.rows, tile * kBlockN, kBlockN, p.window,
                                             p.sink);
}

template <KeyMode kMode, int kBlockN>
__device__ __forceinline__ bool key_tile_unmasked(const AttentionKernelParams& p, const QueryTile& qt, int tile) {
  static_assert(kMode != KeyMode::block_list, "listed units: see block_list_tile_unmasked");
  const int kb = tile * kBlockN, ke = kb + kBlockN - 1;
  if constexpr (kMode == KeyMode::window_sink)
    return window_sink::rows_see_all_keys(qt.pos_first, qt.pos_last, kb, ke, p.window, p.sink);
  return ke <= qt.pos_first;  // not on the causal diagonal, nor past the sequence end
}

// A key tile made of the listed units [first, first + kUnits): unmasked when every unit exists, both row
// groups keep it, and all its keys precede the tile's first row.
template <int kUnits>
__device__ __forceinline__ bool block_list_tile_unmasked(const QueryTile& qt, const KeyTileRanges& list, int first) {
  if (first + kUnits > list.end0) return false;
#pragma unroll
  for (int u = 0; u < kUnits; ++u) {
    const int32_t entry = list.units[first + u];
    if ((entry & 3) != 3 || unit_first_key(entry) + kKeyUnit - 1 > qt.pos_first) return false;
  }
  return true;
}

// Loads the query tile into smem (it stays there for every key pass) and the positions of the thread's
// rows (rows past the tile's end borrow the last valid position; they are never stored).
template <typename Elem, int kHeadDim>
__device__ __forceinline__ void load_query_tile(const AttentionKernelParams& p, const QueryTile& qt, const Elem* q_base,
                                                Elem* smem, int (&pos)[TileShape<kHeadDim>::kMTiles][2]) {
  using S = TileShape<kHeadDim>;
  load_tile_async<Elem, kHeadDim, S::kBlockM, kHaveWgmma>(smem, q_base, p.q.row_stride, qt.row_begin, qt.row_step,
                                                          qt.rows);
  cp_async_commit();
#pragma unroll
  for (int m = 0; m < S::kMTiles; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int local = local_row<kHeadDim>(m, r);
      pos[m][r] = local < qt.rows ? qt.pos_first + local * qt.row_step : qt.pos_last;
    }
  // The first key pass waits for this group together with its first K/V tile.
}

template <typename Elem>
__device__ __forceinline__ const Elem* head_base(const OperandPtr& t, int b, int h) {
  return static_cast<const Elem*>(t.data) + int64_t(b) * t.batch_stride + int64_t(h) * t.head_stride;
}

__device__ __forceinline__ void store_pair(const AttentionKernelParams& p, int64_t index, float a, float b) {
  // NaN or Inf reaching an output (a non-finite input the row sees, or scores past fp32): the host reports it
  if (p.non_finite_output && !(isfinite(a) && isfinite(b))) *p.non_finite_output = 1;
  switch (p.out_type) {
    case OutType::f32: *reinterpret_cast<float2*>(static_cast<float*>(p.out) + index) = make_float2(a, b); break;
    case OutType::bf16:
      *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p.out) + index) = __floats2bfloat162_rn(a, b);
      break;
    case OutType::f16:
      *reinterpret_cast<__half2*>(static_cast<__half*>(p.out) + index) = __floats2half2_rn(a, b);
      break;
  }
}

__device__ __forceinline__ void store_row_lse(const AttentionKernelParams& p, int b, int h, int row, float lse) {
  if (p.lse)
    p.lse[int64_t(b) * p.lse_batch_stride + int64_t(h) * p.lse_head_stride + int64_t(row) * p.lse_row_stride] = lse;
}

__device__ __forceinline__ int64_t out_row_index(const AttentionKernelParams& p, int b, int h, int row) {
  return int64_t(b) * p.out_batch_stride + int64_t(row) * p.out_row_stride + int64_t(h) * p.out_head_stride;
}

// The anchor gap ||Δ|| / ||dense(anchor)|| (0 where dense is zero) of anchor j from the thread's share of
// the row's squared sums; the four lanes of a quad hold one row and take this branch together.
__device__ __forceinline__ void write_anchor_gap(const AttentionKernelParams& p, int b, int h, int j, float delta_sq,
                                                 float dense_sq) {
  const unsigned quad = 0xfu << ((threadIdx.x % 32) & ~3u);
  delta_sq += __shfl_xor_sync(quad, delta_sq, 1);
  dense_sq += __shfl_xor_sync(quad, dense_sq, 1);
  delta_sq += __shfl_xor_sync(quad, delta_sq, 2);
  dense_sq += __shfl_xor_sync(quad, dense_sq, 2);
  if (threadIdx.x % 4 == 0)
    p.anchor_gap[(int64_t(b) * p.h_q + h) * p.num_anchors + j] = dense_sq > 0.f ? sqrtf(delta_sq / dense_sq) : 0.f;
}

// Row of p.delta for anchor `anchor` of head (b, h): Δ, or dense(anchor) (AnchorOutput::dense_into_delta).
template <int kHeadDim>
__device__ __forceinline__ float* anchor_row(const AttentionKernelParams& p, int b, int h, int anchor) {
  return p.delta + ((int64_t(b) * p.h_q + h) * p.num_anchors + anchor) * kHeadDim;
}

// Writes the thread's rows of acc, corrected per kEpilogue (kernel_params.h), and their LSE.
//  - add_delta / interpolate: p.delta holds Δ = dense - sparse; a row adds Δ of its anchor j (interpolate:
//    (1 - t) Δ_j + t Δ_{j+1}, t = (row - a_j) / gamma, where a next anchor exists). An anchor row's own
//    sparse output is acc, so its dense row is acc + Δ.
//  - delta_from_tile: p.delta holds dense(anchor); sparse_anchor(local, col, x0, x1) returns the float2 of
//    the row's anchor's sparse row at column col (staged by stage_anchor_rows; x0, x1: the row's own pair,
//    which is it when the row is its own anchor), and the row adds Δ = dense - sparse.
// With p.anchor_gap the epilogue that forms an anchor's output from Δ also writes its anchor gap.
struct NoSparseAnchor {};
template <RowEpilogue kEpilogue, int kHeadDim, int kM, typename SparseAnchor = NoSparseAnchor>
__device__ __forceinline__ void store_rows(const AttentionKernelParams& p, const QueryTile& qt, int b, int h,
                                           const SoftmaxAccumulator<kHeadDim, kM>& acc, const float (&lse)[kM][2],
                                           SparseAnchor sparse_anchor = {}) {
  constexpr bool kCorrects = kEpilogue == RowEpilogue::add_delta || kEpilogue == RowEpilogue::interpolate ||
                             kEpilogue == RowEpilogue::delta_from_tile;
  const int lane = threadIdx.x % 32;
  for_each_thread_row<kHeadDim, kM>(qt, [&](int m, int r, int local) {
    const int row = qt.row(local);
    const bool sparse_block_row = row < p.sparse_rows;
    if constexpr (kEpilogue == RowEpilogue::skip_anchor_rows)
      if (sparse_block_row && row % p.gamma == 0) return;
    // the p.delta row of the row's anchor (none for dense-tail rows)
    const float* anchor = kCorrects && sparse_block_row ? anchor_row<kHeadDim>(p, b, h, row / p.gamma) : nullptr;
    const float* next = nullptr;
    float t = 0.f;
    if constexpr (kEpilogue == RowEpilogue::interpolate) {
      const int j = row / p.gamma;
      if (anchor && j + 1 < p.num_anchors) {
        next = anchor + kHeadDim;
        t = float(row - j * p.gamma) / float(p.gamma);
      }
    }
    const bool gap_row = p.anchor_gap && anchor && row % p.gamma == 0;
    float delta_sq = 0.f, dense_sq = 0.f;
    const int64_t out_row = out_row_index(p, b, h, row);
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d) {
      const int col = d * 8 + 2 * (lane % 4);
      float x0 = acc.o[m][d][2 * r], x1 = acc.o[m][d][2 * r + 1];
      if constexpr (kEpilogue == RowEpilogue::delta_from_tile) {
        if (anchor) {
          const float2 dv = *reinterpret_cast<const float2*>(anchor + col);
          const float2 sv = sparse_anchor(local, col, x0, x1);
          if (gap_row) {
            delta_sq += (dv.x - sv.x) * (dv.x - sv.x) + (dv.y - sv.y) * (dv.y - sv.y);
            dense_sq += dv.x * dv.x + dv.y * dv.y;
          }
          x0 += dv.x - sv.x;  // Δ rounded as dense + (-sparse) is by the two-pass path: same bits
          x1 += dv.y - sv.y;
        }
      } else if constexpr (kCorrects) {
        if (anchor) {
          float2 dv = *reinterpret_cast<const float2*>(anchor + col);
          if (gap_row) {
            delta_sq += dv.x * dv.x + dv.y * dv.y;
            dense_sq += (x0 + dv.x) * (x0 + dv.x) + (x1 + dv.y) * (x1 + dv.y);
          }
          if (next) {
            const float2 nv = *reinterpret_cast<const float2*>(next + col);
            dv = make_float2((1.f - t) * dv.x + t * nv.x, (1.f - t) * dv.y + t * nv.y);
          }
          x0 += dv.x;
          x1 += dv.y;
        }
      }
      store_pair(p, out_row + col, x0, x1);
    }
    if (gap_row) write_anchor_gap(p, b, h, row / p.gamma, delta_sq, dense_sq);
    if (lane % 4 == 0) store_row_lse(p, b, h, row, lse[m][r]);
  });
}

// RowEpilogue::delta_from_tile, first step: the thread's anchor rows of acc (local rows that are multiples
// of gamma; tiles start at multiples of 128 and gamma divides 64) to slot(local, col), a float* of the
// kernel's staging area; the caller then syncs the threads that read them back in store_rows.
template <int kHeadDim, int kM, typename Slot>
__device__ __forceinline__ void stage_anchor_rows(const AttentionKernelParams& p, const QueryTile& qt,
                                                  const SoftmaxAccumulator<kHeadDim, kM>& acc, Slot slot) {
  const int lane = threadIdx.x % 32;
  for_each_thread_row<kHeadDim, kM>(qt, [&](int m, int r, int local) {
    if (local % p.gamma != 0) return;
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d) {
      const int col = d * 8 + 2 * (lane % 4);
      *reinterpret_cast<float2*>(slot(local, col)) = make_float2(acc.o[m][d][2 * r], acc.o[m][d][2 * r + 1]);
    }
  });
}

// What an anchor tile writes into its rows of p.delta. Δ = dense - sparse takes two steps: first
// minus_sparse, then add_dense (here, or the combine kernel after a split); each thread re-reads only what
// it wrote. With AnchorOutput::dense_into_delta the dense-rows kernel writes `dense` alone and the sparse
// kernel subtracts sparse(anchor).
enum class AnchorDeltaWrite { minus_sparse, add_dense, dense };
// What the dense pass of an anchor tile writes, per AnchorOutput (not dense_rows: those store their rows).
template <AnchorOutput kAnchors>
inline constexpr AnchorDeltaWrite kDenseAnchorWrite =
    kAnchors == AnchorOutput::dense_into_delta ? AnchorDeltaWrite::dense : AnchorDeltaWrite::add_dense;

template <AnchorDeltaWrite kWrite, int kHeadDim, int kM>
__device__ __forceinline__ void write_anchor_delta(const AttentionKernelParams& p, const QueryTile& qt, int b, int h,
                                                   const SoftmaxAccumulator<kHeadDim, kM>& acc) {
  const int lane = threadIdx.x % 32;
  for_each_thread_row<kHeadDim, kM>(qt, [&](int m, int r, int local) {
    float* row = anchor_row<kHeadDim>(p, b, h, qt.row(local) / p.gamma);  // an anchor tile: row `local` is an anchor
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d) {
      float2* cell = reinterpret_cast<float2*>(row + d * 8 + 2 * (lane % 4));
      const float x0 = acc.o[m][d][2 * r], x1 = acc.o[m][d][2 * r + 1];
      if constexpr (kWrite == AnchorDeltaWrite::minus_sparse) {
        *cell = make_float2(-x0, -x1);
      } else if constexpr (kWrite == AnchorDeltaWrite::add_dense) {
        const float2 minus_sparse = *cell;
        *cell = make_float2(x0 + minus_sparse.x, x1 + minus_sparse.y);
      } else {
        *cell = make_float2(x0, x1);
      }
    }
  });
}

}  // namespace dattn::cuda::detail
