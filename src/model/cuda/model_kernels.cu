#include <cuda_bf16.h>

#include "device_buffer.h"
#include "model_kernels.h"

namespace dattn::model::cuda_detail {
namespace {

__device__ __forceinline__ float load_bf16(const uint16_t* p) {
  return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
}
__device__ __forceinline__ void store_bf16(uint16_t* p, float v) {
  *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(v);
}

// Sum over a block of up to 1024 threads; every thread gets the total.
__device__ float block_sum(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < int(blockDim.x / 32); ++w) total += scratch[w];
  __syncthreads();  // scratch may be reused by the caller
  return total;
}

__global__ void embed_rows_kernel(const int32_t* ids, const uint16_t* table, int64_t hidden, float* out) {
  const int64_t r = blockIdx.x;
  const uint16_t* src = table + int64_t(ids[r]) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) out[r * hidden + i] = load_bf16(src + i);
}

// The same arithmetic on float4 / 4 x bf16 (dim % 4 == 0): 16-byte loads, 8-byte stores. The row is read
// twice; the second read hits L1/L2 (a 4096-wide row is 16 KB).
__global__ void rms_norm_vec4_kernel(const float* x, const float* weight, int64_t dim, float eps, uint16_t* out) {
  __shared__ float scratch[32];
  const int64_t n4 = dim / 4;
  const float4* xr = reinterpret_cast<const float4*>(x + int64_t(blockIdx.x) * dim);
  float sum = 0;
  for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
    const float4 v = xr[i];
    sum += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  sum = block_sum(sum, scratch);
  const float inv = rsqrtf(sum / float(dim) + eps);
  const float4* w4 = reinterpret_cast<const float4*>(weight);
  uint2* o = reinterpret_cast<uint2*>(out + int64_t(blockIdx.x) * dim);
  for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
    const float4 v = xr[i], w = w4[i];
    const __nv_bfloat162 lo = __floats2bfloat162_rn(w.x * (v.x * inv), w.y * (v.y * inv));
    const __nv_bfloat162 hi = __floats2bfloat162_rn(w.z * (v.z * inv), w.w * (v.w * inv));
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t*>(&lo);
    packed.y = *reinterpret_cast<const uint32_t*>(&hi);
    o[i] = packed;
  }
}

__global__ void rms_norm_kernel(const float* x, const float* weight, int64_t dim, float eps, uint16_t* out) {
  __shared__ float scratch[32];
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float sum = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i] * xr[i];
  sum = block_sum(sum, scratch);
  const float inv = rsqrtf(sum / float(dim) + eps);
  uint16_t* o = out + int64_t(blockIdx.x) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) store_bf16(o + i, weight[i] * (xr[i] * inv));
}

// One block per token row. Shared memory: cos and sin of the row's angles, then 1/rms of each q and k head.
__global__ void qkv_epilogue_kernel(const QkvEpilogueArgs a) {
  extern __shared__ float shared[];
  const int half = a.head_dim / 2, heads_qk = a.heads_q + a.heads_kv, heads = heads_qk + a.heads_kv;
  float* cos_t = shared;
  float* sin_t = shared + half;
  float* inv_rms = shared + 2 * half;
  const int64_t r = blockIdx.x, position = a.positions ? a.positions[r] : a.first_position + r;
  const int64_t cache_row = a.cache_rows ? a.cache_rows[r] : position;
  const uint16_t* row = a.qkv + r * int64_t(heads) * a.head_dim;

  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    // fp32 position times fp32 frequency, then cos/sin of that fp32 angle (transformers' rounding)
    const float angle = float(position) * a.inv_freq[i];
    cos_t[i] = float(cos(double(angle)));
    sin_t[i] = float(sin(double(angle)));
  }
  const auto value = [&](int head, int i) {
    const int index = head * a.head_dim + i;
    return load_bf16(row + index) + (a.bias ? a.bias[index] : 0.0f);
  };
  if (a.q_norm) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int head = warp; head < heads_qk; head += warps) {
      float sum = 0;
      for (int i = lane; i < a.head_dim; i += 32) {
        const float v = value(head, i);
        sum += v * v;
      }
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      if (lane == 0) inv_rms[head] = rsqrtf(sum / float(a.head_dim) + a.norm_eps);
    }
  }
  __syncthreads();

  for (int pair = threadIdx.x; pair < heads * half; pair += blockDim.x) {
    const int head = pair / half, i = pair % half;
    float x0 = value(head, i), x1 = value(head, i + half);
    uint16_t* dst;
    if (head < heads_qk) {
      if (a.q_norm) {
        const float* w = head < a.heads_q ? a.q_norm : a.k_norm;
        x0 = w[i] * (x0 * inv_rms[head]);
        x1 = w[i + half] * (x1 * inv_rms[head]);
      }
      const float c = cos_t[i], s = sin_t[i];
      const float y0 = x0 * c - x1 * s, y1 = x1 * c + x0 * s;
      x0 = y0;
      x1 = y1;
      dst = head < a.heads_q
                ? a.q_out + (r * a.heads_q + head) * a.padded_head_dim
                : a.k_cache + (cache_row * a.heads_kv + (head - a.heads_q)) * a.padded_head_dim;
    } else {
      dst = a.v_cache + (cache_row * a.heads_kv + (head - heads_qk)) * a.padded_head_dim;
    }
    store_bf16(dst + i, x0);
    store_bf16(dst + i + half, x1);
  }
}

// 16 bytes (8 bf16) per thread and step.
__global__ void gather_rows_kernel(const uint16_t* pool, const int32_t* table, int64_t rows, int64_t block_tokens,
                                   int64_t row_elems, uint16_t* out) {
  const int64_t per_row = row_elems / 8, n = rows * per_row;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = k / per_row, c = (k - j * per_row) * 8;
    const int64_t src = int64_t(table[j / block_tokens]) * block_tokens + j % block_tokens;
    *reinterpret_cast<uint4*>(out + j * row_elems + c) = *reinterpret_cast<const uint4*>(pool + src * row_elems + c);
  }
}

__global__ void swiglu_kernel(const uint16_t* gate_up, const float* bias, int64_t rows, int64_t inter,
                              uint16_t* out) {
  const int64_t n = rows * inter;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = k / inter, i = k % inter;
    float g = load_bf16(gate_up + r * 2 * inter + i), u = load_bf16(gate_up + r * 2 * inter + inter + i);
    if (bias) {
      g += bias[i];
      u += bias[inter + i];
    }
    store_bf16(out + k, g / (1.0f + expf(-g)) * u);
  }
}

// The same arithmetic, 8 outputs per thread (inter % 8 == 0, no bias): 16-byte loads and stores.
__global__ void swiglu_vec8_kernel(const uint16_t* gate_up, int64_t rows, int64_t inter, uint16_t* out) {
  const int64_t per_row = inter / 8, n = rows * per_row;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = k / per_row, c = (k - r * per_row) * 8;
    const uint4 g_packed = *reinterpret_cast<const uint4*>(gate_up + r * 2 * inter + c);
    const uint4 u_packed = *reinterpret_cast<const uint4*>(gate_up + r * 2 * inter + inter + c);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&g_packed);
    const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&u_packed);
    uint4 result;
    __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(&result);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 g = __bfloat1622float2(g2[e]), u = __bfloat1622float2(u2[e]);
      o2[e] = __floats2bfloat162_rn(g.x / (1.0f + expf(-g.x)) * u.x, g.y / (1.0f + expf(-g.y)) * u.y);
    }
    *reinterpret_cast<uint4*>(out + r * inter + c) = result;
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t rows, int64_t n) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < rows * n; k += int64_t(gridDim.x) * blockDim.x)
    x[k] += bias[k % n];
}

unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

void embed_rows(const int32_t* ids, const uint16_t* table, int64_t rows, int64_t hidden, float* out,
                cudaStream_t stream) {
  embed_rows_kernel<<<unsigned(rows), 256, 0, stream>>>(ids, table, hidden, out);
  check_cuda(cudaGetLastError(), "launching embed_rows_kernel");
}

void rms_norm_to_bf16(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, uint16_t* out,
                      cudaStream_t stream) {
  if (rows == 0) return;
  if (dim % 4 == 0) {
    // every row and the weight start 16-byte aligned (cudaMalloc'd, dim a multiple of 4)
    rms_norm_vec4_kernel<<<unsigned(rows), dim >= 2048 ? 256 : 128, 0, stream>>>(x, weight, dim, eps, out);
  } else {
    rms_norm_kernel<<<unsigned(rows), 512, 0, stream>>>(x, weight, dim, eps, out);
  }
  check_cuda(cudaGetLastError(), "launching rms_norm_kernel");
}

void qkv_epilogue(const QkvEpilogueArgs& args, cudaStream_t stream) {
  const size_t smem = size_t(args.head_dim + args.heads_q + args.heads_kv) * sizeof(float);
  qkv_epilogue_kernel<<<unsigned(args.rows), 256, smem, stream>>>(args);
  check_cuda(cudaGetLastError(), "launching qkv_epilogue_kernel");
}

void swiglu(const uint16_t* gate_up, const float* bias, int64_t rows, int64_t inter, uint16_t* out,
            cudaStream_t stream) {
  if (inter % 8 == 0 && bias == nullptr)
    swiglu_vec8_kernel<<<grid_for(rows * inter / 8, 256), 256, 0, stream>>>(gate_up, rows, inter, out);
  else
    swiglu_kernel<<<grid_for(rows * inter, 256), 256, 0, stream>>>(gate_up, bias, rows, inter, out);
  check_cuda(cudaGetLastError(), "launching swiglu_kernel");
}

void gather_rows(const uint16_t* pool, const int32_t* table, int64_t rows, int64_t block_tokens, int64_t row_elems,
                 uint16_t* out, cudaStream_t stream) {
  if (rows == 0) return;
  gather_rows_kernel<<<grid_for(rows * row_elems / 8, 256), 256, 0, stream>>>(pool, table, rows, block_tokens,
                                                                              row_elems, out);
  check_cuda(cudaGetLastError(), "launching gather_rows_kernel");
}

void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream) {
  add_bias_kernel<<<grid_for(rows * n, 256), 256, 0, stream>>>(x, bias, rows, n);
  check_cuda(cudaGetLastError(), "launching add_bias_kernel");
}

}  // namespace dattn::model::cuda_detail
