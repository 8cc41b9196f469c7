// Hopper (sm_90a) warpgroup matrix instructions. S = Q K^T: both operands from shared memory in the
// 128-byte-swizzled K-major layout. O += P V: P from registers (the S accumulators, packed to 16 bits),
// V from shared memory in the 128-byte-swizzled MN-major layout (rows = keys, as loaded; imm-trans-b = 1).
// fp32 accumulators in registers. Compiled only for sm_90a.
#pragma once
#include <cstdint>

#include "mma_primitives.cuh"

namespace dattn::cuda::detail {

#define DATTN_COMMA ,

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
inline constexpr bool kHaveWgmma = true;
#else
inline constexpr bool kHaveWgmma = false;
#endif

// Element offset of 16-byte chunk `chunk` of row `row` in a tile of `rows` rows stored 128-byte
// swizzled: each 64-element column block is its own [rows][64] array, chunk index XOR (row % 8).
__device__ __forceinline__ int swizzled_offset(int rows, int row, int chunk) {
  return (chunk >> 3) * rows * 64 + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}

// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
// The tile base must be 1024-byte aligned; a k offset inside the 64-element block moves the start only.
__device__ __forceinline__ uint64_t sw128_descriptor(const void* smem) {
  const uint64_t address = shared_address(smem);
  return ((address & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

// Descriptor of a [keys][head_dim] tile used as the N-major B operand (N = head_dim, K = keys), stored
// as swizzled_offset(kRows, ...) lays it out: 64-element column blocks kRows * 128 bytes apart (leading
// byte offset: from one 64-wide N block to the next), 8-key groups 1024 bytes apart (stride byte offset).
template <int kRows>
__device__ __forceinline__ uint64_t sw128_mn_major_descriptor(const void* smem) {
  const uint64_t address = shared_address(smem);
  return ((address & 0x3FFFF) >> 4) | (uint64_t((kRows * 128) >> 4) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Waits until at most kPending of this warpgroup's committed groups are still in flight (groups complete
// in commit order).
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Orders this thread's generic-proxy shared stores (cp.async) before later async-proxy (wgmma) reads.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// D(64x64, fp32) = A(64x16) * B(16x64) (+ D when accumulate): A and B K-major in shared memory.
template <typename Elem>
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int accumulate);

#define DATTN_WGMMA_M64N64K16(TYPE, PTX_TYPE)                                                                 \
  template <>                                                                                               \
  __device__ __forceinline__ void wgmma_m64n64k16<TYPE>(float (&d)[32], uint64_t desc_a, uint64_t desc_b,   \
                                                        int accumulate) {                                   \
    asm volatile(                                                                                           \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                        \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE                                  \
        " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"                                                          \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                                                                            \
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));                                                        \
  }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
DATTN_WGMMA_M64N64K16(__nv_bfloat16, "bf16")
DATTN_WGMMA_M64N64K16(__half, "f16")
#endif
#undef DATTN_WGMMA_M64N64K16

// D(64x64, fp32) = A(64x16) * B(16x64), D written only: its old registers are not inputs, so no
// instruction has to define them while an earlier wgmma (the previous tile's P V) is still in flight.
template <typename Elem>
__device__ __forceinline__ void wgmma_m64n64k16_overwrite(float (&d)[32], uint64_t desc_a, uint64_t desc_b);

#define DATTN_WGMMA_M64N64K16_OVERWRITE(TYPE, PTX_TYPE)                                                 \
  template <>                                                                                         \
  __device__ __forceinline__ void wgmma_m64n64k16_overwrite<TYPE>(float (&d)[32], uint64_t desc_a,     \
                                                                  uint64_t desc_b) {                  \
    asm volatile(                                                                                     \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                  \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE                            \
        " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"                                                    \
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31])  \
        : "l"(desc_a), "l"(desc_b), "r"(0));                                                          \
  }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
DATTN_WGMMA_M64N64K16_OVERWRITE(__nv_bfloat16, "bf16")
DATTN_WGMMA_M64N64K16_OVERWRITE(__half, "f16")
#endif
#undef DATTN_WGMMA_M64N64K16_OVERWRITE

// D(64x128, fp32) = A(64x16) * B(16x128) (+ D when accumulate), and the output-only form: as the 64-wide
// ones above, for 128-key tiles (the warp-specialised kernels).
template <typename Elem>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int accumulate);
template <typename Elem>
__device__ __forceinline__ void wgmma_m64n128k16_overwrite(float (&d)[64], uint64_t desc_a, uint64_t desc_b);

#define DATTN_WGMMA_M64N128K16(TYPE, PTX_TYPE, NAME, CONSTRAINT, ACCUMULATE_ARG, ACCUMULATE_VALUE)            \
  template <>                                                                                            \
  __device__ __forceinline__ void NAME<TYPE>(float (&d)[64], uint64_t desc_a, uint64_t desc_b ACCUMULATE_ARG) { \
    asm volatile(                                                                                        \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                     \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE                              \
        " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"                                                          \
        : CONSTRAINT(d[0]), CONSTRAINT(d[1]), CONSTRAINT(d[2]), CONSTRAINT(d[3]), CONSTRAINT(d[4]), CONSTRAINT(d[5]), CONSTRAINT(d[6]), CONSTRAINT(d[7]), CONSTRAINT(d[8]), CONSTRAINT(d[9]), CONSTRAINT(d[10]), CONSTRAINT(d[11]), CONSTRAINT(d[12]), CONSTRAINT(d[13]), CONSTRAINT(d[14]), CONSTRAINT(d[15]), CONSTRAINT(d[16]), CONSTRAINT(d[17]), CONSTRAINT(d[18]), CONSTRAINT(d[19]), CONSTRAINT(d[20]), CONSTRAINT(d[21]), CONSTRAINT(d[22]), CONSTRAINT(d[23]), CONSTRAINT(d[24]), CONSTRAINT(d[25]), CONSTRAINT(d[26]), CONSTRAINT(d[27]), CONSTRAINT(d[28]), CONSTRAINT(d[29]), CONSTRAINT(d[30]), CONSTRAINT(d[31]), CONSTRAINT(d[32]), CONSTRAINT(d[33]), CONSTRAINT(d[34]), CONSTRAINT(d[35]), CONSTRAINT(d[36]), CONSTRAINT(d[37]), CONSTRAINT(d[38]), CONSTRAINT(d[39]), CONSTRAINT(d[40]), CONSTRAINT(d[41]), CONSTRAINT(d[42]), CONSTRAINT(d[43]), CONSTRAINT(d[44]), CONSTRAINT(d[45]), CONSTRAINT(d[46]), CONSTRAINT(d[47]), CONSTRAINT(d[48]), CONSTRAINT(d[49]), CONSTRAINT(d[50]), CONSTRAINT(d[51]), CONSTRAINT(d[52]), CONSTRAINT(d[53]), CONSTRAINT(d[54]), CONSTRAINT(d[55]), CONSTRAINT(d[56]), CONSTRAINT(d[57]), CONSTRAINT(d[58]), CONSTRAINT(d[59]), CONSTRAINT(d[60]), CONSTRAINT(d[61]), CONSTRAINT(d[62]), CONSTRAINT(d[63])                                                                                           \
        : "l"(desc_a), "l"(desc_b), "r"(ACCUMULATE_VALUE));                                              \
  }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
DATTN_WGMMA_M64N128K16(__nv_bfloat16, "bf16", wgmma_m64n128k16, "+f", DATTN_COMMA int accumulate, accumulate)
DATTN_WGMMA_M64N128K16(__half, "f16", wgmma_m64n128k16, "+f", DATTN_COMMA int accumulate, accumulate)
DATTN_WGMMA_M64N128K16(__nv_bfloat16, "bf16", wgmma_m64n128k16_overwrite, "=f", , 0)
DATTN_WGMMA_M64N128K16(__half, "f16", wgmma_m64n128k16_overwrite, "=f", , 0)
#endif
#undef DATTN_WGMMA_M64N128K16

// D(64xN, fp32) += A(64x16) * B(16xN): A in registers (the mma.sync m16n8k16 A fragment of the warp's 16
// rows), B N-major in shared memory (imm-trans-b = 1). N = head_dim (64 or 128); d holds the warp's rows
// as N/8 groups of 4, the layout of N/8 mma.sync m16n8 accumulators.
template <typename Elem, int kN>
__device__ __forceinline__ void wgmma_rs_m64k16(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t desc_b);

#define DATTN_WGMMA_RS_N64(TYPE, PTX_TYPE)                                                            \
  template <>                                                                                         \
  __device__ __forceinline__ void wgmma_rs_m64k16<TYPE, 64>(float (&d)[32], const uint32_t (&a)[4],  \
                                                          uint64_t desc_b) {                          \
    asm volatile(                                                                                     \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                              \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE                           \
        " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"                      \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])  \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));                          \
  }

#define DATTN_WGMMA_RS_N128(TYPE, PTX_TYPE)                                                            \
  template <>                                                                                         \
  __device__ __forceinline__ void wgmma_rs_m64k16<TYPE, 128>(float (&d)[64], const uint32_t (&a)[4],  \
                                                          uint64_t desc_b) {                          \
    asm volatile(                                                                                     \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                              \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE                           \
        " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"                      \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])  \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));                          \
  }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
DATTN_WGMMA_RS_N64(__nv_bfloat16, "bf16")
DATTN_WGMMA_RS_N64(__half, "f16")
DATTN_WGMMA_RS_N128(__nv_bfloat16, "bf16")
DATTN_WGMMA_RS_N128(__half, "f16")
#endif
#undef DATTN_WGMMA_RS_N64
#undef DATTN_WGMMA_RS_N128

}  // namespace dattn::cuda::detail
