// The spec's invariants on the cuda backend (GPU against GPU), plus its argument errors.
// Identities between kernels that visit the same keys in the same order hold bitwise, because a key
// masked for a row adds exactly zero and leaves its running max alone; the tolerance 1e-5 relative L2
// only absorbs the fp32 rounding of delta's sparse + (dense - sparse).
#include <gtest/gtest.h>

#include <random>

#include "cuda_test_util.h"

namespace dattn {
namespace {

using namespace cuda_test;
constexpr double kTolerance = 1e-5;

struct Inputs {
  Tensor host_q, host_k, host_v;
  DeviceTensor q, k, v;
};

Inputs make_inputs(int64_t batch, int64_t n_q, int64_t n_kv, int64_t h_q, int64_t h_kv, int64_t d, uint32_t seed,
                   DType dtype = DType::bf16) {
  std::mt19937 rng(seed);
  Inputs in;
  in.host_q = test::random_tensor({batch, n_q, h_q, d}, dtype, rng);
  in.host_k = test::random_tensor({batch, n_kv, h_kv, d}, dtype, rng);
  in.host_v = test::random_tensor({batch, n_kv, h_kv, d}, dtype, rng);
  in.q = to_device(in.host_q, dtype, false);
  in.k = to_device(in.host_k, dtype, false);
  in.v = to_device(in.host_v, dtype, false);
  return in;
}

GpuResult run(const Inputs& in, const AttentionParams& p) { return run_gpu(in.q.view, in.k.view, in.v.view, p); }

TEST(CudaInvariants, SparseWithWindowCoveringEverythingIsDense) {
  DATTN_SKIP_WITHOUT_GPU();
  for (int64_t d : {64, 128}) {
    Inputs in = make_inputs(1, 300, 300, 4, 2, d, 1);
    GpuResult dense = run(in, with(AttentionMode::dense, 1, 0, 1));
    for (int64_t sink : {0, 64}) {  // sink keys inside the window count once
      GpuResult sparse = run(in, with(AttentionMode::sparse, 300, sink, 1));
      EXPECT_LT(test::relative_l2(sparse.out, dense.out), kTolerance) << d;
      EXPECT_LT(test::relative_l2(sparse.lse, dense.lse), kTolerance) << d;
    }
  }
}

TEST(CudaInvariants, DeltaWithGammaOneIsDense) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(2, 400, 400, 4, 1, 128, 2);
  GpuResult dense = run(in, with(AttentionMode::dense, 1, 0, 1));
  GpuResult delta = run(in, with(AttentionMode::delta, 16, 4, 1));
  EXPECT_LT(test::relative_l2(delta.out, dense.out), kTolerance);
}

TEST(CudaInvariants, DeltaRecomputeAndDenseAgreeOnAnchorsAndTail) {
  DATTN_SKIP_WITHOUT_GPU();
  const int64_t n = 1517;  // not a multiple of gamma; more than 64 anchors
  Inputs in = make_inputs(1, n, n, 4, 2, 64, 3);
  AttentionParams p = with(AttentionMode::delta, 100, 20, 16);
  const RowPlan plan = make_row_plan(n, p);
  ASSERT_GT(plan.num_anchors(), 64);
  GpuResult dense = run(in, with(AttentionMode::dense, 100, 20, 16));
  GpuResult sparse = run(in, with(AttentionMode::sparse, 100, 20, 16));
  GpuResult delta = run(in, p);
  GpuResult recompute = run(in, with(AttentionMode::recompute, 100, 20, 16));
  for (int64_t a = 0; a < plan.num_anchors(); ++a) {
    const int64_t row = a * plan.gamma;
    EXPECT_LT(test::relative_l2(rows(delta.out, row, row + 1), rows(dense.out, row, row + 1)), kTolerance) << row;
    EXPECT_LT(test::relative_l2(rows(recompute.out, row, row + 1), rows(dense.out, row, row + 1)), kTolerance) << row;
    EXPECT_LT(test::relative_l2(lse_rows(recompute.lse, row, row + 1), lse_rows(dense.lse, row, row + 1)), kTolerance);
  }
  const TensorView tail_dense = rows(dense.out, plan.sparse_rows, n);
  EXPECT_LT(test::relative_l2(rows(delta.out, plan.sparse_rows, n), tail_dense), kTolerance);
  EXPECT_LT(test::relative_l2(rows(recompute.out, plan.sparse_rows, n), tail_dense), kTolerance);
  EXPECT_LT(test::relative_l2(lse_rows(delta.lse, plan.sparse_rows, n), lse_rows(dense.lse, plan.sparse_rows, n)),
            kTolerance);
  // Corrected rows report their sparse LSE; recompute's non-anchor rows are sparse rows.
  EXPECT_LT(test::relative_l2(lse_rows(delta.lse, 0, plan.sparse_rows), lse_rows(sparse.lse, 0, plan.sparse_rows)),
            kTolerance);
  EXPECT_LT(test::relative_l2(rows(recompute.out, 1, plan.gamma), rows(sparse.out, 1, plan.gamma)), kTolerance);
}

TEST(CudaInvariants, DeltaRowsAreSparsePlusTheAnchorDelta) {
  DATTN_SKIP_WITHOUT_GPU();
  const int64_t n = 700;
  Inputs in = make_inputs(1, n, n, 2, 1, 128, 4);
  AttentionParams p = with(AttentionMode::delta, 90, 7, 32);
  const RowPlan plan = make_row_plan(n, p);
  GpuResult dense = run(in, with(AttentionMode::dense, 90, 7, 32));
  GpuResult sparse = run(in, with(AttentionMode::sparse, 90, 7, 32));
  GpuResult delta = run(in, p);
  Tensor expected(in.host_q.view().shape, DType::f32);
  for (int64_t row = 0; row < n; ++row)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t e = 0; e < 128; ++e) {
        float value = dense.out.view.get(0, row, h, e);
        if (!plan.is_tail(row)) {
          const int64_t a = plan.anchor_of(row);
          value = sparse.out.view.get(0, row, h, e) + dense.out.view.get(0, a, h, e) - sparse.out.view.get(0, a, h, e);
        }
        expected.view().set(0, row, h, e, value);
      }
  EXPECT_LT(test::relative_l2(delta.out, expected), kTolerance);
  // sparse really differs from dense here, so the checks above are not vacuous
  EXPECT_GT(test::relative_l2(sparse.out, dense.out), 1e-2);
  EXPECT_GT(test::relative_l2(delta.out, sparse.out), 1e-2);
}

TEST(CudaInvariants, GroupedQueryAttentionEqualsExpandedHeads) {
  DATTN_SKIP_WITHOUT_GPU();
  for (int64_t group : {2, 4, 8}) {
    Inputs in = make_inputs(2, 230, 230, 2 * group, 2, 64, 5 + uint32_t(group));
    Tensor k_expanded = test::expand_heads(in.host_k, group), v_expanded = test::expand_heads(in.host_v, group);
    DeviceTensor dk = to_device(k_expanded, DType::bf16, false), dv = to_device(v_expanded, DType::bf16, false);
    for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta}) {
      AttentionParams p = with(mode, 40, 3, 8);
      GpuResult grouped = run(in, p);
      GpuResult expanded = run_gpu(in.q.view, dk.view, dv.view, p);
      EXPECT_LT(test::relative_l2(grouped.out, expanded.out), kTolerance) << "group " << group;
      EXPECT_LT(test::relative_l2(grouped.lse, expanded.lse), kTolerance) << "group " << group;
    }
  }
}

TEST(CudaInvariants, ContinuedPrefillGivesTheSameDenseRows) {
  DATTN_SKIP_WITHOUT_GPU();
  const int64_t n = 333;
  Inputs in = make_inputs(1, n, n, 4, 2, 128, 9);
  GpuResult whole = run(in, with(AttentionMode::dense, 1, 0, 1));
  int64_t offset = 0;
  for (int64_t chunk : {100, 1, 150, 82}) {  // the cache holds `offset` tokens, the chunk adds `chunk` rows
    TensorView q = in.q.view, k = in.k.view, v = in.v.view;
    q.data = static_cast<uint16_t*>(q.data) + offset * q.stride[1];
    q.shape[1] = chunk;
    k.shape[1] = v.shape[1] = offset + chunk;
    GpuResult part = run_gpu(q, k, v, with(AttentionMode::dense, 1, 0, 1));
    EXPECT_LT(test::relative_l2(part.out, rows(whole.out, offset, offset + chunk)), kTolerance) << offset;
    EXPECT_LT(test::relative_l2(part.lse, lse_rows(whole.lse, offset, offset + chunk)), kTolerance) << offset;
    offset += chunk;
  }
  EXPECT_EQ(offset, n);
}

TEST(CudaInvariants, StridedHeadsMajorViewsGiveTheSameResult) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(2, 300, 300, 4, 2, 64, 11);
  AttentionParams p = with(AttentionMode::delta, 40, 5, 16);
  GpuResult plain = run(in, p);
  DeviceTensor q = to_device(in.host_q, DType::bf16, true), k = to_device(in.host_k, DType::bf16, true),
               v = to_device(in.host_v, DType::bf16, true);
  GpuResult strided = run_gpu(q.view, k.view, v.view, p, DType::f32, /*heads_major_out=*/true);
  EXPECT_LT(test::relative_l2(strided.out, plain.out), kTolerance);
  EXPECT_LT(test::relative_l2(strided.lse, plain.lse), kTolerance);
}

TEST(CudaInvariants, WithoutLseTheOutputIsTheSame) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(1, 250, 250, 2, 1, 64, 12);
  AttentionParams p = with(AttentionMode::delta, 40, 5, 16);
  GpuResult with_lse = run(in, p);
  DeviceTensor out = poisoned_device(in.q.view.shape, DType::f32, false);
  p.backend = Backend::cuda;
  delta_attention(in.q.view, in.k.view, in.v.view, out.view, p);
  EXPECT_LT(test::relative_l2(to_host(out), with_lse.out), kTolerance);
}

// Runs the operator and returns the error message (empty if it did not throw dattn::Error).
std::string error_of(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                     AttentionParams p = {}) {
  p.backend = Backend::cuda;
  try {
    delta_attention(q, k, v, out, p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CudaErrors, Fp32InputsAreRejectedNamingTheDtype) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(1, 64, 64, 2, 1, 64, 13, DType::f32);
  DeviceTensor out = poisoned_device(in.q.view.shape, DType::f32, false);
  EXPECT_THAT(error_of(in.q.view, in.k.view, in.v.view, out.view), ::testing::HasSubstr("got fp32"));
}

TEST(CudaErrors, UnsupportedHeadDimIsRejected) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(1, 64, 64, 2, 1, 96, 14);
  DeviceTensor out = poisoned_device(in.q.view.shape, DType::f32, false);
  EXPECT_THAT(error_of(in.q.view, in.k.view, in.v.view, out.view), ::testing::HasSubstr("head_dim 64 and 128, got 96"));
}

TEST(CudaErrors, NonContiguousHeadDimIsRejected) {
  DATTN_SKIP_WITHOUT_GPU();
  Inputs in = make_inputs(1, 64, 64, 2, 1, 128, 15);
  TensorView q = in.q.view;  // every other element of each row: head_dim 64 with stride 2
  q.shape[3] = 64;
  q.stride[3] = 2;
  TensorView k = in.k.view, v = in.v.view;
  k.shape[3] = v.shape[3] = 64;
  DeviceTensor out = poisoned_device(q.shape, DType::f32, false);
  EXPECT_THAT(error_of(q, k, v, out.view), ::testing::HasSubstr("stride[3] == 1"));
}

}  // namespace
}  // namespace dattn
