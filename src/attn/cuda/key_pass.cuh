// The key pass shared by both kernels: softmax(q k^T) v of one query tile over its key tiles, with the
// online softmax of attention_tile.cuh. K/V tiles stream through two shared-memory stages: on sm_90a by
// TMA (one thread issues, an mbarrier per stage) or cp.async, with S = Q K^T and P V on wgmma; on sm_80 by
// cp.async with both products on mma.sync.
#pragma once
#include "attention_tile.cuh"

namespace dattn::cuda::detail {

// Accumulates softmax(q k^T) v over the key tiles in `ranges` into acc. The Q tile sits in smem (loaded
// by load_query_tile); the 4 K/V tile buffers after it are free on entry and again on return (the loop
// ends with a barrier).
// kPvWgmma: P V on wgmma instead of mma.sync (ldmatrix fragments of V).
template <typename Elem, int kHeadDim, KeyMode kMode, bool kPvWgmma>
__device__ __forceinline__ void attend_key_tiles(const AttentionKernelParams& p, const QueryTile& qt,
                                                 KeyTileRanges ranges, const Elem* k_base, const Elem* v_base,
                                                 const int (&pos)[TileShape<kHeadDim>::kMTiles][2], Elem* smem,
                                                 SoftmaxAccumulator<kHeadDim>& acc) {
  using S = TileShape<kHeadDim>;
  constexpr int kBlockN = S::kBlockN, kM = S::kMTiles;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const Elem* q_smem = smem;
  Elem* kv_smem = smem + S::kQueryElems;
  const int num0 = ranges.end0 - ranges.begin0;
  const int total = num0 + (ranges.end1 - ranges.begin1);
  auto tile_at = [&](int i) { return i < num0 ? ranges.begin0 + i : ranges.begin1 + (i - num0); };
  auto next_needed = [&](int i) {
    while (i < total && !key_tile_needed<kMode, kBlockN>(p, qt, tile_at(i))) ++i;
    return i;
  };
  // sm_90a: K and V tiles by TMA (thread 0 issues, everyone waits on the stage's barrier; rows past n_kv
  // arrive as zeros) unless the host could not describe them; Q always comes by cp.async (anchor rows are
  // gathered). Both layouts are the swizzled one on sm_90a.
  const bool use_tma = kHaveWgmma && p.use_tma;
  [[maybe_unused]] uint64_t* barriers = reinterpret_cast<uint64_t*>(smem + S::kBarrierOffsetElems);
  [[maybe_unused]] uint32_t parity = 0;  // bit s: the phase of stage s's barrier that the next wait expects
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if (use_tma) {
    if (threadIdx.x == 0) {
      mbarrier_init(&barriers[0], 1);
      mbarrier_init(&barriers[1], 1);
      fence_barrier_init();
    }
    __syncthreads();
  }
#endif
  auto load_kv = [&](int tile, int stage) {
    int kb = tile * kBlockN;
    if constexpr (kMode == KeyMode::block_list) {
      static_assert(kBlockN == kKeyUnit, "one listed unit per key tile");
      kb = unit_first_key(ranges.units[tile]);
    }
    Elem* ks = kv_smem + stage * 2 * S::kTileElems;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if (use_tma) {
      if (threadIdx.x == 0) {
        const int b = blockIdx.x / p.h_q, kv_head = (blockIdx.x % p.h_q) / p.group;
        mbarrier_arrive_expect_bytes(&barriers[stage], 2 * kBlockN * kHeadDim * sizeof(Elem));
#pragma unroll
        for (int half = 0; half < kHeadDim / 64; ++half) {
          tma_load_box(ks + half * kBlockN * 64, &p.tma_k, &barriers[stage], half * 64, kb, kv_head, b);
          tma_load_box(ks + S::kTileElems + half * kBlockN * 64, &p.tma_v, &barriers[stage], half * 64, kb, kv_head, b);
        }
      }
      return;
    }
#endif
    const int valid = min(kBlockN, p.n_kv - kb);
    load_tile_async<Elem, kHeadDim, kBlockN, kHaveWgmma>(ks, k_base, p.k.row_stride, kb, 1, valid);
    load_tile_async<Elem, kHeadDim, kBlockN, kHaveWgmma>(ks + S::kTileElems, v_base, p.v.row_stride, kb, 1, valid);
    cp_async_commit();
  };

  int i = next_needed(0);
  if (i < total) load_kv(tile_at(i), 0);
  int stage = 0;
  while (i < total) {
    const int next = next_needed(i + 1);
    if (next < total) load_kv(tile_at(next), stage ^ 1);
    if (use_tma || next >= total) {
      cp_async_wait<0>();  // the query tile (first pass), or this stage's cp.async group when it is the last
    } else {
      cp_async_wait<1>();
    }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if (use_tma) {
      mbarrier_wait(&barriers[stage], (parity >> stage) & 1);
      parity ^= 1u << stage;
    }
#endif
    if constexpr (kHaveWgmma) fence_proxy_async();
    __syncthreads();

    const int tile = tile_at(i);
    const Elem* ks = kv_smem + stage * 2 * S::kTileElems;
    const Elem* vs = ks + S::kTileElems;

    // S = Q K^T for this warp's rows and the tile's 64 keys.
    float s[kM][kBlockN / 8][4];
    if constexpr (kHaveWgmma) {
      // One warpgroup instruction per 64-row half and 16-wide k step; A = Q, B = K, both swizzled K-major.
      static_assert(kM == 2 && S::kBlockM == 128 && kBlockN == 64, "wgmma path assumes 128x64 tiles");
      wgmma_fence();
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int kk = 0; kk < kHeadDim / 16; ++kk) {
          const uint64_t desc_q =
              sw128_descriptor(q_smem + (kk / 4) * S::kBlockM * 64 + m * 64 * 64 + (kk % 4) * 16);
          const uint64_t desc_k = sw128_descriptor(ks + (kk / 4) * kBlockN * 64 + (kk % 4) * 16);
          if (kk == 0)
            wgmma_m64n64k16_overwrite<Elem>(reinterpret_cast<float(&)[32]>(s[m]), desc_q, desc_k);
          else
            wgmma_m64n64k16<Elem>(reinterpret_cast<float(&)[32]>(s[m]), desc_q, desc_k, 1);
        }
      wgmma_commit();
      wgmma_wait_all();
    } else {
      // Each K fragment serves every m-tile.
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[m][n][e] = 0.f;
      const int k_row = (lane % 8) + (lane / 16) * 8, k_col = ((lane / 8) % 2) * 8;
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        uint32_t q_frag[kM][4];
#pragma unroll
        for (int m = 0; m < kM; ++m)
          ldmatrix_x4(q_frag[m],
                      q_smem + ((warp * kM + m) * 16 + lane % 16) * S::kRowElems + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nn = 0; nn < kBlockN / 16; ++nn) {
          uint32_t b[4];
          ldmatrix_x4(b, ks + (nn * 16 + k_row) * S::kRowElems + kk * 16 + k_col);
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            mma_16x8x16<Elem>(s[m][2 * nn], q_frag[m], b[0], b[1]);
            mma_16x8x16<Elem>(s[m][2 * nn + 1], q_frag[m], b[2], b[3]);
          }
        }
      }
    }

    // Mask only tiles that straddle a boundary. Scores stay unscaled: the scale folds into one FFMA
    // before exp2 (the running max is kept in unscaled units; scale > 0 keeps the order).
    if constexpr (kMode == KeyMode::block_list) {
      // a listed unit: causal, and only for the 64-row groups that keep it
      if (!block_list_tile_unmasked<1>(qt, ranges, tile)) {
        const int32_t entry = ranges.units[tile];
        const int key0 = unit_first_key(entry) + 2 * (lane % 4);
#pragma unroll
        for (int m = 0; m < kM; ++m) {
          const bool kept = unit_kept_by(entry, local_row<kHeadDim>(m, 0) / 64);
#pragma unroll
          for (int n = 0; n < kBlockN / 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              if (!kept || key0 + n * 8 + (e & 1) > pos[m][e / 2]) s[m][n][e] = kNegInf;
        }
      }
    } else if (!key_tile_unmasked<kMode, kBlockN>(p, qt, tile)) {
      const int key0 = tile * kBlockN + 2 * (lane % 4);
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (!key_visible<kMode>(p, key0 + n * 8 + (e & 1), pos[m][e / 2])) s[m][n][e] = kNegInf;
    }
    const float scale = p.scale_log2;

    // Online softmax (attention_tile.cuh), O rescaled between its two steps.
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      float base_scaled[2], alpha[2];
      softmax_new_max(s[m], acc.row_max[m], acc.row_sum[m], scale, alpha, base_scaled);
      softmax_rescale(acc.o[m], alpha);
      softmax_exponentiate(s[m], base_scaled, scale, acc.row_sum[m]);
    }

    // O += P V: the S accumulators of two adjacent 8-key tiles form one A fragment of P.
    if constexpr (kPvWgmma) {
      // One warpgroup instruction per 64-row half and 16-key step: A = P from registers, B = V (N-major).
      uint32_t a[kM][kBlockN / 16][4];
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          a[m][kk][0] = pack_pair<Elem>(s[m][2 * kk][0], s[m][2 * kk][1]);
          a[m][kk][1] = pack_pair<Elem>(s[m][2 * kk][2], s[m][2 * kk][3]);
          a[m][kk][2] = pack_pair<Elem>(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
          a[m][kk][3] = pack_pair<Elem>(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
        }
      wgmma_fence();
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk)
          wgmma_rs_m64k16<Elem, kHeadDim>(reinterpret_cast<float(&)[kHeadDim / 2]>(acc.o[m]), a[m][kk],
                                          sw128_mn_major_descriptor<kBlockN>(vs + kk * 16 * 64));
      // Waited on at once: leaving it in flight past the next tile's S = Q K^T makes ptxas serialise every
      // wgmma (the packed P shares registers with the next S accumulators; no registers are left to split them).
      wgmma_commit();
      wgmma_wait_all();
    } else {
      // Each V fragment serves every m-tile.
      const int v_row = lane % 16, v_col = (lane / 16) * 8;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        uint32_t a[kM][4];
#pragma unroll
        for (int m = 0; m < kM; ++m) {
          a[m][0] = pack_pair<Elem>(s[m][2 * kk][0], s[m][2 * kk][1]);
          a[m][1] = pack_pair<Elem>(s[m][2 * kk][2], s[m][2 * kk][3]);
          a[m][2] = pack_pair<Elem>(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
          a[m][3] = pack_pair<Elem>(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dd = 0; dd < kHeadDim / 16; ++dd) {
          uint32_t b[4];
          // sm_90a stores V swizzled (the TMA layout): 8 rows x 16 bytes at one chunk still hit 8 bank groups
          const Elem* v_frag = kHaveWgmma ? vs + swizzled_offset(kBlockN, kk * 16 + v_row, 2 * dd + lane / 16)
                                          : vs + (kk * 16 + v_row) * S::kRowElems + dd * 16 + v_col;
          ldmatrix_x4_trans(b, v_frag);
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            mma_16x8x16<Elem>(acc.o[m][2 * dd], a[m], b[0], b[1]);
            mma_16x8x16<Elem>(acc.o[m][2 * dd + 1], a[m], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
    i = next;
    stage ^= 1;
  }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // Every issued copy was waited on; the barriers are re-made by the next key pass of this CTA.
  if (use_tma && threadIdx.x == 0) {
    mbarrier_invalidate(&barriers[0]);
    mbarrier_invalidate(&barriers[1]);
  }
#endif
}

}  // namespace dattn::cuda::detail
