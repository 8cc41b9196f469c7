// Block top-k's selection kernels; see block_select_kernels.h. Sums run in fp32 in the CPU kernel's order
// (keys of a block, then rows and heads of a query block, in index order).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <limits>
#include <type_traits>

#include "block_select_kernels.h"
#include "cuda_check.h"

namespace dattn::cuda::detail {
namespace {

template <typename Elem>
__device__ __forceinline__ float to_float(Elem x) {
  if constexpr (std::is_same_v<Elem, __nv_bfloat16>)
    return __bfloat162float(x);
  else
    return __half2float(x);
}

// means[(bh, block, c)] = mean over the block's keys of k, one thread per channel.
template <typename Elem>
__global__ void key_block_means_kernel(SelectGeometry g, float* means) {
  const int64_t kb = blockIdx.x, bh = blockIdx.y, b = bh / g.h_kv, kv = bh % g.h_kv;
  const Elem* k = static_cast<const Elem*>(g.k) + b * g.k_batch_stride + kv * g.k_head_stride;
  const int64_t j0 = kb * g.block_k, j1 = min(g.n_kv, j0 + g.block_k);
  for (int64_t c = threadIdx.x; c < g.head_dim; c += blockDim.x) {
    float sum = 0.f;
    for (int64_t j = j0; j < j1; ++j) sum += to_float(k[j * g.k_row_stride + c]);
    means[(bh * g.k_blocks + kb) * g.head_dim + c] = sum / float(j1 - j0);
  }
}

// means[(bh, block, c)] = mean over the block's rows and the kv head's query heads of q.
template <typename Elem>
__global__ void query_block_means_kernel(SelectGeometry g, float* means) {
  const int64_t qb = blockIdx.x, bh = blockIdx.y, b = bh / g.h_kv, kv = bh % g.h_kv;
  const Elem* q = static_cast<const Elem*>(g.q) + b * g.q_batch_stride + kv * g.group * g.q_head_stride;
  const int64_t r0 = qb * g.block_q, r1 = min(g.n_q, r0 + g.block_q);
  for (int64_t c = threadIdx.x; c < g.head_dim; c += blockDim.x) {
    float sum = 0.f;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t h = 0; h < g.group; ++h) sum += to_float(q[r * g.q_row_stride + h * g.q_head_stride + c]);
    means[(bh * g.q_blocks + qb) * g.head_dim + c] = sum / float((r1 - r0) * g.group);
  }
}

// a ranks before b: higher score, then the lower block index (spec: ties go to the lower index).
__device__ __forceinline__ bool ranks_before(float score_a, int index_a, float score_b, int index_b) {
  return score_a > score_b || (score_a == score_b && index_a < index_b);
}

constexpr int kSelectWarps = 8;
constexpr int kNone = std::numeric_limits<int>::max();

// One warp per query block of the chunk [qb0, qb0 + count): each lane keeps the best topk of its share of
// the candidates, the warp merges them, and the list is written ascending: sink blocks, the chosen ones,
// the window blocks.
__global__ void __launch_bounds__(kSelectWarps * 32)
    top_blocks_kernel(SelectGeometry g, int64_t qb0, int64_t count, const float* scores, int64_t score_stride,
                      int32_t* lists, int32_t* list_counts) {
  __shared__ int chosen[kSelectWarps][kMaxDeviceTopk];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.x, local = int64_t(blockIdx.y) * kSelectWarps + warp;
  if (local >= count) return;
  const int64_t qb = qb0 + local;
  const QueryBlockKeys keys = query_block_keys(g, qb);
  const float* row = scores + (bh * count + local) * score_stride;
  const int topk = int(g.topk);

  // lane-local top-k (unsorted), with its worst entry tracked for replacement
  float best_score[kMaxDeviceTopk];
  int best_index[kMaxDeviceTopk];
  int held = 0, worst = 0;
  for (int64_t kb = keys.sink_blocks + lane; kb < keys.window_block; kb += 32) {
    const float score = row[kb];
    if (held < topk) {
      best_score[held] = score;
      best_index[held] = int(kb);
      if (held == 0 || ranks_before(best_score[worst], best_index[worst], score, int(kb))) worst = held;
      ++held;
    } else if (topk > 0 && ranks_before(score, int(kb), best_score[worst], best_index[worst])) {
      best_score[worst] = score;
      best_index[worst] = int(kb);
      for (int i = 0; i < held; ++i)
        if (ranks_before(best_score[worst], best_index[worst], best_score[i], best_index[i])) worst = i;
    }
  }
  // warp merge: topk rounds of an argmax over the lanes' best remaining entries
  int kept = 0;
  for (; kept < topk; ++kept) {
    int mine = -1;
    for (int i = 0; i < held; ++i)
      if (best_index[i] != kNone && (mine < 0 || ranks_before(best_score[i], best_index[i], best_score[mine], best_index[mine])))
        mine = i;
    float score = mine >= 0 ? best_score[mine] : 0.f;
    int index = mine >= 0 ? best_index[mine] : kNone;
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other_score = __shfl_xor_sync(0xffffffffu, score, offset);
      const int other_index = __shfl_xor_sync(0xffffffffu, index, offset);
      if (other_index != kNone && (index == kNone || ranks_before(other_score, other_index, score, index))) {
        score = other_score;
        index = other_index;
      }
    }
    if (index == kNone) break;  // fewer candidates than topk
    if (mine >= 0 && best_index[mine] == index) best_index[mine] = kNone;
    if (lane == 0) chosen[warp][kept] = index;
  }
  __syncwarp();

  int32_t* list = lists + (bh * g.q_blocks + qb) * g.list_capacity;
  const int64_t last = keys.last_block;
  if (keys.window_block <= keys.sink_blocks) {  // sink and window cover every block up to the diagonal
    for (int64_t kb = lane; kb <= last; kb += 32) list[kb] = int32_t(kb);
    if (lane == 0) list_counts[bh * g.q_blocks + qb] = int32_t(last + 1);
    return;
  }
  for (int64_t kb = lane; kb < keys.sink_blocks; kb += 32) list[kb] = int32_t(kb);
  for (int i = lane; i < kept; i += 32) {  // the chosen blocks in ascending order, by rank
    int rank = 0;
    for (int j = 0; j < kept; ++j) rank += chosen[warp][j] < chosen[warp][i];
    list[keys.sink_blocks + rank] = chosen[warp][i];
  }
  const int64_t window_at = keys.sink_blocks + kept;
  for (int64_t kb = keys.window_block + lane; kb <= last; kb += 32) list[window_at + kb - keys.window_block] = int32_t(kb);
  if (lane == 0) list_counts[bh * g.q_blocks + qb] = int32_t(window_at + last - keys.window_block + 1);
}

// One thread per (bh, query tile): the union of its two 64-row groups' lists, in 64-key units that start
// at or before the group's last position, each tagged with the groups that keep it.
__global__ void tile_units_kernel(SelectGeometry g, int64_t rows, int tile_rows, int64_t query_tiles,
                                  const int32_t* lists, const int32_t* list_counts, int64_t unit_capacity,
                                  int32_t* units, int32_t* unit_counts) {
  const int64_t bh = blockIdx.x, tile = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (tile >= query_tiles) return;
  const int64_t per_block = g.block_k / kUnitKeys;
  const int groups = tile_rows / 64;
  // per group: its list and the last unit any of its rows can see
  const int32_t* list[2] = {nullptr, nullptr};
  int64_t length[2] = {0, 0}, last_unit[2] = {-1, -1}, cursor[2] = {0, 0};
  for (int gr = 0; gr < groups; ++gr) {
    const int64_t r0 = tile * tile_rows + gr * 64;
    if (r0 >= rows) continue;
    const int64_t qb = r0 / g.block_q, last_row = min(rows, r0 + 64) - 1;
    list[gr] = lists + (bh * g.q_blocks + qb) * g.list_capacity;
    length[gr] = list_counts[bh * g.q_blocks + qb] * per_block;  // in units
    last_unit[gr] = (g.n_kv - g.n_q + last_row) / kUnitKeys;
  }
  auto unit_at = [&](int gr, int64_t i) { return int64_t(list[gr][i / per_block]) * per_block + i % per_block; };
  auto skip_past = [&](int gr) {  // units past the group's last position are never seen
    if (cursor[gr] < length[gr] && unit_at(gr, cursor[gr]) > last_unit[gr]) cursor[gr] = length[gr];
  };
  int32_t* out = units + (bh * query_tiles + tile) * unit_capacity;
  int64_t n = 0;
  skip_past(0);
  skip_past(1);
  while (cursor[0] < length[0] || cursor[1] < length[1]) {
    const int64_t u0 = cursor[0] < length[0] ? unit_at(0, cursor[0]) : std::numeric_limits<int64_t>::max();
    const int64_t u1 = cursor[1] < length[1] ? unit_at(1, cursor[1]) : std::numeric_limits<int64_t>::max();
    const int64_t unit = u0 < u1 ? u0 : u1;
    int owners = 0;
    if (u0 == unit) owners |= 1, ++cursor[0], skip_past(0);
    if (u1 == unit) owners |= 2, ++cursor[1], skip_past(1);
    out[n++] = int32_t(unit << 2) | owners;
  }
  unit_counts[bh * query_tiles + tile] = int32_t(n);
}

}  // namespace

void launch_block_means(const SelectGeometry& g, bool bf16, float* key_means, float* query_means,
                        cudaStream_t stream) {
  const int64_t bh = g.batch * g.h_kv;
  const dim3 key_grid(unsigned(g.k_blocks), unsigned(bh)), query_grid(unsigned(g.q_blocks), unsigned(bh));
  const int threads = int(g.head_dim < 128 ? g.head_dim : 128);
  if (bf16) {
    key_block_means_kernel<__nv_bfloat16><<<key_grid, threads, 0, stream>>>(g, key_means);
    query_block_means_kernel<__nv_bfloat16><<<query_grid, threads, 0, stream>>>(g, query_means);
  } else {
    key_block_means_kernel<__half><<<key_grid, threads, 0, stream>>>(g, key_means);
    query_block_means_kernel<__half><<<query_grid, threads, 0, stream>>>(g, query_means);
  }
  check_cuda(cudaGetLastError(), "launching the block means kernels");
}

void launch_top_blocks(const SelectGeometry& g, int64_t qb0, int64_t count, const float* scores,
                       int64_t score_stride, int32_t* lists, int32_t* list_counts, cudaStream_t stream) {
  const dim3 grid(unsigned(g.batch * g.h_kv), unsigned((count + kSelectWarps - 1) / kSelectWarps));
  top_blocks_kernel<<<grid, kSelectWarps * 32, 0, stream>>>(g, qb0, count, scores, score_stride, lists, list_counts);
  check_cuda(cudaGetLastError(), "launching top_blocks_kernel");
}

void launch_tile_units(const SelectGeometry& g, int64_t rows, int tile_rows, int64_t query_tiles,
                       const int32_t* lists, const int32_t* list_counts, int64_t unit_capacity, int32_t* units,
                       int32_t* unit_counts, cudaStream_t stream) {
  const dim3 grid(unsigned(g.batch * g.h_kv), unsigned((query_tiles + 127) / 128));
  tile_units_kernel<<<grid, 128, 0, stream>>>(g, rows, tile_rows, query_tiles, lists, list_counts, unit_capacity,
                                              units, unit_counts);
  check_cuda(cudaGetLastError(), "launching tile_units_kernel");
}

}  // namespace dattn::cuda::detail
