// The warp-specialised sm_90a key pass (FlashAttention-3's schedule, written for this kernel family):
// a CTA of 128 query rows has two consumer warpgroups of 64 rows each and a producer warpgroup, one
// thread of which streams K/V tiles by TMA into a ring of kStages shared-memory stages (a "full" mbarrier
// per stage that the copies complete, an "empty" one that the 8 consumer warps arrive on when they are
// done with it). Each consumer warpgroup overlaps its own softmax with its own matrix products: it issues
// S_next = Q K^T of the next tile and then O += P V of the current one, and computes the softmax of S_next
// while P V runs; the two warpgroups take turns issuing (ping-pong). With 64-key tiles this is the same
// arithmetic, in the same order per row, as key_pass.cuh's one-warpgroup pass (bit-identical results);
// with 128-key tiles (the default) the softmax steps over 128 keys at a time.
#pragma once
#include "attention_tile.cuh"

namespace dattn::cuda::detail {

// Keys per K/V tile of the warp-specialised kernels (64 or 128): a build option so both can be timed.
#ifndef DATTN_CUDA_WS_BLOCK_N
#define DATTN_CUDA_WS_BLOCK_N 128
#endif

template <int kHeadDim_>
struct WsTileShape {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kConsumerWarpgroups = 2;
  static constexpr int kConsumerThreads = 128 * kConsumerWarpgroups;
  static constexpr int kConsumerWarps = kConsumerThreads / 32;
  // + the producer warpgroup: setmaxnreg (register reallocation) works on whole warpgroups; one of its
  // threads issues the copies, on kProducerRegisters, and the consumers get kConsumerRegisters (without
  // it 384 threads would have 168 each, too few for 128-key tiles).
  static constexpr int kThreads = kConsumerThreads + 128;
  static constexpr int kProducerWarpgroup = kConsumerWarpgroups;
  static constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;
  static_assert(kProducerRegisters * 128 + kConsumerRegisters * kConsumerThreads <= 65536);
  static constexpr int kMTiles = 1;                       // one 64-row wgmma block per warpgroup
  static constexpr int kBlockM = 64 * kConsumerWarpgroups;
  // 128-key tiles halve the softmax's row reductions and barrier waits per key and issue wider wgmma
  // (n128 for S); their masks waste a little more at window and diagonal edges.
  static constexpr int kBlockN = DATTN_CUDA_WS_BLOCK_N;
  // As many stages as fit next to Q in 227 KB (hd 128, 128 keys: 3 x 64 KB)
  static constexpr int kStages = kHeadDim * kBlockN >= 128 * 128 ? 3 : 4;
  // Q (all 128 rows, swizzled like TileShape's), then K and V of each stage, unpadded (swizzled), then
  // the 2 * kStages barriers, plus 1024 bytes to align the base.
  static constexpr int kQueryElems = kBlockM * kHeadDim;
  static constexpr int kTileElems = kBlockN * kHeadDim;
  static constexpr int kBarrierOffsetElems = kQueryElems + 2 * kStages * kTileElems;
  static constexpr int kSmemBytes = kBarrierOffsetElems * 2 + 2 * kStages * 8 + 1024;
  static constexpr int kMinBlocksPerSm = 1;
  static_assert(kBlockM == TileShape<kHeadDim>::kBlockM, "the host sizes grids and split-KV scratch for one tile shape");
  static_assert(kBlockN == 64 || kBlockN == 128);
  static_assert(kSmemBytes <= 227 * 1024);
};

// The visible key tiles of `ranges` in order, skipping (for strided anchors) tiles no row needs. With
// KeyMode::block_list, tile i is made of the listed units [i * kUnits, i * kUnits + kUnits) (kBlockN / 64
// units, the last tile possibly short).
template <KeyMode kMode, int kBlockN>
struct KeyTileWalk {
  static constexpr int kUnits = kBlockN / kKeyUnit;
  const AttentionKernelParams& p;
  const QueryTile& qt;
  KeyTileRanges ranges;
  int num0, total;
  __device__ KeyTileWalk(const AttentionKernelParams& params, const QueryTile& tile, KeyTileRanges r)
      : p(params), qt(tile), ranges(r), num0(r.end0 - r.begin0),
        total(kMode == KeyMode::block_list ? (r.end0 + kUnits - 1) / kUnits : num0 + (r.end1 - r.begin1)) {}
  __device__ int tile_at(int i) const { return i < num0 ? ranges.begin0 + i : ranges.begin1 + (i - num0); }
  __device__ int next_needed(int i) const {
    while (i < total && !key_tile_needed<kMode, kBlockN>(p, qt, tile_at(i))) ++i;
    return i;
  }
  // First key of the 64-key part `unit` of tile `tile` (a short last tile repeats its first unit, masked).
  __device__ int unit_key(int tile, int unit) const {
    if constexpr (kMode == KeyMode::block_list) {
      const int index = tile * kUnits + unit;
      return unit_first_key(ranges.units[index < ranges.end0 ? index : tile * kUnits]);
    }
    return tile * kBlockN + unit * kKeyUnit;
  }
};

// Ping-pong of the two consumer warpgroups (FlashAttention-3): a warpgroup issues its matrix products only
// after the other one issued its own, so the tensor cores alternate between them and each one's softmax
// runs under the other's products. A build option so that it can be timed against free interleaving.
#ifndef DATTN_CUDA_WS_PINGPONG
#define DATTN_CUDA_WS_PINGPONG 1
#endif

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Hands registers back (producer) or takes them (consumers): every thread of the warpgroup executes it.
template <int kRegisters>
__device__ __forceinline__ void release_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void claim_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Named barriers 1 and 2: each warpgroup's query load; 3 + g: warpgroup g's turn to issue.
struct IssueTurns {
  static constexpr int kFirstBarrier = 3;
  // Before the first key pass: warpgroup 1 hands the first turn to warpgroup 0.
  static __device__ void start() {
    if (DATTN_CUDA_WS_PINGPONG && threadIdx.x / 128 == 1) named_barrier_arrive(kFirstBarrier, 256);
  }
  static __device__ void wait() {
    if (DATTN_CUDA_WS_PINGPONG) named_barrier_sync(kFirstBarrier + threadIdx.x / 128, 256);
  }
  static __device__ void pass() {
    if (DATTN_CUDA_WS_PINGPONG) named_barrier_arrive(kFirstBarrier + (threadIdx.x / 128 ^ 1), 256);
  }
  // After the last key pass: warpgroup 0 takes the turn warpgroup 1 handed over last, so no barrier is
  // left half arrived.
  static __device__ void finish() {
    if (DATTN_CUDA_WS_PINGPONG && threadIdx.x / 128 == 0) named_barrier_sync(kFirstBarrier, 256);
  }
};

// The ring of K/V stages; `iteration` counts the tiles that went through it in this CTA (over every key
// pass), so stage = iteration % kStages and the barrier phase = (iteration / kStages) & 1.
template <typename Elem, int kHeadDim>
struct KvRing {
  using S = WsTileShape<kHeadDim>;
  Elem* tiles;  // stage s: K at s * 2 * kTileElems, V after it
  uint64_t* full;
  uint64_t* empty;
  int iteration = 0;

  __device__ KvRing(Elem* smem)
      : tiles(smem + S::kQueryElems), full(reinterpret_cast<uint64_t*>(smem + S::kBarrierOffsetElems)),
        empty(full + S::kStages) {}
  __device__ Elem* key_tile(int it) const { return tiles + (it % S::kStages) * 2 * S::kTileElems; }
  __device__ uint32_t phase(int it) const { return uint32_t(it / S::kStages) & 1; }

  // Thread 0, before the role split (a __syncthreads must follow).
  __device__ void init() const {
    for (int s = 0; s < S::kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], S::kConsumerWarps);
    }
    fence_barrier_init();
  }
};

// Producer (one thread): loads every needed key tile of `ranges` into the ring, waiting for a stage to be
// released before refilling it.
template <typename Elem, int kHeadDim, KeyMode kMode>
__device__ __forceinline__ void produce_key_tiles(const AttentionKernelParams& p, const QueryTile& qt,
                                                  KeyTileRanges ranges, int b, int kv_head, KvRing<Elem, kHeadDim>& ring) {
  using S = WsTileShape<kHeadDim>;
  const KeyTileWalk<kMode, S::kBlockN> walk(p, qt, ranges);
  for (int i = walk.next_needed(0); i < walk.total; i = walk.next_needed(i + 1)) {
    const int it = ring.iteration++;
    const int stage = it % S::kStages;
    if (it >= S::kStages) mbarrier_wait(&ring.empty[stage], ring.phase(it) ^ 1);  // fill f waits release f-1
    Elem* ks = ring.key_tile(it);
    const int tile = walk.tile_at(i);
    mbarrier_arrive_expect_bytes(&ring.full[stage], 2 * S::kBlockN * kHeadDim * sizeof(Elem));
    // 64 x 64 boxes: column block `half` of the swizzled tile holds its kBlockN rows one after the other
    // (64 consecutive keys per box: a whole tile, or one listed unit each)
#pragma unroll
    for (int rows = 0; rows < S::kBlockN; rows += 64) {
      const int key = walk.unit_key(tile, rows / 64);
#pragma unroll
      for (int half = 0; half < kHeadDim / 64; ++half) {
        const int offset = half * S::kBlockN * 64 + rows * 64;
        tma_load_box(ks + offset, &p.tma_k, &ring.full[stage], half * 64, key, kv_head, b);
        tma_load_box(ks + S::kTileElems + offset, &p.tma_v, &ring.full[stage], half * 64, key, kv_head, b);
      }
    }
  }
}

// Consumer warpgroup: loads its 64 query rows (rows 64 g .. 64 g + 63 of the CTA's swizzled Q tile) by
// cp.async and the positions of the thread's rows; the warpgroup syncs alone (named barrier 1 + g).
template <typename Elem, int kHeadDim>
__device__ __forceinline__ void ws_load_query_rows(const AttentionKernelParams& p, const QueryTile& qt,
                                                   const Elem* q_base, Elem* q_smem, int (&pos)[1][2]) {
  using S = WsTileShape<kHeadDim>;
  constexpr int kChunksPerRow = kHeadDim / 8, kChunks = 64 * kChunksPerRow;
  const int group = threadIdx.x / 128, t = threadIdx.x % 128;
#pragma unroll
  for (int i = 0; i < kChunks / 128; ++i) {
    const int chunk = t + i * 128;
    const int r = group * 64 + chunk / kChunksPerRow, col = (chunk % kChunksPerRow) * 8;
    const bool valid = r < qt.rows;
    const Elem* src = valid ? q_base + int64_t(qt.row(r)) * p.q.row_stride + col : q_base;
    cp_async_16(q_smem + swizzled_offset(S::kBlockM, r, col / 8), src, valid);
  }
  cp_async_commit();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int local = local_row<kHeadDim, 1>(0, r);
    pos[0][r] = local < qt.rows ? qt.pos_first + local * qt.row_step : qt.pos_last;
  }
  cp_async_wait<0>();
  fence_proxy_async();  // the cp.async writes, before the wgmma (async proxy) reads of Q
  named_barrier_sync(1 + group, 128);
}

// Consumer warpgroup: softmax(q k^T) v of its 64 rows over the needed key tiles of `ranges`, into acc.
template <typename Elem, int kHeadDim, KeyMode kMode>
__device__ __forceinline__ void ws_attend_key_tiles(const AttentionKernelParams& p, const QueryTile& qt,
                                                    KeyTileRanges ranges, const int (&pos)[1][2], const Elem* q_smem,
                                                    KvRing<Elem, kHeadDim>& ring,
                                                    SoftmaxAccumulator<kHeadDim, 1>& acc) {
  using S = WsTileShape<kHeadDim>;
  constexpr int kBlockN = S::kBlockN;
  const int lane = threadIdx.x % 32, group = threadIdx.x / 128;
  const KeyTileWalk<kMode, kBlockN> walk(p, qt, ranges);
  const int i = walk.next_needed(0);
  if (i >= walk.total) return;

  const Elem* q_rows = q_smem + group * 64 * 64;  // this warpgroup's rows inside each 64-column block
  float s[kBlockN / 8][4];                        // scores of one tile; then its probabilities
  uint32_t prob[kBlockN / 16][4];                 // P packed to 16 bits: the A operand of P V
  float alpha[2];                                 // rescale of O owed by the last softmax step

  auto wait_full = [&](int it) { mbarrier_wait(&ring.full[it % S::kStages], ring.phase(it)); };
  auto issue_scores = [&](int it) {
    const Elem* ks = ring.key_tile(it);
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      const uint64_t desc_q = sw128_descriptor(q_rows + (kk / 4) * S::kBlockM * 64 + (kk % 4) * 16);
      const uint64_t desc_k = sw128_descriptor(ks + (kk / 4) * kBlockN * 64 + (kk % 4) * 16);
      auto& scores = reinterpret_cast<float(&)[kBlockN / 2]>(s);
      if constexpr (kBlockN == 128) {
        if (kk == 0)
          wgmma_m64n128k16_overwrite<Elem>(scores, desc_q, desc_k);
        else
          wgmma_m64n128k16<Elem>(scores, desc_q, desc_k, 1);
      } else {
        if (kk == 0)
          wgmma_m64n64k16_overwrite<Elem>(scores, desc_q, desc_k);
        else
          wgmma_m64n64k16<Elem>(scores, desc_q, desc_k, 1);
      }
    }
    wgmma_commit();
  };
  auto issue_pv = [&](int it) {
    const Elem* vs = ring.key_tile(it) + S::kTileElems;
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      wgmma_rs_m64k16<Elem, kHeadDim>(reinterpret_cast<float(&)[kHeadDim / 2]>(acc.o[0]), prob[kk],
                                      sw128_mn_major_descriptor<kBlockN>(vs + kk * 16 * 64));
    wgmma_commit();
  };
  // Mask (boundary tiles only), new running max, exp2 in place, running sum; O's rescale is left in alpha
  // (O may still be accumulating in flight).
  auto softmax_step = [&](int tile) {
    if constexpr (kMode == KeyMode::block_list) {
      // listed units: causal, and only where this warpgroup's 64 rows keep the unit
      constexpr int kUnits = kBlockN / kKeyUnit;
      if (!block_list_tile_unmasked<kUnits>(qt, ranges, tile * kUnits)) {
#pragma unroll
        for (int u = 0; u < kUnits; ++u) {
          const int index = tile * kUnits + u;
          const bool kept = index < ranges.end0 && unit_kept_by(ranges.units[index], group);
          const int key0 = kept ? unit_first_key(ranges.units[index]) + 2 * (lane % 4) : 0;
#pragma unroll
          for (int n = u * (kKeyUnit / 8); n < (u + 1) * (kKeyUnit / 8); ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              if (!kept || key0 + (n % (kKeyUnit / 8)) * 8 + (e & 1) > pos[0][e / 2]) s[n][e] = kNegInf;
        }
      }
    } else if (!key_tile_unmasked<kMode, kBlockN>(p, qt, tile)) {
      const int key0 = tile * kBlockN + 2 * (lane % 4);
#pragma unroll
      for (int n = 0; n < kBlockN / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (!key_visible<kMode>(p, key0 + n * 8 + (e & 1), pos[0][e / 2])) s[n][e] = kNegInf;
    }
    const float scale = p.scale_log2;
    float base_scaled[2];
    softmax_new_max(s, acc.row_max[0], acc.row_sum[0], scale, alpha, base_scaled);
    softmax_exponentiate(s, base_scaled, scale, acc.row_sum[0]);
  };
  // Once O is not in flight: apply the owed rescale and pack P for the next P V.
  auto rescale_and_pack = [&]() {
    softmax_rescale(acc.o[0], alpha);
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      prob[kk][0] = pack_pair<Elem>(s[2 * kk][0], s[2 * kk][1]);
      prob[kk][1] = pack_pair<Elem>(s[2 * kk][2], s[2 * kk][3]);
      prob[kk][2] = pack_pair<Elem>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      prob[kk][3] = pack_pair<Elem>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
  };

  // The first tile alone; then each step issues S of the next tile and P V of the current one and runs
  // the next tile's softmax under the P V; the last tile's P V alone. (No wgmma is issued under a branch
  // inside the steady loop: ptxas then keeps the two groups apart instead of serialising them.)
  wait_full(ring.iteration);
  IssueTurns::wait();
  wgmma_fence();
  issue_scores(ring.iteration);
  IssueTurns::pass();
  wgmma_wait<0>();
  softmax_step(walk.tile_at(i));
  rescale_and_pack();
  auto release = [&](int it) {
    __syncwarp();
    if (lane == 0) mbarrier_arrive(&ring.empty[it % S::kStages]);  // this warp is done with the stage
  };
  for (int next = walk.next_needed(i + 1); next < walk.total; next = walk.next_needed(next + 1)) {
    const int it = ring.iteration;
    wait_full(it + 1);
    IssueTurns::wait();
    wgmma_fence();  // O and P were written by this thread since the last wgmma
    issue_scores(it + 1);
    issue_pv(it);
    IssueTurns::pass();
    wgmma_wait<1>();  // S of the next tile is done; P V of this one may still run
    softmax_step(walk.tile_at(next));
    wgmma_wait<0>();
    release(it);
    ring.iteration = it + 1;
    rescale_and_pack();
  }
  IssueTurns::wait();
  wgmma_fence();
  issue_pv(ring.iteration);
  IssueTurns::pass();
  wgmma_wait<0>();
  release(ring.iteration);
  ++ring.iteration;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

}  // namespace dattn::cuda::detail
