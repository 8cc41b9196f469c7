#include "dattn/model/paged_kv.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <new>

#include "dattn/core/error.h"
#include "dattn/core/threads.h"

namespace dattn::model {

PagedKvCache::PagedKvCache(int64_t layers, int64_t num_blocks, int64_t block_tokens, int64_t kv_heads,
                           int64_t head_dim, bool shared_layers)
    : layers_(layers), num_blocks_(num_blocks), block_tokens_(block_tokens), kv_heads_(kv_heads), head_dim_(head_dim) {
  DATTN_CHECK(layers >= 1 && num_blocks >= 1 && block_tokens >= 1 && kv_heads >= 1 && head_dim >= 1,
              "KV cache: bad shape (layers {}, blocks {}, block tokens {}, kv heads {}, head dim {})", layers,
              num_blocks, block_tokens, kv_heads, head_dim);
  DATTN_CHECK(num_blocks <= (int64_t(1) << 31) - 1, "KV cache: {} blocks is too many", num_blocks);
  layer_stride_ = shared_layers ? 0 : num_blocks * block_tokens * row_floats();
  const double gib = double(bytes()) / double(1ull << 30);
  DATTN_CHECK(gib < 1e6, "KV cache of {:.1f} GiB is too large", gib);
  const size_t elems = size_t(shared_layers ? 1 : layers) * size_t(num_blocks * block_tokens * row_floats());
  try {  // left uninitialised: pages nobody touches cost no memory
    k_ = std::make_unique_for_overwrite<float[]>(elems);
    v_ = std::make_unique_for_overwrite<float[]>(elems);
  } catch (const std::bad_alloc&) {
    fail("cannot allocate a KV cache of {:.2f} GiB ({} blocks of {} tokens)", gib, num_blocks, block_tokens);
  }
}

uint64_t PagedKvCache::bytes() const {
  const uint64_t per_layer = uint64_t(num_blocks_) * uint64_t(block_tokens_) * uint64_t(row_floats()) * 4ull;
  return 2ull * per_layer * uint64_t(layer_stride_ == 0 ? 1 : layers_);
}

void PagedKvCache::write(int64_t layer, std::span<const int32_t> table, int64_t position, int64_t rows, const float* k,
                         const float* v) {
  const int64_t width = row_floats();
  DATTN_CHECK(position + rows <= int64_t(table.size()) * block_tokens_,
              "KV cache: positions up to {} do not fit {} blocks of {} tokens", position + rows, table.size(),
              block_tokens_);
  for (int64_t done = 0; done < rows;) {
    const int64_t t = position + done, row = t % block_tokens_;
    const int64_t n = std::min(rows - done, block_tokens_ - row);
    const int32_t block = table[size_t(t / block_tokens_)];
    std::memcpy(k_row(layer, block, row), k + done * width, size_t(n * width) * sizeof(float));
    std::memcpy(v_row(layer, block, row), v + done * width, size_t(n * width) * sizeof(float));
    done += n;
  }
}

std::pair<TensorView, TensorView> PagedKvCache::view(int64_t layer, std::span<const int32_t> table, int64_t n_kv,
                                                     std::vector<float>& scratch) const {
  const int64_t width = row_floats(), blocks = (n_kv + block_tokens_ - 1) / block_tokens_;
  DATTN_CHECK(blocks <= int64_t(table.size()), "KV cache: {} positions need {} blocks, the table has {}", n_kv, blocks,
              table.size());
  bool consecutive = true;
  for (int64_t b = 1; b < blocks && consecutive; ++b) consecutive = table[size_t(b)] == table[0] + b;
  const float *k = nullptr, *v = nullptr;
  if (consecutive) {
    k = k_row(layer, table[0], 0);
    v = v_row(layer, table[0], 0);
  } else {
    scratch.resize(size_t(2 * n_kv * width));
    float* k_out = scratch.data();
    float* v_out = k_out + n_kv * width;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t n = std::min(block_tokens_, n_kv - b * block_tokens_);
      std::memcpy(k_out + b * block_tokens_ * width, k_row(layer, table[size_t(b)], 0), size_t(n * width) * 4);
      std::memcpy(v_out + b * block_tokens_ * width, v_row(layer, table[size_t(b)], 0), size_t(n * width) * 4);
    }
    k = k_out;
    v = v_out;
  }
  const std::array<int64_t, 4> shape{1, n_kv, kv_heads_, head_dim_}, strides{n_kv * width, width, head_dim_, 1};
  return {TensorView{const_cast<float*>(k), DType::f32, Device::cpu, shape, strides},
          TensorView{const_cast<float*>(v), DType::f32, Device::cpu, shape, strides}};
}

void paged_decode_attention(const PagedKvCache& cache, int64_t layer, const PagedDecodeArgs& a) {
  const int64_t n_seq = int64_t(a.tables.size()), d = cache.head_dim(), hkv = cache.kv_heads(), hq = a.heads_q;
  DATTN_CHECK(int64_t(a.lengths.size()) == n_seq, "paged decode: {} tables but {} lengths", n_seq, a.lengths.size());
  DATTN_CHECK(hq >= hkv && hq % hkv == 0, "paged decode: {} query heads on {} kv heads", hq, hkv);
  const int64_t group = hq / hkv, bt = cache.block_tokens();
  const float scale = float(a.scale);
  parallel_for(n_seq * hq, a.num_threads, [&](int64_t item, int) {
    const int64_t s = item / hq, h = item % hq, kv_head = h / group, n = a.lengths[size_t(s)];
    const std::span<const int32_t> table = a.tables[size_t(s)];
    DATTN_CHECK(n >= 1 && (n + bt - 1) / bt <= int64_t(table.size()),
                "paged decode: sequence {} has {} positions and {} blocks of {}", s, n, table.size(), bt);
    const float* q = a.q + (s * hq + h) * d;
    thread_local std::vector<float> scores;
    scores.resize(size_t(n));
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      const float* k = cache.k_row(layer, table[size_t(j / bt)], j % bt) + kv_head * d;
      float dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += q[i] * k[i];
      scores[size_t(j)] = dot * scale;
      max_score = std::max(max_score, scores[size_t(j)]);
    }
    float* out = a.out + (s * hq + h) * d;
    std::fill(out, out + d, 0.0f);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float p = std::exp(scores[size_t(j)] - max_score);
      sum += p;
      const float* v = cache.v_row(layer, table[size_t(j / bt)], j % bt) + kv_head * d;
      for (int64_t i = 0; i < d; ++i) out[i] += p * v[i];
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < d; ++i) out[i] *= inv;
  });
}

}  // namespace dattn::model
