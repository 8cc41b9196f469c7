// The anchor gap's reduction shared by the backends that measure per-anchor gaps (cpu, cuda): mean and max
// over the anchors of every (batch, head). Private to the attn layer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>

#include "dattn/attn/params.h"

namespace dattn {

// gaps: (heads, anchors) row-major, heads = batch * h_q.
inline AnchorGap reduce_anchor_gaps(std::span<const float> gaps, int64_t heads, int64_t anchors) {
  AnchorGap result{anchors, std::vector<float>(size_t(heads)), std::vector<float>(size_t(heads))};
  if (anchors == 0) return result;
  for (int64_t bh = 0; bh < heads; ++bh) {
    double sum = 0;
    float high = 0;
    for (int64_t j = 0; j < anchors; ++j) {
      sum += gaps[size_t(bh * anchors + j)];
      high = std::max(high, gaps[size_t(bh * anchors + j)]);
    }
    result.mean[size_t(bh)] = float(sum / double(anchors));
    result.max[size_t(bh)] = high;
  }
  return result;
}

}  // namespace dattn
