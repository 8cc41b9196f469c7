// One list of attention test cases, run on every backend (like ggml's test-backend-ops): invariants a
// backend must satisfy against itself, and parity cases against the fp64 reference. Each backend states
// its tolerances (and why) once, in backend_cases.cpp; refusal() is the one place that says which calls a
// backend refuses, and a case that makes such a call checks that it is refused with that message.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <ostream>
#include <optional>
#include <string>
#include <vector>

#include "dattn/attn/params.h"
#include "test_support.h"

namespace dattn::test {

struct Tolerances {
  double identity;        // relative L2 between two results of this backend that an invariant says are equal
  double output_f32;      // relative L2 of an fp32 output against the reference on the same rounded inputs
  double output_reduced;  // the same for a bf16/fp16 output
  double lse;             // max abs of the LSE against the reference
  double anchor_gap;      // abs, per head, of the anchor gap's mean and max against the reference's
};

struct TestBackend {
  const char* name;
  Backend backend;
  Device device;
  DType native_dtype;  // the input type of cases that do not name one
  Tolerances tolerances;
};
extern const TestBackend kReferenceBackend, kCpuBackend, kCudaBackend;

// What decides whether a backend computes a call.
struct CallFacts {
  AttentionParams params;
  DType dtype;
  int64_t head_dim;
  bool head_dim_contiguous;  // stride[3] == 1 in q, k, v and out
};
// The error message (a part of it) with which `backend` refuses the call, or nullopt when it computes it.
std::optional<std::string> refusal(Backend backend, const CallFacts& call);

struct Shape {
  int64_t batch = 1, n_q = 300, n_kv = 300, h_q = 4, h_kv = 2, d = 64;
};

// Random inputs: host values rounded to `dtype` (what the reference reads) and their copies placed on the
// backend's device, contiguous.
struct Inputs {
  DType dtype;
  Tensor q, k, v;
  Placed dq, dk, dv;
};

struct Output {
  DType dtype = DType::f32;
  Layout layout = Layout::contiguous;
  bool lse = true;  // false: delta_attention without the LSE (result lse left empty)
};

struct Result {
  Tensor out, lse;  // fp32 host copies: (b, s, h, d) and (b, h, s, 1)
};

// Thrown by CaseRunner::run after it has checked that the backend refuses a call; ends the case.
struct Refused {
  std::string why;
};

class CaseRunner {
 public:
  explicit CaseRunner(const TestBackend& backend) : backend_(backend) {}
  const TestBackend& backend() const { return backend_; }
  double identity() const { return backend_.tolerances.identity; }

  Inputs inputs(const Shape& shape, uint32_t seed, std::optional<DType> dtype = {}) const;
  Placed place(const TensorView& values, DType dtype, Layout layout = Layout::contiguous) const;
  // Runs the backend (params.backend is set here) into a NaN-poisoned output. A call refusal() names is
  // checked to throw that message instead, and the case ends (Refused).
  Result run(const TensorView& q, const TensorView& k, const TensorView& v, AttentionParams params,
             const Output& output = {}) const;
  Result run(const Inputs& in, const AttentionParams& params, const Output& output = {}) const {
    return run(in.dq.view, in.dk.view, in.dv.view, params, output);
  }

 private:
  const TestBackend& backend_;
};

// One call compared with the fp64 reference: output, LSE and (delta, where the backend reports it) the
// anchor gap, each within the backend's tolerance; block top-k's fp32 selection must equal the fp64 one.
struct ParityCall {
  Shape shape{1, 200, 200, 4, 1, 64};
  AttentionParams params;      // mode, pattern and sizes; backend and anchor_gap are set by the check
  std::optional<DType> dtype;  // unset: the backend's native input type
  DType out_dtype = DType::f32;
  Layout layout = Layout::contiguous;  // of q, k, v and out
};
void check_parity(const CaseRunner& runner, const ParityCall& call, uint32_t seed);
CallFacts facts_of(const CaseRunner& runner, const ParityCall& call);

enum class CaseKind { invariant, parity };  // parity cases compare with the reference: not run on it
enum class CaseSpeed { fast, slow };        // slow: seconds each; the ctest label `slow` on the host backends

struct BackendCase {
  std::string name;
  CaseKind kind;
  CaseSpeed speed;
  std::function<void(const CaseRunner&)> run;
};
const std::vector<BackendCase>& invariant_cases();
const std::vector<BackendCase>& parity_cases();

// The cases a test binary instantiates for a backend, and their gtest names.
struct BackendCaseParam {
  const TestBackend* backend;
  const BackendCase* test_case;
};
std::vector<BackendCaseParam> cases_for(const TestBackend& backend, std::initializer_list<CaseSpeed> speeds);
std::string case_name(const ::testing::TestParamInfo<BackendCaseParam>& info);
void PrintTo(const BackendCaseParam& param, std::ostream* os);
// Runs one case; a checked refusal passes and is reported on stdout.
void run_backend_case(const BackendCaseParam& param);

}  // namespace dattn::test
