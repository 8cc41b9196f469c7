#include <cuda_bf16.h>

#include "decode_attention.h"
#include "device_buffer.h"

namespace dattn::model::cuda_detail {
namespace {

constexpr int kChunk = 256;  // keys scored per step of one split (shared-memory scores)
constexpr int kDimsPerThread = 8;  // P.V: one 16-byte load of a V row per thread and key
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float bf16_at(const uint16_t* p) {
  return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
}

// The cache row that holds key j of sequence seq: j itself, or its slot in the sequence's blocks.
__device__ __forceinline__ int64_t cache_row(const DecodeAttentionArgs& a, int seq, int64_t j) {
  if (a.block_tables == nullptr) return j;
  const int32_t block = a.block_tables[int64_t(seq) * a.max_blocks + j / a.block_tokens];
  return int64_t(block) * a.block_tokens + j % a.block_tokens;
}

// One block per (kv head, split, sequence) with kHeadDim threads. Scores: each thread whole keys. P.V: thread t owns
// dimensions [8 (t % kThreadsPerRow), +8) of every query head of the group for the V rows
// t / kThreadsPerRow, + kRowsPerPass, ...: 16-byte loads keep enough bytes in flight to stream the cache
// (one bf16 per thread and key left each SM waiting on load latency). The rows' partial sums are added
// up at the end. Writes the split's unnormalised output, running max and sum (exp2 domain).
template <int kHeadDim>
__global__ void __launch_bounds__(kHeadDim) decode_split_kernel(const DecodeAttentionArgs a, int splits) {
  constexpr int kThreadsPerRow = kHeadDim / kDimsPerThread, kRowsPerPass = kHeadDim / kThreadsPerRow;
  constexpr int kWarps = kHeadDim / 32;
  __shared__ float q_s[kDecodeMaxGroup][kHeadDim];
  __shared__ float p_s[kDecodeMaxGroup][kChunk];
  __shared__ float alpha_s[kDecodeMaxGroup];
  __shared__ float reduce_s[kWarps][kDecodeMaxGroup][kHeadDim];
  const int kv_head = blockIdx.x, split = blockIdx.y, seq = blockIdx.z, t = threadIdx.x;
  const int group = a.heads_q / a.heads_kv, warp = t / 32, lane = t % 32, warps = kHeadDim / 32;
  const float scale_log2 = a.scale * kLog2e;
  const int64_t n_kv = a.seq_lengths ? a.seq_lengths[seq] : a.n_kv;
  const int64_t begin = int64_t(split) * kDecodeSplitKeys;
  float* seq_partials = a.partials + int64_t(seq) * a.heads_q * splits * (kHeadDim + 2);
  if (begin >= n_kv) {  // a shorter sequence of the batch: an empty split the merge weighs with 0
    for (int g = 0; g < group; ++g) {
      float* part = seq_partials + (int64_t(kv_head * group + g) * splits + split) * (kHeadDim + 2);
      part[t] = 0;
      if (t == 0) {
        part[kHeadDim] = -INFINITY;
        part[kHeadDim + 1] = 0;
      }
    }
    return;
  }
  const uint16_t* q_seq = a.q + int64_t(seq) * a.heads_q * kHeadDim;
  for (int g = 0; g < group; ++g)
    q_s[g][t] = bf16_at(q_seq + (int64_t(kv_head) * group + g) * kHeadDim + t) * scale_log2;

  const int64_t row_stride = int64_t(a.heads_kv) * kHeadDim;
  const int64_t end = min(n_kv, begin + kDecodeSplitKeys);
  float o[kDecodeMaxGroup][kDimsPerThread] = {}, m[kDecodeMaxGroup], l[kDecodeMaxGroup] = {};
  const int d0 = (t % kThreadsPerRow) * kDimsPerThread, r0 = t / kThreadsPerRow;
  for (int g = 0; g < kDecodeMaxGroup; ++g) m[g] = -INFINITY;
  __syncthreads();

  for (int64_t chunk = begin; chunk < end; chunk += kChunk) {
    const int keys = int(min(int64_t(kChunk), end - chunk));
    // scores: each thread whole keys, 16-byte loads of the K row, q broadcast from shared memory
    // q is read from shared memory in the loop on purpose: hoisted out of it, the group's 8 x kHeadDim
    // values do not fit in registers (ptxas spilled ~4 KB per thread to local memory and the kernel ran at
    // a tenth of the bandwidth); volatile keeps the reads where they are
    const volatile float(*q_v)[kHeadDim] = q_s;
    for (int j = t; j < keys; j += kHeadDim) {
      const uint4* k_row = reinterpret_cast<const uint4*>(a.k + cache_row(a, seq, chunk + j) * row_stride +
                                                          int64_t(kv_head) * kHeadDim);
      float s[kDecodeMaxGroup] = {};
#pragma unroll
      for (int c = 0; c < kHeadDim / 8; ++c) {
        const uint4 packed = k_row[c];
        const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 kv = __bfloat1622float2(pairs[e]);
#pragma unroll
          for (int g = 0; g < kDecodeMaxGroup; ++g)
            if (g < group) s[g] += kv.x * q_v[g][c * 8 + 2 * e] + kv.y * q_v[g][c * 8 + 2 * e + 1];
        }
      }
#pragma unroll
      for (int g = 0; g < kDecodeMaxGroup; ++g)
        if (g < group) p_s[g][j] = s[g];
    }
    __syncthreads();
    // softmax statistics of the chunk: warp w handles heads w, w + warps, ... (unrolled with a guard so
    // that m and l stay in registers)
#pragma unroll
    for (int g = 0; g < kDecodeMaxGroup; ++g) {
      if (g >= group || g % warps != warp) continue;
      float chunk_max = -INFINITY;
      for (int j = lane; j < keys; j += 32) chunk_max = fmaxf(chunk_max, p_s[g][j]);
      for (int off = 16; off > 0; off /= 2) chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, off));
      const float m_new = fmaxf(m[g], chunk_max);
      float sum = 0;
      for (int j = lane; j < keys; j += 32) {
        const float p = exp2f(p_s[g][j] - m_new);
        p_s[g][j] = p;
        sum += p;
      }
      for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      const float alpha = m[g] == -INFINITY ? 0.0f : exp2f(m[g] - m_new);
      if (lane == 0) alpha_s[g] = alpha;
      // the statistics stay with this warp's threads; the others read alpha from shared memory below
      l[g] = l[g] * alpha + sum;
      m[g] = m_new;
    }
    __syncthreads();
    // P V: 8 dimensions of one V row per thread and step (16-byte aligned: rows are whole heads of a
    // multiple of 8 bf16)
#pragma unroll
    for (int g = 0; g < kDecodeMaxGroup; ++g)
      if (g < group)
#pragma unroll
        for (int e = 0; e < kDimsPerThread; ++e) o[g][e] *= alpha_s[g];
    const uint16_t* v_base = a.v + int64_t(kv_head) * kHeadDim + d0;
#pragma unroll 4
    for (int j = r0; j < keys; j += kRowsPerPass) {
      const uint4 packed = *reinterpret_cast<const uint4*>(v_base + cache_row(a, seq, chunk + j) * row_stride);
      const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
      float v[kDimsPerThread];
#pragma unroll
      for (int e = 0; e < kDimsPerThread / 2; ++e) {
        const float2 f = __bfloat1622float2(pairs[e]);
        v[2 * e] = f.x;
        v[2 * e + 1] = f.y;
      }
#pragma unroll
      for (int g = 0; g < kDecodeMaxGroup; ++g)
        if (g < group) {
          const float p = p_s[g][j];
#pragma unroll
          for (int e = 0; e < kDimsPerThread; ++e) o[g][e] += p * v[e];
        }
    }
    __syncthreads();  // p_s is rewritten by the next chunk
  }

  // add up the rows' partial sums: first the rows of a warp (lanes kThreadsPerRow apart), then the warps
  const int lane_in_warp = t % 32;
#pragma unroll
  for (int g = 0; g < kDecodeMaxGroup; ++g) {
    if (g >= group) break;
#pragma unroll
    for (int e = 0; e < kDimsPerThread; ++e) {
      float sum = o[g][e];
      for (int offset = kThreadsPerRow; offset < 32; offset *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      if (lane_in_warp < kThreadsPerRow) reduce_s[warp][g][d0 + e] = sum;
    }
  }
  __syncthreads();

  // partials layout per (query head, split): head_dim outputs, then max, then sum
#pragma unroll
  for (int g = 0; g < kDecodeMaxGroup; ++g) {
    if (g >= group) break;
    const int head = kv_head * group + g;
    float* part = seq_partials + (int64_t(head) * splits + split) * (kHeadDim + 2);
    float sum = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += reduce_s[w][g][t];
    part[t] = sum;
    if (warp == g % warps && lane == 0) {
      part[kHeadDim] = m[g];
      part[kHeadDim + 1] = l[g];
    }
  }
}

// One block per (query head, sequence): merges the splits' partial softmaxes and writes bf16.
template <int kHeadDim>
__global__ void __launch_bounds__(kHeadDim) decode_merge_kernel(const DecodeAttentionArgs a, int splits) {
  const int head = blockIdx.x, seq = blockIdx.y, t = threadIdx.x;
  const float* parts = a.partials + (int64_t(seq) * a.heads_q + head) * splits * (kHeadDim + 2);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, parts[s * (kHeadDim + 2) + kHeadDim]);
  float o = 0, l = 0;
  for (int s = 0; s < splits; ++s) {
    const float* part = parts + s * (kHeadDim + 2);
    const float w = exp2f(part[kHeadDim] - m);
    o += part[t] * w;
    l += part[kHeadDim + 1] * w;
  }
  *reinterpret_cast<__nv_bfloat16*>(a.out + (int64_t(seq) * a.heads_q + head) * kHeadDim + t) =
      __float2bfloat16_rn(o / l);
}

int splits_for(int64_t n_kv) { return int((n_kv + kDecodeSplitKeys - 1) / kDecodeSplitKeys); }

template <int kHeadDim>
void launch(const DecodeAttentionArgs& a, cudaStream_t stream) {
  const int splits = splits_for(a.n_kv);
  const dim3 split_grid(unsigned(a.heads_kv), unsigned(splits), unsigned(a.num_seqs));
  decode_split_kernel<kHeadDim><<<split_grid, kHeadDim, 0, stream>>>(a, splits);
  check_cuda(cudaGetLastError(), "launching decode_split_kernel");
  decode_merge_kernel<kHeadDim><<<dim3(unsigned(a.heads_q), unsigned(a.num_seqs)), kHeadDim, 0, stream>>>(a, splits);
  check_cuda(cudaGetLastError(), "launching decode_merge_kernel");
}

}  // namespace

int64_t decode_partials_floats(int64_t n_kv, int heads_q, int head_dim, int num_seqs) {
  return int64_t(num_seqs) * heads_q * splits_for(n_kv) * (head_dim + 2);
}

void decode_attention(const DecodeAttentionArgs& args, cudaStream_t stream) {
  if (args.head_dim == 64)
    launch<64>(args, stream);
  else
    launch<128>(args, stream);
}

}  // namespace dattn::model::cuda_detail
