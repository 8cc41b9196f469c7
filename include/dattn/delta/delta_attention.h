// The public operator: checks every argument, then dispatches to the backend.
#pragma once
#include "dattn/attn/params.h"

namespace dattn {

// q: (batch, n_q, h_q, d); k, v: (batch, n_kv, h_kv, d); out: like q. Throws dattn::Error on bad input.
void delta_attention(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                     const AttentionParams& params = {});

// Also writes the natural-log LSE per row and head into lse: fp32 (batch, h_q, n_q) viewed as
// shape {batch, h_q, n_q, 1}. A delta-corrected row reports its sparse LSE, a tail row its dense LSE.
void delta_attention_lse(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                         const TensorView& lse, const AttentionParams& params = {});

// The backend Backend::automatic resolves to for tensors on this device.
Backend resolve_backend(Backend requested, Device device);

}  // namespace dattn
