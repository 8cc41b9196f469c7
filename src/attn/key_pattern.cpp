// The key patterns: window + sink (geometry in window_sink.h) and block top-k's selection.
#include "dattn/attn/key_pattern.h"

#include <algorithm>
#include <limits>

#include "dattn/core/error.h"
#include "dattn/core/threads.h"

namespace dattn {
namespace {

// Appends [begin, end) to ascending ranges, merging with the last one when they touch.
void append_range(std::vector<KeyRange>& out, int64_t begin, int64_t end) {
  if (begin >= end) return;
  if (!out.empty() && out.back().end >= begin)
    out.back().end = std::max(out.back().end, end);
  else
    out.push_back({begin, end});
}

// One (batch, kv head): the block means, then every query block's list.
template <typename Acc>
void select_for_head(const TensorView& q, const TensorView& k, const AttentionShape& s, const AttentionParams& p,
                     int64_t b, int64_t kv, std::vector<std::vector<int32_t>>& lists, int64_t q_blocks) {
  const int64_t d = s.head_dim, bq = p.block_q, bk = p.block_k, group = s.group();
  const int64_t k_blocks = (s.n_kv + bk - 1) / bk;
  std::vector<Acc> key_mean(static_cast<size_t>(k_blocks * d), Acc(0)), query_mean(static_cast<size_t>(d));
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    Acc* mean = key_mean.data() + kb * d;
    const int64_t j1 = std::min(s.n_kv, (kb + 1) * bk);
    for (int64_t j = kb * bk; j < j1; ++j)
      for (int64_t c = 0; c < d; ++c) mean[c] += Acc(k.get(b, j, kv, c));
    for (int64_t c = 0; c < d; ++c) mean[c] /= Acc(j1 - kb * bk);
  }
  std::vector<std::pair<Acc, int32_t>> candidates;
  for (int64_t qb = 0; qb < q_blocks; ++qb) {
    const int64_t r0 = qb * bq, r1 = std::min(s.n_q, r0 + bq);
    std::fill(query_mean.begin(), query_mean.end(), Acc(0));
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < group; ++g)
        for (int64_t c = 0; c < d; ++c) query_mean[size_t(c)] += Acc(q.get(b, r, kv * group + g, c));
    for (Acc& x : query_mean) x /= Acc((r1 - r0) * group);

    // the mandatory blocks: those holding a sink key, and those any window of the block's rows reaches
    const window_sink::KeyBlocks<int64_t> mandatory =
        window_sink::key_blocks(s.position(r0), s.position(r1 - 1), p.window, p.sink, bk);
    std::vector<int32_t>& list = lists[size_t((b * s.h_kv + kv) * q_blocks + qb)];
    candidates.clear();
    for (int64_t kb = 0; kb <= mandatory.last_block; ++kb) {
      if (kb < mandatory.sink_blocks || kb >= mandatory.window_block) {
        list.push_back(int32_t(kb));
        continue;
      }
      const Acc* mean = key_mean.data() + kb * d;
      Acc score = 0;
      for (int64_t c = 0; c < d; ++c) score += query_mean[size_t(c)] * mean[c];
      candidates.push_back({score, int32_t(kb)});
    }
    const size_t keep = size_t(std::min<int64_t>(p.topk, int64_t(candidates.size())));
    std::partial_sort(candidates.begin(), candidates.begin() + ptrdiff_t(keep), candidates.end(),
                      [](const auto& a, const auto& c) { return a.first > c.first || (a.first == c.first && a.second < c.second); });
    for (size_t i = 0; i < keep; ++i) list.push_back(candidates[i].second);
    std::sort(list.begin(), list.end());
  }
}

}  // namespace

BlockSelection select_key_blocks(const TensorView& q, const TensorView& k, const AttentionParams& params, bool fp64,
                                 int num_threads) {
  const AttentionShape s = attention_shape(q, k);
  BlockSelection sel;
  sel.batch = s.batch;
  sel.h_kv = s.h_kv;
  sel.block_q = params.block_q;
  sel.block_k = params.block_k;
  sel.q_blocks = (s.n_q + params.block_q - 1) / params.block_q;
  DATTN_CHECK((s.n_kv + params.block_k - 1) / params.block_k < std::numeric_limits<int32_t>::max(),
              "block_topk: n_kv {} / block_k {} exceeds int32 block indices", s.n_kv, params.block_k);
  std::vector<std::vector<int32_t>> lists(size_t(s.batch * s.h_kv * sel.q_blocks));
  const int threads = num_threads > 0 ? num_threads : default_num_threads();
  parallel_for(s.batch * s.h_kv, threads, [&](int64_t bh, int) {
    if (fp64)
      select_for_head<double>(q, k, s, params, bh / s.h_kv, bh % s.h_kv, lists, sel.q_blocks);
    else
      select_for_head<float>(q, k, s, params, bh / s.h_kv, bh % s.h_kv, lists, sel.q_blocks);
  });
  sel.offsets.reserve(lists.size() + 1);
  sel.offsets.push_back(0);
  for (const auto& list : lists) {
    sel.key_blocks.insert(sel.key_blocks.end(), list.begin(), list.end());
    sel.offsets.push_back(int64_t(sel.key_blocks.size()));
  }
  return sel;
}

KeyPatternPlan::KeyPatternPlan(const TensorView& q, const TensorView& k, const AttentionParams& params, bool fp64,
                               int num_threads)
    : shape_(attention_shape(q, k)), pattern_(params.mode == AttentionMode::dense ? KeyPattern::window_sink : params.pattern),
      window_(params.window), sink_(params.sink) {
  if (pattern_ == KeyPattern::block_topk) selection_ = select_key_blocks(q, k, params, fp64, num_threads);
}

int64_t KeyPatternPlan::segment_end(int64_t row) const {
  if (pattern_ == KeyPattern::window_sink) return shape_.n_q;
  return std::min(shape_.n_q, (row / selection_.block_q + 1) * selection_.block_q);
}

RowKeys KeyPatternPlan::row_keys(int64_t row, bool dense) const {
  const int64_t pos = shape_.position(row);
  if (dense || pattern_ == KeyPattern::block_topk) return {pos + 1, pos + 1, pos + 1};
  const SparseKeys keys = sparse_keys(pos, window_, sink_);
  return {keys.sink_end, keys.window_begin, pos + 1};
}

void KeyPatternPlan::append_blocks(int64_t batch, int64_t kv_head, int64_t row, int64_t end,
                                   std::vector<KeyRange>& out) const {
  const int64_t bk = selection_.block_k;
  for (int32_t kb : selection_.blocks(batch, kv_head, row / selection_.block_q))
    append_range(out, int64_t(kb) * bk, std::min(end, (int64_t(kb) + 1) * bk));
}

void KeyPatternPlan::row_ranges(int64_t batch, int64_t kv_head, int64_t row, std::vector<KeyRange>& out) const {
  out.clear();
  const int64_t end = shape_.position(row) + 1;
  if (pattern_ == KeyPattern::block_topk) return append_blocks(batch, kv_head, row, end, out);
  const RowKeys keys = row_keys(row, false);
  append_range(out, 0, keys.sink_end);
  append_range(out, keys.window_begin, end);
}

void KeyPatternPlan::tile_ranges(int64_t batch, int64_t kv_head, int64_t first_row, const std::vector<RowKeys>& rows,
                                 bool dense, std::vector<KeyRange>& out) const {
  out.clear();
  if (!dense && pattern_ == KeyPattern::block_topk) {
    int64_t end = 0;
    for (const RowKeys& r : rows) end = std::max(end, r.end);
    return append_blocks(batch, kv_head, first_row, end, out);
  }
  // window + sink (and dense rows): at most two disjoint ranges, the sink part and the window part, merged
  // when they touch. Query positions grow with the row index, so both parts grow monotonically.
  int64_t sink_end = 0, window_begin = std::numeric_limits<int64_t>::max(), window_end = 0;
  for (const RowKeys& r : rows) {
    sink_end = std::max(sink_end, r.sink_end);
    if (r.has_window()) {
      window_begin = std::min(window_begin, r.window_begin);
      window_end = std::max(window_end, r.end);
    }
  }
  if (window_end == 0 || window_begin <= sink_end) {
    out.push_back({0, std::max(sink_end, window_end)});
    return;
  }
  if (sink_end > 0) out.push_back({0, sink_end});
  out.push_back({window_begin, window_end});
}

}  // namespace dattn
