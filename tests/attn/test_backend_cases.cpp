// The backend case list (tests/support/backend_cases.h) on the host backends: invariants on the reference
// and the cpu backend, parity of the cpu backend with the reference. Tolerances: backend_cases.cpp.
#include "backend_cases.h"

namespace dattn::test {
namespace {

class BackendCases : public ::testing::TestWithParam<BackendCaseParam> {};

TEST_P(BackendCases, Run) { run_backend_case(GetParam()); }

#ifndef DATTN_BACKEND_CASES_SLOW
INSTANTIATE_TEST_SUITE_P(Reference, BackendCases, ::testing::ValuesIn(cases_for(kReferenceBackend, {CaseSpeed::fast})),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Cpu, BackendCases, ::testing::ValuesIn(cases_for(kCpuBackend, {CaseSpeed::fast})), case_name);
#else
INSTANTIATE_TEST_SUITE_P(Cpu, BackendCases, ::testing::ValuesIn(cases_for(kCpuBackend, {CaseSpeed::slow})), case_name);
#endif

}  // namespace
}  // namespace dattn::test
