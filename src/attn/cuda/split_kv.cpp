// Split-KV plan for the dense-rows kernel (see split_kv.h).
#include "split_kv.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.h"
#include "dattn/core/error.h"

namespace dattn::cuda::detail {

SplitPlan plan_kv_splits(const AttentionKernelParams& p, int sm_count, int forced_splits, int ctas_per_sm,
                         int key_tile_keys) {
  const int tiles = p.contiguous_tiles + p.anchor_tiles;
  // The longest tile (the one holding the last row) sees every key: an upper bound for all tiles.
  const int key_tiles = (p.n_kv + key_tile_keys - 1) / key_tile_keys;
  const auto ceil_div = [](int a, int b) { return (a + b - 1) / b; };
  if (forced_splits > 0) {
    const int splits = std::min(forced_splits, kMaxKvSplits);
    if (splits < 2 || tiles == 0) return {};
    return {splits, ceil_div(key_tiles, splits)};
  }
  const int64_t ctas = int64_t(p.batch) * p.h_q * tiles;
  const int64_t slots = int64_t(std::max(sm_count, 1)) * std::max(ctas_per_sm, 1);  // CTAs resident at once
  if (tiles == 0 || ctas >= kTargetWaves * slots) return {};
  // Model every tile as the longest one (exact for a chunked prefill, whose tiles all see about n_kv keys;
  // for delta's anchor tiles, which see fewer, the extra chunks only make the tail of the schedule finer):
  // time ~ waves * chunk length. Waves count whole, so e.g. 64 CTAs on 264 slots take 4 chunks (one wave),
  // not 5 (two waves of 320). Ties go to fewer chunks (less scratch, cheaper combine).
  const auto waves = [&](int64_t n) { return (n + slots - 1) / slots; };
  const int min_tiles_per_split = std::max(kMinKeyTilesPerSplit * kKeyTileKeys / key_tile_keys, 1);  // 1024 keys
  const int most = int(std::min<int64_t>({kMaxKvSplits, key_tiles / min_tiles_per_split, kMaxSplitWaves * slots / ctas}));
  SplitPlan best{1, key_tiles};
  int64_t best_cost = waves(ctas) * key_tiles;
  for (int splits = 2; splits <= most; ++splits) {
    const int chunk = ceil_div(key_tiles, splits), used = ceil_div(key_tiles, chunk);  // no chunk empty for every tile
    const int64_t cost = waves(ctas * used) * (chunk + kSplitOverheadTiles);
    if (cost < best_cost) {
      best_cost = cost;
      best = {used, chunk};
    }
  }
  return best.kv_splits > 1 ? best : SplitPlan{};
}

int current_device_sm_count() {
  return current_device_attribute(cudaDevAttrMultiProcessorCount, "querying the SM count");
}

}  // namespace dattn::cuda::detail
