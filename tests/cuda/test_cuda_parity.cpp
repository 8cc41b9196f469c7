// The cuda backend against the fp64 reference on the same bf16/fp16-rounded inputs.
//
// Tolerance 1e-2 relative L2 on the output: the kernels accumulate in fp32, but the softmax weights P
// are rounded to the input type (8 mantissa bits for bf16, relative error up to 2^-9 per weight) before
// the P·V product on the tensor cores, and a bf16 output adds another 2^-9; over a row these average to
// a few 1e-3. LSE is computed from fp32 scores of exactly the same rounded inputs, so it must match to
// 1e-3 absolute (ex2.approx / lg2.approx and fp32 summation order are the only differences).
#include <gtest/gtest.h>

#include <random>

#include "cuda_test_util.h"

namespace dattn {
namespace {

using namespace cuda_test;

struct ParityCase {
  int64_t batch, n_q, n_kv, h_q, h_kv, d;
  AttentionMode mode;
  int64_t window, sink, gamma;
  DType dtype, out_dtype;
  bool heads_major;
};

std::string describe(const ParityCase& c) {
  return fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} {} w{} s{} g{} {} out {} {}", c.batch, c.n_q, c.n_kv, c.h_q, c.h_kv,
                     c.d, mode_name(c.mode), c.window, c.sink, c.gamma, dtype_name(c.dtype), dtype_name(c.out_dtype),
                     c.heads_major ? "heads-major" : "seq-major");
}

void check_parity(const ParityCase& c, uint32_t seed) {
  SCOPED_TRACE(describe(c));
  std::mt19937 rng(seed);
  // Host inputs already rounded to the kernel's input type, so both sides see the same values.
  Tensor q = test::random_tensor({c.batch, c.n_q, c.h_q, c.d}, c.dtype, rng);
  Tensor k = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  Tensor v = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  AttentionParams p = with(c.mode, c.window, c.sink, c.gamma);

  p.backend = Backend::reference;
  Tensor ref_out(q.view().shape, DType::f32), ref_lse({c.batch, c.h_q, c.n_q, 1}, DType::f32);
  delta_attention_lse(q, k, v, ref_out, ref_lse, p);

  DeviceTensor dq = to_device(q, c.dtype, c.heads_major), dk = to_device(k, c.dtype, c.heads_major),
               dv = to_device(v, c.dtype, c.heads_major);
  GpuResult gpu = run_gpu(dq.view, dk.view, dv.view, p, c.out_dtype, c.heads_major);
  EXPECT_TRUE(all_finite(gpu.out)) << "an output element was not written (NaN poison survived)";
  EXPECT_TRUE(all_finite(gpu.lse)) << "an LSE element was not written";
  EXPECT_LT(test::relative_l2(gpu.out, ref_out), 1e-2);
  EXPECT_LT(test::max_abs_diff(gpu.lse, ref_lse), 1e-3);
}

TEST(CudaParity, EdgeCases) {
  DATTN_SKIP_WITHOUT_GPU();
  using M = AttentionMode;
  const DType bf = DType::bf16, hf = DType::f16, f32 = DType::f32;
  const std::vector<ParityCase> cases = {
      {1, 333, 333, 4, 2, 64, M::delta, 64, 16, 16, bf, f32, false},     // n not a multiple of gamma
      {1, 100, 100, 4, 1, 128, M::delta, 32, 8, 64, bf, f32, false},     // n < tail: every row dense
      {2, 200, 517, 8, 2, 64, M::delta, 48, 20, 8, hf, f32, false},      // continued prefill
      {1, 300, 300, 2, 2, 128, M::sparse, 1000, 0, 64, bf, f32, false},  // window >= n
      {1, 400, 400, 4, 4, 64, M::sparse, 70, 0, 64, bf, bf, false},      // sink 0
      {1, 260, 260, 2, 1, 64, M::delta, 40, 10, 1, bf, f32, false},      // gamma 1
      {3, 190, 190, 8, 1, 128, M::recompute, 50, 5, 4, hf, hf, true},    // GQA 8, batch 3, heads-major
      {1, 500, 500, 2, 1, 64, M::delta, 96, 33, 4, bf, f32, false},      // more than 64 anchors: 2 anchor tiles
      {1, 1200, 1200, 2, 2, 64, M::delta, 50, 70, 128, bf, f32, true},   // anchors further apart than the window
      {2, 129, 700, 4, 2, 128, M::dense, 1, 0, 1, bf, f32, true},        // dense, continued prefill
      {1, 64, 64, 1, 1, 64, M::dense, 1, 0, 1, hf, f32, false},          // exactly one tile
      {1, 1, 77, 2, 1, 128, M::delta, 16, 4, 64, bf, f32, false},        // one row
  };
  uint32_t seed = 100;
  for (const ParityCase& c : cases) check_parity(c, seed++);
}

TEST(CudaParity, RandomisedSweep) {
  DATTN_SKIP_WITHOUT_GPU();
  RandomPick pick(20251128);
  for (int i = 0; i < 24; ++i) {
    ParityCase c;
    c.batch = pick.between(1, 3);
    c.h_kv = pick.one_of(int64_t(1), 2);
    c.h_q = c.h_kv * pick.one_of(int64_t(1), 2, 4, 8);
    c.d = pick.one_of(int64_t(64), 128);
    c.n_q = pick.between(1, 640);
    c.n_kv = c.n_q + pick.one_of(int64_t(0), 0, pick.between(1, 300));
    c.mode = pick.one_of(AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta,
                         AttentionMode::delta);
    c.window = pick.one_of(pick.between(1, 200), pick.between(1, 64), int64_t(5000));
    c.sink = pick.one_of(int64_t(0), pick.between(1, 100), int64_t(1024));
    c.gamma = pick.one_of(int64_t(1), 3, 8, 16, 64, 100);
    c.dtype = pick.one_of(DType::bf16, DType::f16);
    c.out_dtype = pick.one_of(DType::f32, c.dtype);
    c.heads_major = pick.one_of(false, true);
    // Keep the fp64 reference (about 3 * d element reads per query-key pair) to a second or so.
    while (double(c.batch * c.h_q) * double(c.n_q) * double(c.n_kv) * double(c.d) > 2e8) {
      c.n_q = (c.n_q + 1) / 2;
      c.n_kv = (c.n_kv + 1) / 2 < c.n_q ? c.n_q : (c.n_kv + 1) / 2;
    }
    check_parity(c, 1000 + uint32_t(i));
  }
}

}  // namespace
}  // namespace dattn
