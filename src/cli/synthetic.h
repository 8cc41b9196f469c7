// Structured synthetic attention inputs: attention that looks like a language model's, not i.i.d. noise.
#pragma once
#include <cstdint>

#include "dattn/core/tensor.h"

namespace dattn::cli {

struct SyntheticInputs {
  Tensor q, k, v;  // (1, n, heads, d) and (1, n, kv_heads, d), fp32 on the host
};

// Queries and keys carry (a) a rotary positional signal so nearby keys score higher, (b) a few
// sink keys at the start that every query attends to, and (c) "needle" keys far back in the context
// whose value rows are distinct and which blocks of later queries look up. Sliding-window attention
// misses (c), which is the distribution shift Delta Attention corrects.
// Values: a shared mean plus a component that varies slowly along the sequence.
SyntheticInputs make_structured_inputs(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim, uint64_t seed);

}  // namespace dattn::cli
