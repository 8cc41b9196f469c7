// Argument checking and backend dispatch for the Delta Attention operator.
#include "dattn/delta/delta_attention.h"

#include <cmath>

#include "dattn/core/error.h"
#include "dattn/core/finite.h"
#include "unchecked_backends.h"

namespace dattn {

Backend resolve_backend(Backend requested, Device device) {
  if (requested != Backend::automatic) return requested;
  return device == Device::cuda ? Backend::cuda : Backend::cpu;
}

namespace {

void check_view(const TensorView& t, const char* name) {
  DATTN_CHECK(t.data != nullptr, "{} has no data (null pointer)", name);
  for (int i = 0; i < 4; ++i) {
    DATTN_CHECK(t.shape[i] > 0, "{} dimension {} is {} (must be positive); {} is {}", name, i, t.shape[i], name,
                t.describe());
    DATTN_CHECK(t.stride[i] >= 0, "{} stride {} is {} (must be non-negative)", name, i, t.stride[i]);
  }
}

void check_arguments(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                     const TensorView* lse, const AttentionParams& p) {
  check_view(q, "q");
  check_view(k, "k");
  check_view(v, "v");
  check_view(out, "out");
  DATTN_CHECK(k.shape == v.shape, "k {} and v {} must have the same shape", k.describe(), v.describe());
  DATTN_CHECK(out.shape == q.shape, "out {} must have q's shape {}", out.describe(), q.describe());
  DATTN_CHECK(k.shape[0] == q.shape[0], "batch of k ({}) differs from batch of q ({})", k.shape[0], q.shape[0]);
  DATTN_CHECK(k.shape[3] == q.shape[3], "head_dim of k ({}) differs from head_dim of q ({})", k.shape[3],
              q.shape[3]);
  DATTN_CHECK(q.shape[2] % k.shape[2] == 0, "query heads ({}) must be a multiple of kv heads ({})", q.shape[2],
              k.shape[2]);
  DATTN_CHECK(k.shape[1] >= q.shape[1], "n_kv ({}) must be at least n_q ({}): query rows sit at the end of the keys",
              k.shape[1], q.shape[1]);
  DATTN_CHECK(q.dtype == k.dtype && k.dtype == v.dtype, "q, k, v dtypes differ ({}, {}, {})", dtype_name(q.dtype),
              dtype_name(k.dtype), dtype_name(v.dtype));
  DATTN_CHECK(q.device == k.device && k.device == v.device && v.device == out.device,
              "tensors are on different devices (q {}, k {}, v {}, out {})", device_name(q.device),
              device_name(k.device), device_name(v.device), device_name(out.device));
  if (lse) {
    check_view(*lse, "lse");
    DATTN_CHECK(lse->dtype == DType::f32, "lse must be fp32, got {}", dtype_name(lse->dtype));
    DATTN_CHECK(lse->shape[0] == q.shape[0] && lse->shape[1] == q.shape[2] && lse->shape[2] == q.shape[1] &&
                    lse->shape[3] == 1,
                "lse shape [{},{},{},{}] must be [batch={}, h_q={}, n_q={}, 1]", lse->shape[0], lse->shape[1],
                lse->shape[2], lse->shape[3], q.shape[0], q.shape[2], q.shape[1]);
    DATTN_CHECK(lse->device == q.device, "lse is on {} but q is on {}", device_name(lse->device),
                device_name(q.device));
  }
  validate_attention_params(p);
}

void dispatch(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
              const TensorView& lse, const AttentionParams& params) {
  Backend backend = resolve_backend(params.backend, q.device);
  switch (backend) {
    case Backend::reference:
    case Backend::cpu:
      DATTN_CHECK(q.device == Device::cpu, "backend '{}' needs tensors on cpu, got {}", backend_name(backend),
                  device_name(q.device));
      if (!params.skip_finite_check) {
        check_finite(q, "q", params.num_threads);
        check_finite(k, "k", params.num_threads);
        check_finite(v, "v", params.num_threads);
      }
      if (backend == Backend::reference)
        reference::attention(q, k, v, out, lse, params);
      else
        cpu::attention(q, k, v, out, lse, params);
      return;
    case Backend::cuda:
      DATTN_CHECK(q.device == Device::cuda, "backend 'cuda' needs tensors on cuda, got {}", device_name(q.device));
      cuda::attention(q, k, v, out, lse, params);
      return;
    case Backend::automatic: break;
  }
  fail("unknown backend value {}", int(backend));
}

}  // namespace

void delta_attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                     const AttentionParams& params) {
  check_arguments(q, k, v, out, nullptr, params);
  dispatch(q, k, v, out, TensorView{}, params);
}

void delta_attention_lse(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                         const TensorView& lse, const AttentionParams& params) {
  check_arguments(q, k, v, out, &lse, params);
  dispatch(q, k, v, out, lse, params);
}

}  // namespace dattn
