// The backends under test (tolerances and why), what each refuses, the runner and the parity check.
#include "backend_cases.h"

#include <fmt/format.h>

#include <cstdio>

#include "dattn/attn/key_pattern.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"

namespace dattn::test {

// fp64 accumulation: identities hold to ~1e-12 before the fp32 store, so 1e-6 (fp32 output rounding is
// ~6e-8 per element). Parity cases compare other backends with it and do not run on it.
const TestBackend kReferenceBackend{"reference", Backend::reference, Device::cpu, DType::f32,
                                    {.identity = 1e-6, .output_f32 = 0, .output_reduced = 0, .lse = 0,
                                     .anchor_gap = 0}};

// fp32 accumulation in another order (online softmax, blocked dot products) plus the exp2 polynomial
// (~1e-7 relative); bf16/fp16 inputs are widened exactly, so the reference reads the same values:
//  - identity and fp32 output 1e-5: < 6e-7 is observed; a wrong mask or a missing key gives > 1e-3.
//  - bf16/fp16 output 1e-2: rounding the result alone costs up to 2^-9 relative per element (observed < 2e-3).
//  - LSE 2e-5 absolute: fp32 values of O(log n) (~5); observed < 2e-6 over the parity cases.
//  - anchor gap 1e-4 absolute: a ratio of norms of fp32 vectors carrying ~1e-6 error; gaps are O(0.1..1), so
//    ~1e-5 is expected and a wrong anchor or a missing term gives > 1e-2.
const TestBackend kCpuBackend{"cpu", Backend::cpu, Device::cpu, DType::f32,
                              {.identity = 1e-5, .output_f32 = 1e-5, .output_reduced = 1e-2, .lse = 2e-5,
                               .anchor_gap = 1e-4}};

// Tensor-core kernels, fp32 accumulation:
//  - identity 1e-5: kernels that visit the same keys in the same order agree bitwise (a masked key adds
//    exactly zero and leaves the running max alone); 1e-5 absorbs delta's fp32 sparse + (dense - sparse).
//  - output 1e-2 relative L2: the softmax weights P are rounded to the input type (2^-9 relative for bf16)
//    before P·V, and a bf16 output adds another 2^-9; over a row these average to a few 1e-3.
//  - LSE 1e-3 absolute: fp32 scores of the same rounded inputs; ex2.approx / lg2.approx and the summation
//    order are the only differences.
//  - anchor gap 2e-2 absolute: output errors of up to 1e-2 relative enter its numerator directly (gaps
//    are ~0.3-1 on these inputs; test_cuda_block_topk bounds it by 2e-2 relative).
const TestBackend kCudaBackend{"cuda", Backend::cuda, Device::cuda, DType::bf16,
                               {.identity = 1e-5, .output_f32 = 1e-2, .output_reduced = 1e-2, .lse = 1e-3,
                                .anchor_gap = 2e-2}};

std::optional<std::string> refusal(Backend backend, const CallFacts& call) {
  if (backend != Backend::cuda) return std::nullopt;  // the host backends compute every valid call
  const AttentionParams& p = call.params;
  const bool delta = p.mode == AttentionMode::delta;
  // Limits of the kernels' design, in the order the backend checks them.
  if (call.dtype != DType::bf16 && call.dtype != DType::f16)
    return fmt::format("supports bf16 and fp16 inputs, got {}", dtype_name(call.dtype));
  if (call.head_dim != 64 && call.head_dim != 128)
    return fmt::format("supports head_dim 64 and 128, got {}", call.head_dim);
  if (!call.head_dim_contiguous) return "must have head_dim contiguous (stride[3] == 1)";
  // Block top-k: 64-key units, at most 128 selected blocks, Δ formed inside one 64-row tile, no interpolation.
  if (p.mode != AttentionMode::dense && p.pattern == KeyPattern::block_topk) {
    if (p.block_q % 64 != 0) return fmt::format("block_q to be a multiple of 64, got {}", p.block_q);
    if (p.block_k % 64 != 0) return fmt::format("block_k to be a multiple of 64, got {}", p.block_k);
    if (p.topk > 128) return fmt::format("at most topk = 128 blocks, got {}", p.topk);
    if (delta && 64 % p.gamma != 0) return fmt::format("gamma dividing 64, got gamma = {}", p.gamma);
    if (delta && p.delta_variant == DeltaVariant::interpolate) return "repeat only, got interpolate";
  }
  return std::nullopt;
}

Inputs CaseRunner::inputs(const Shape& s, uint32_t seed, std::optional<DType> dtype) const {
  std::mt19937 rng(seed);
  Inputs in;
  in.dtype = dtype.value_or(backend_.native_dtype);
  in.q = random_tensor({s.batch, s.n_q, s.h_q, s.d}, in.dtype, rng);
  in.k = random_tensor({s.batch, s.n_kv, s.h_kv, s.d}, in.dtype, rng);
  in.v = random_tensor({s.batch, s.n_kv, s.h_kv, s.d}, in.dtype, rng);
  in.dq = place(in.q, in.dtype);
  in.dk = place(in.k, in.dtype);
  in.dv = place(in.v, in.dtype);
  return in;
}

Placed CaseRunner::place(const TensorView& values, DType dtype, Layout layout) const {
  return test::place(values, dtype, backend_.device, layout);
}

Result CaseRunner::run(const TensorView& q, const TensorView& k, const TensorView& v, AttentionParams params,
                       const Output& output) const {
  params.backend = backend_.backend;
  if (backend_.device == Device::cpu) params.num_threads = 2;
  const Placed out = poisoned(q.shape, output.dtype, backend_.device, output.layout);
  const Placed lse = poisoned({q.shape[0], q.shape[2], q.shape[1], 1}, DType::f32, backend_.device);
  auto call = [&] {
    if (output.lse)
      delta_attention_lse(q, k, v, out.view, lse.view, params);
    else
      delta_attention(q, k, v, out.view, params);
  };
  const bool contiguous = q.stride[3] == 1 && k.stride[3] == 1 && v.stride[3] == 1 && out.view.stride[3] == 1;
  if (const auto why = refusal(backend_.backend, {params, q.dtype, q.shape[3], contiguous})) {
    try {
      call();
      ADD_FAILURE() << backend_.name << " computed a call that refusal() says it refuses (\"" << *why
                    << "\"); if it implements that now, delete its line in refusal()";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(*why), std::string::npos) << "expected \"" << *why << "\" in: " << e.what();
    }
    throw Refused{*why};
  }
  call();
  Result r;
  r.out = fetch(out);
  if (output.lse) r.lse = fetch(lse);
  return r;
}

static std::string describe(const ParityCall& c, DType dtype) {
  const Shape& s = c.shape;
  const AttentionParams& p = c.params;
  return fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} {} {} bq{} bk{} k{} {} w{} s{} g{} tail_min{} {}->{} {}", s.batch,
                     s.n_q, s.n_kv, s.h_q, s.h_kv, s.d, mode_name(p.mode), pattern_name(p.pattern), p.block_q,
                     p.block_k, p.topk, delta_variant_name(p.delta_variant), p.window, p.sink, p.gamma, p.tail_min,
                     dtype_name(dtype), dtype_name(c.out_dtype), layout_name(c.layout));
}

CallFacts facts_of(const CaseRunner& runner, const ParityCall& c) {
  return {c.params, c.dtype.value_or(runner.backend().native_dtype), c.shape.d, c.layout != Layout::strided_dim};
}

void check_parity(const CaseRunner& runner, const ParityCall& c, uint32_t seed) {
  const DType dtype = c.dtype.value_or(runner.backend().native_dtype);
  SCOPED_TRACE(describe(c, dtype));
  const Shape& s = c.shape;
  std::mt19937 rng(seed);
  // host values rounded to the input type, so the reference and the backend read the same numbers
  const Tensor q = random_tensor({s.batch, s.n_q, s.h_q, s.d}, dtype, rng);
  const Tensor k = random_tensor({s.batch, s.n_kv, s.h_kv, s.d}, dtype, rng);
  const Tensor v = random_tensor({s.batch, s.n_kv, s.h_kv, s.d}, dtype, rng);
  const Placed hq = place(q, dtype, Device::cpu, c.layout), hk = place(k, dtype, Device::cpu, c.layout),
               hv = place(v, dtype, Device::cpu, c.layout);
  AttentionParams p = c.params;
  // a tie of block scores within fp32 rounding would select other blocks: fail here, not in the comparison
  if (p.pattern == KeyPattern::block_topk && p.mode != AttentionMode::dense) {
    ASSERT_EQ(select_key_blocks(hq.view, hk.view, p, /*fp64=*/false, 2),
              select_key_blocks(hq.view, hk.view, p, /*fp64=*/true, 1));
  }

  AnchorGap expected_gap, gap;
  p.backend = Backend::reference;
  p.anchor_gap = &expected_gap;
  Tensor expected({s.batch, s.n_q, s.h_q, s.d}, DType::f32), expected_lse({s.batch, s.h_q, s.n_q, 1}, DType::f32);
  delta_attention_lse(hq.view, hk.view, hv.view, expected, expected_lse, p);

  p.anchor_gap = &gap;
  CallFacts facts = facts_of(runner, c);
  facts.params.anchor_gap = &gap;
  if (refusal(runner.backend().backend, facts)) p.anchor_gap = nullptr;  // compared where the backend reports it
  const Placed dq = runner.place(q, dtype, c.layout), dk = runner.place(k, dtype, c.layout),
               dv = runner.place(v, dtype, c.layout);
  const Result r = runner.run(dq.view, dk.view, dv.view, p, {.dtype = c.out_dtype, .layout = c.layout});

  const Tolerances& t = runner.backend().tolerances;
  if (p.anchor_gap) {
    EXPECT_EQ(gap.anchors, expected_gap.anchors);
    EXPECT_EQ(gap.mean.size(), expected_gap.mean.size());
    for (size_t i = 0; i < std::min(gap.mean.size(), expected_gap.mean.size()); ++i) {
      EXPECT_NEAR(gap.mean[i], expected_gap.mean[i], t.anchor_gap) << "head " << i;
      EXPECT_NEAR(gap.max[i], expected_gap.max[i], t.anchor_gap) << "head " << i;
    }
  }
  // NaN (an element left unwritten) fails these too
  EXPECT_LE(relative_l2(r.out, expected), c.out_dtype == DType::f32 ? t.output_f32 : t.output_reduced);
  EXPECT_LE(max_abs_diff(r.lse, expected_lse), t.lse);
}

std::vector<BackendCaseParam> cases_for(const TestBackend& backend, std::initializer_list<CaseSpeed> speeds) {
  std::vector<BackendCaseParam> params;
  for (const auto* list : {&invariant_cases(), &parity_cases()})
    for (const BackendCase& c : *list) {
      const bool compares_with_itself = c.kind == CaseKind::parity && backend.backend == Backend::reference;
      if (!compares_with_itself && std::find(speeds.begin(), speeds.end(), c.speed) != speeds.end())
        params.push_back({&backend, &c});
    }
  return params;
}

std::string case_name(const ::testing::TestParamInfo<BackendCaseParam>& info) { return info.param.test_case->name; }

void PrintTo(const BackendCaseParam& param, std::ostream* os) {
  *os << param.backend->name << " " << param.test_case->name;
}

void run_backend_case(const BackendCaseParam& param) {
  const CaseRunner runner(*param.backend);
  try {
    param.test_case->run(runner);
  } catch (const Refused& refused) {
    if (!::testing::Test::HasFailure())
      std::printf("[ REFUSED  ] %s refuses %s as expected: \"%s\"\n", param.backend->name,
                  param.test_case->name.c_str(), refused.why.c_str());
  }
}

}  // namespace dattn::test
