// The tile loop of the CPU backend: pack, score, mask (edge blocks only), online softmax, accumulate.
#include "tile.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <vector>

#include "micro_kernels.h"
#include "simd.h"

namespace dattn::cpu {
namespace {

// Keys per block: 96 keys x 96 columns of fp32 scores is 36 KiB, which stays in L1/L2 between the
// scores, softmax and accumulate passes.
constexpr int64_t kKeyBlock = 96;

const void* element(const TensorView& t, int64_t i0, int64_t i1, int64_t i2) {
  return static_cast<const char*>(t.data) + t.offset(i0, i1, i2, 0) * int64_t(dtype_size(t.dtype));
}

int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

}  // namespace

void TileWorkspace::FreeAligned::operator()(void* p) const { std::free(p); }

TileWorkspace::Buffer TileWorkspace::allocate(int64_t floats) {
  const size_t bytes = size_t(round_up(std::max<int64_t>(floats, 16) * int64_t(sizeof(float)), 64));
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return Buffer(static_cast<float*>(p));
}

void TileWorkspace::reserve(int64_t columns, int64_t head_dim, int64_t key_block) {
  columns_ = columns;
  if (columns <= capacity_columns_ && head_dim <= capacity_head_dim_) return;
  capacity_columns_ = std::max(columns, capacity_columns_);
  capacity_head_dim_ = std::max(head_dim, capacity_head_dim_);
  const int64_t c = capacity_columns_, d = capacity_head_dim_;
  query_t_ = allocate(d * c);
  keys_ = allocate(key_block * d);
  values_ = allocate(key_block * d);
  scores_ = allocate(key_block * c);
  output_ = allocate(d * c);
  for (Buffer* b : {&row_max_, &row_sum_, &alpha_, &shift_, &block_sum_, &lse_}) *b = allocate(c);
  row_buffer_ = allocate(d);
  sink_end_ = std::make_unique<int32_t[]>(size_t(c));
  window_begin_ = std::make_unique<int32_t[]>(size_t(c));
  key_end_ = std::make_unique<int32_t[]>(size_t(c));
}

void compute_tile(const AttentionProblem& problem, const QueryTile& tile, TileWorkspace& ws) {
  const AttentionShape& s = problem.shape;
  const int64_t group = s.group(), d = s.head_dim;
  const int64_t real_columns = tile.row_count * group;
  const int64_t ld = round_up(real_columns, kPanelCols);
  ws.reserve(ld, d, kKeyBlock);

  std::vector<RowKeys>& rows = ws.rows_;
  rows.resize(size_t(tile.row_count));
  for (int64_t r = 0; r < tile.row_count; ++r) rows[size_t(r)] = problem.pattern->row_keys(tile.row(r), tile.dense);

  // Q^T, pre-scaled; padding columns are zero queries that allow every key (never written out).
  float* query_t = ws.query_t_.get();
  float* row_buffer = ws.row_buffer_.get();
  for (int64_t m = 0; m < ld; ++m) {
    if (m < real_columns) {
      const int64_t r = m / group, head = tile.kv_head * group + m % group;
      load_row(element(problem.q, tile.batch, tile.row(r), head), problem.q.dtype, problem.q.stride[3], d, row_buffer);
      for (int64_t c = 0; c < d; ++c) query_t[c * ld + m] = row_buffer[c] * problem.score_scale;
      const RowKeys& keys = rows[size_t(r)];
      ws.sink_end_[size_t(m)] = int32_t(keys.sink_end);
      ws.window_begin_[size_t(m)] = int32_t(keys.window_begin);
      ws.key_end_[size_t(m)] = int32_t(keys.end);
    } else {
      for (int64_t c = 0; c < d; ++c) query_t[c * ld + m] = 0.0f;
      ws.sink_end_[size_t(m)] = std::numeric_limits<int32_t>::max();
      ws.window_begin_[size_t(m)] = ws.key_end_[size_t(m)] = 0;
    }
  }

  float* output = ws.output_.get();
  float* row_max = ws.row_max_.get();
  float* row_sum = ws.row_sum_.get();
  std::fill(output, output + d * ld, 0.0f);
  std::fill(row_max, row_max + ld, -INFINITY);
  std::fill(row_sum, row_sum + ld, 0.0f);

  float* keys = ws.keys_.get();
  float* values = ws.values_.get();
  float* scores = ws.scores_.get();
  float* alpha = ws.alpha_.get();
  float* shift = ws.shift_.get();
  float* block_sum = ws.block_sum_.get();
  const TensorView& kt = problem.k;
  const TensorView& vt = problem.v;

  std::vector<KeyRange>& ranges = ws.ranges_;
  problem.pattern->tile_ranges(tile.batch, tile.kv_head, tile.first_row, rows, tile.dense, ranges);
  for (const KeyRange& range : ranges) {
    for (int64_t j0 = range.begin; j0 < range.end; j0 += kKeyBlock) {
      const int64_t j1 = std::min(j0 + kKeyBlock, range.end), nb = j1 - j0;

      // Columns whose rows see a key here, widened to whole 16-column panels; mask only if some row
      // in those panels sees part of the block (causal diagonal, window start, sink end).
      int64_t r_lo = -1, r_hi = -1;
      for (int64_t r = 0; r < tile.row_count; ++r)
        if (rows[size_t(r)].sees_any(j0, j1)) {
          if (r_lo < 0) r_lo = r;
          r_hi = r;
        }
      if (r_lo < 0) continue;
      const int64_t m_lo = r_lo * group / kPanelCols * kPanelCols;
      const int64_t m_hi = std::min(ld, round_up((r_hi + 1) * group, kPanelCols));
      bool need_mask = false;
      for (int64_t r = m_lo / group; r < tile.row_count && r * group < m_hi; ++r)
        need_mask = need_mask || !rows[size_t(r)].sees_all(j0, j1);

      for (int64_t n = 0; n < nb; ++n) {
        load_row(element(kt, tile.batch, j0 + n, tile.kv_head), kt.dtype, kt.stride[3], d, keys + n * d);
        load_row(element(vt, tile.batch, j0 + n, tile.kv_head), vt.dtype, vt.stride[3], d, values + n * d);
      }

      // S^T[n][m] = K[n] . Q^T[:, m]
      for (int64_t m0 = m_lo; m0 < m_hi; m0 += kPanelCols)
        for (int64_t n0 = 0; n0 < nb; n0 += kPanelRows)
          scores_panel_rows(int(std::min<int64_t>(kPanelRows, nb - n0)), keys + n0 * d, d, query_t + m0, ld,
                            scores + n0 * ld + m0, ld, d);

      if (need_mask) {
        const __m256 masked = _mm256_set1_ps(-INFINITY);
        for (int64_t n = 0; n < nb; ++n) {
          const __m256i j = _mm256_set1_epi32(int32_t(j0 + n));
          for (int64_t m = m_lo; m < m_hi; m += 8) {
            const __m256i sink_end = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&ws.sink_end_[size_t(m)]));
            const __m256i begin = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&ws.window_begin_[size_t(m)]));
            const __m256i end = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&ws.key_end_[size_t(m)]));
            const __m256i allowed = _mm256_or_si256(
                _mm256_cmpgt_epi32(sink_end, j),
                _mm256_andnot_si256(_mm256_cmpgt_epi32(begin, j), _mm256_cmpgt_epi32(end, j)));
            float* sp = scores + n * ld + m;
            _mm256_store_ps(sp, _mm256_blendv_ps(masked, _mm256_load_ps(sp), _mm256_castsi256_ps(allowed)));
          }
        }
      }

      // Online softmax per column: new maximum, rescale factor alpha, probabilities in place.
      for (int64_t m = m_lo; m < m_hi; m += 8) _mm256_store_ps(alpha + m, _mm256_set1_ps(-INFINITY));
      for (int64_t n = 0; n < nb; ++n)
        for (int64_t m = m_lo; m < m_hi; m += 8)
          _mm256_store_ps(alpha + m, _mm256_max_ps(_mm256_load_ps(alpha + m), _mm256_load_ps(scores + n * ld + m)));
      for (int64_t m = m_lo; m < m_hi; m += 8) {
        const __m256 old_max = _mm256_load_ps(row_max + m);
        const __m256 new_max = _mm256_max_ps(old_max, _mm256_load_ps(alpha + m));
        // a column with no key yet keeps max -inf; shift by 0 so exp2 sees -inf (-> 0), never NaN
        const __m256 none = _mm256_cmp_ps(new_max, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
        const __m256 use = _mm256_blendv_ps(new_max, _mm256_setzero_ps(), none);
        _mm256_store_ps(shift + m, use);
        _mm256_store_ps(alpha + m, exp2_ps(_mm256_sub_ps(old_max, use)));
        _mm256_store_ps(row_max + m, new_max);
        _mm256_store_ps(block_sum + m, _mm256_setzero_ps());
      }
      for (int64_t n = 0; n < nb; ++n)
        for (int64_t m = m_lo; m < m_hi; m += 8) {
          float* sp = scores + n * ld + m;
          const __m256 p = exp2_ps(_mm256_sub_ps(_mm256_load_ps(sp), _mm256_load_ps(shift + m)));
          _mm256_store_ps(sp, p);
          _mm256_store_ps(block_sum + m, _mm256_add_ps(_mm256_load_ps(block_sum + m), p));
        }
      for (int64_t m = m_lo; m < m_hi; m += 8)
        _mm256_store_ps(row_sum + m, _mm256_fmadd_ps(_mm256_load_ps(row_sum + m), _mm256_load_ps(alpha + m),
                                                     _mm256_load_ps(block_sum + m)));

      // O^T[c][m] = alpha[m] * O^T[c][m] + sum_n V[n][c] * P^T[n][m]
      for (int64_t m0 = m_lo; m0 < m_hi; m0 += kPanelCols)
        for (int64_t c0 = 0; c0 < d; c0 += kPanelRows)
          accumulate_panel_rows(int(std::min<int64_t>(kPanelRows, d - c0)), values + c0, d, scores + m0, ld,
                                output + c0 * ld + m0, ld, alpha + m0, nb);
    }
  }

  // Normalise; LSE back from the base-2 domain to natural log.
  float* lse = ws.lse_.get();
  for (int64_t m = 0; m < ld; ++m) {
    const float sum = row_sum[m] > 0.0f ? row_sum[m] : 1.0f;  // padding columns may have seen nothing
    alpha[m] = 1.0f / sum;
    lse[m] = float((double(row_max[m]) + std::log2(double(sum))) * 0.6931471805599453);
  }
  for (int64_t c = 0; c < d; ++c)
    for (int64_t m = 0; m < ld; m += 8)
      _mm256_store_ps(output + c * ld + m, _mm256_mul_ps(_mm256_load_ps(output + c * ld + m), _mm256_load_ps(alpha + m)));
}

}  // namespace dattn::cpu
