// The sm_90a TMA path for K/V tiles (src/attn/cuda/tma_maps.*, tma_primitives.cuh) against the cp.async
// path on the same inputs (CudaKernelConfig::tma = false), the warp-specialised kernels (ws_kernels.cuh, the
// default with TMA) against the one-warpgroup TMA kernels (warp_specialized = false), and the host's decisions.
//
// Tolerances. TMA vs cp.async: none. Both put the same bytes in the same swizzled shared-memory layout (rows
// past n_kv as zeros) and run the same instructions, so any difference is a wrong box, a wrong coordinate
// or a missed wait, not rounding. Warp-specialised vs one warpgroup: none when both use 64-key tiles and
// no split-KV (the same arithmetic in the same order per row; the warp-specialised pass only moves the O
// rescale after the P V of the previous tile has landed, where it applies anyway). With 128-key tiles (the default) the
// online softmax steps over twice as many keys, so P is rounded to 16 bits against other running maxima:
// the split-KV bounds of test_cuda_split_kv (relative L2 5e-3 bf16, 1.5e-3 fp16) for O, and 1e-5 relative
// L2 for the LSE (an fp32 sum in another order). A stage refilled too early or a wrong tile gives O(1)
// errors. Parity with the reference is test_cuda_backend_cases' job (it runs the default path).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cuda_test_util.h"
#include "split_kv.h"
#include "tma_maps.h"

namespace dattn {
namespace {

using namespace cuda_test;

// The path each comparison turns off.
struct PathSwitch {
  const char* name;
  bool CudaKernelConfig::*enabled;
};
constexpr PathSwitch kTma{"tma", &CudaKernelConfig::tma};
constexpr PathSwitch kWarpSpecialized{"warp_specialized", &CudaKernelConfig::warp_specialized};

bool device_is_hopper() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major == 9;
}

struct TmaCase {
  int64_t batch, n_q, n_kv, h_q, h_kv, d;
  AttentionMode mode;
  int64_t window, sink, gamma;
  DType dtype;
  bool heads_major;
};

// Runs the case with `base` and with `off` turned off too; both must agree bit for bit, or within the
// bounds above when `rounding_differs`.
void check_against_path_off(const TmaCase& c, uint32_t seed, CudaKernelConfig base, PathSwitch off,
                            bool rounding_differs = false) {
  SCOPED_TRACE(fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} {} w{} s{} g{} {} {}", c.batch, c.n_q, c.n_kv, c.h_q,
                           c.h_kv, c.d, mode_name(c.mode), c.window, c.sink, c.gamma, dtype_name(c.dtype),
                           c.heads_major ? "heads-major" : "seq-major"));
  std::mt19937 rng(seed);
  Tensor q = test::random_tensor({c.batch, c.n_q, c.h_q, c.d}, c.dtype, rng);
  Tensor k = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  Tensor v = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  DeviceTensor dq = to_device(q, c.dtype, c.heads_major), dk = to_device(k, c.dtype, c.heads_major),
               dv = to_device(v, c.dtype, c.heads_major);
  cuda::detail::TmaDescriptor map{};
  ASSERT_TRUE(cuda::detail::encode_kv_tma_map(dk.view, map)) << "TMA cannot describe this K: the case is vacuous";
  AttentionParams p = with(c.mode, c.window, c.sink, c.gamma);
  p.cuda = base;
  const GpuResult fast = run_gpu(dq.view, dk.view, dv.view, p);
  p.cuda.*off.enabled = false;
  const GpuResult other = run_gpu(dq.view, dk.view, dv.view, p);
  EXPECT_TRUE(all_finite(fast.out)) << "an output element was not written (NaN poison survived)";
  EXPECT_TRUE(all_finite(fast.lse));
  if (rounding_differs) {
    EXPECT_LT(test::relative_l2(fast.out, other.out), c.dtype == DType::bf16 ? 5e-3 : 1.5e-3) << off.name;
    EXPECT_LT(test::relative_l2(fast.lse, other.lse), 1e-5) << off.name;
    return;
  }
  EXPECT_EQ(test::max_abs_diff(fast.out, other.out), 0.0) << off.name << " = false changed the output";
  EXPECT_EQ(test::max_abs_diff(fast.lse, other.lse), 0.0) << off.name << " = false changed the LSE";
}

TEST(CudaTmaMaps, DescribesTheKernelsLayouts) {
  DATTN_SKIP_WITHOUT_GPU();
  if (!device_is_hopper()) GTEST_SKIP() << "TMA is used on compute capability 9.x only";
  EXPECT_TRUE(cuda::detail::tma_available());
  cuda::detail::TmaDescriptor map{};
  // (batch, rows, heads, d) token-major as the model's KV cache, and heads-major; batch 1 with any stride
  Tensor cache({1, 4096, 8, 128}, DType::bf16, Device::cuda);
  EXPECT_TRUE(cuda::detail::encode_kv_tma_map(cache.view(), map));
  TensorView heads_major = cache.view();
  heads_major.shape = {1, 512, 8, 128};
  heads_major.stride = {12345, 128, 512 * 128, 1};  // batch stride unused (batch 1), odd on purpose
  EXPECT_TRUE(cuda::detail::encode_kv_tma_map(heads_major, map));
  // what TMA cannot do falls back (false), never fails the call
  TensorView odd_rows = cache.view();
  odd_rows.shape = {1, 100, 8, 64};
  odd_rows.stride = {4096 * 8 * 128, 1028, 128, 1};  // 2056-byte rows: not a multiple of 16
  EXPECT_FALSE(cuda::detail::encode_kv_tma_map(odd_rows, map));
  TensorView wrong_dtype = cache.view();
  wrong_dtype.dtype = DType::f32;
  EXPECT_FALSE(cuda::detail::encode_kv_tma_map(wrong_dtype, map));
}

// Checked before any device query, so this runs without a GPU too.
TEST(CudaKernelConfig, RejectsAnOutOfRangeSplitCount) {
  for (int splits : {-1, kMaxCudaKvSplits + 1}) {
    AttentionParams p;
    p.cuda.kv_splits = splits;
    try {
      validate_attention_params(p);
      FAIL() << "kv_splits " << splits << " was accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(fmt::format("kv_splits must be in 0 .. {}", kMaxCudaKvSplits)));
      EXPECT_THAT(e.what(), ::testing::HasSubstr(fmt::format("got {}", splits)));
    }
  }
}

using M = AttentionMode;
constexpr DType bf = DType::bf16, hf = DType::f16;

// Layouts and modes both comparisons run.
const std::vector<TmaCase> kLayoutCases = {
    {1, 1000, 1000, 4, 2, 128, M::delta, 256, 64, 32, bf, false},     // last key tile partial: zero fill
    {2, 300, 777, 8, 2, 64, M::recompute, 128, 64, 16, hf, true},     // batch 2, heads-major, continued prefill
    {1, 513, 4099, 4, 1, 128, M::dense, 1, 0, 1, bf, false},          // GQA 4, continued prefill
    {1, 2000, 2000, 4, 4, 64, M::sparse, 300, 100, 1, bf, false},
    {1, 256, 32768, 8, 2, 128, M::delta, 2048, 1024, 64, hf, false},  // split-KV path of the dense rows
};

TEST(CudaTma, SameBitsAsCpAsync) {
  DATTN_SKIP_WITHOUT_GPU();
  if (!device_is_hopper()) GTEST_SKIP() << "TMA is used on compute capability 9.x only";
  uint32_t seed = 900;
  CudaKernelConfig one_warpgroup;  // the warp-specialised kernels are compared below
  one_warpgroup.warp_specialized = false;
  for (const TmaCase& c : kLayoutCases) check_against_path_off(c, seed++, one_warpgroup, kTma);
}

TEST(CudaWarpSpecialized, AgreesWithOneWarpgroup) {
  DATTN_SKIP_WITHOUT_GPU();
  if (!device_is_hopper()) GTEST_SKIP() << "the warp-specialised kernels run on compute capability 9.x only";
  std::vector<TmaCase> cases = kLayoutCases;
  cases.insert(cases.end(), {
      {1, 8192, 8192, 4, 1, 128, M::delta, 2048, 1024, 64, bf, false},  // the ring wraps ~30 times per CTA
      {1, 4100, 4100, 2, 2, 128, M::delta, 100, 3, 7, bf, false},       // odd gamma: anchors skip window tiles
      {1, 60, 60, 2, 1, 64, M::delta, 16, 4, 8, hf, false},             // one partial tile, one key tile
      {2, 20000, 20000, 4, 2, 128, M::delta, 512, 64, 16, bf, true},    // 10 anchor tiles per head, batch 2
      {1, 700, 700, 2, 1, 128, M::delta, 64, 16, 2, bf, false},         // 32 anchors per warpgroup
      {1, 900, 1000, 2, 2, 64, M::delta, 128, 32, 4, hf, false},        // continued prefill, gamma 4
  });
  // The split-KV plan depends on the CTAs per SM, which differ between the two kernel families (and a
  // split rounds differently from no split): pin it, to none and to 3 chunks.
  uint32_t seed = 950;
  for (int splits : {1, 3}) {
    CudaKernelConfig pinned;
    pinned.kv_splits = splits;
    SCOPED_TRACE(fmt::format("kv_splits = {}", splits));
    // exact only for 64-key tiles without split: after a split the one-warpgroup combine adds dense(anchor)
    // to -sparse(anchor) in one (possibly fused) step, the warp-specialised path subtracts in the sparse kernel
    const bool rounding_differs = cuda::detail::kWsKeyTileKeys != 64 || splits != 1;
    for (const TmaCase& c : cases) check_against_path_off(c, seed++, pinned, kWarpSpecialized, rounding_differs);
  }
}

}  // namespace
}  // namespace dattn
