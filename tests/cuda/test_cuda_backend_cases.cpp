// The backend case list (tests/support/backend_cases.h) on the cuda backend: its invariants (GPU against
// GPU), its parity with the fp64 reference, and, for what refusal() says it does not compute, that it
// refuses by name. Tolerances: backend_cases.cpp.
#include "backend_cases.h"
#include "dattn/attn/backends.h"

namespace dattn::test {
namespace {

class CudaBackendCases : public ::testing::TestWithParam<BackendCaseParam> {};

TEST_P(CudaBackendCases, Run) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device present: cuda backend tests skipped";
  run_backend_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaBackendCases,
                         ::testing::ValuesIn(cases_for(kCudaBackend, {CaseSpeed::fast, CaseSpeed::slow})), case_name);

}  // namespace
}  // namespace dattn::test
