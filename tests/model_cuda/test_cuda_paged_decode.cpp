// The decode kernel over a paged pool (a batch of sequences, each through its block table) against the
// CPU's paged_decode_attention on the same bf16-representable K/V and queries.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cuda_model_fixtures.h"
#include "dattn/model/paged_kv.h"
#include "decode_attention.h"
#include "test_support.h"

namespace dattn::model::cuda_test {
namespace {

// The kernel rounds its output to bf16 (2^-9 relative, ~1e-3 in L2) and sums in another order than the
// CPU's fp32 loop; both read identical inputs.
constexpr double kPagedDecodeBudget = 4e-3;

template <typename T>
T* device_copy(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<T*>(p);
}

TEST(PagedDecodeKernel, MatchesTheCpuPagedDecode) {
  DATTN_SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  for (const int head_dim : {64, 128}) {
    const int heads_q = 8, heads_kv = 2, block_tokens = 16, num_blocks = 160;
    // lengths across block and split (512-key) boundaries; blocks handed out shuffled
    const std::vector<int64_t> lengths{1, 37, 600, 1100, 16};
    std::vector<int32_t> order(num_blocks);
    for (int i = 0; i < num_blocks; ++i) order[size_t(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    const int max_blocks = int((1100 + block_tokens - 1) / block_tokens);
    std::vector<int32_t> tables(lengths.size() * size_t(max_blocks), 0);
    std::vector<std::vector<int32_t>> host_tables;
    size_t next = 0;
    for (size_t s = 0; s < lengths.size(); ++s) {
      host_tables.emplace_back();
      for (int64_t b = 0; b < (lengths[s] + block_tokens - 1) / block_tokens; ++b) {
        tables[s * size_t(max_blocks) + size_t(b)] = order[next];
        host_tables.back().push_back(order[next++]);
      }
    }
    ASSERT_LE(next, size_t(num_blocks));

    const int64_t pool_rows = int64_t(num_blocks) * block_tokens;
    Tensor k = test::random_tensor({1, pool_rows, heads_kv, head_dim}, DType::bf16, rng);
    Tensor v = test::random_tensor({1, pool_rows, heads_kv, head_dim}, DType::bf16, rng);
    Tensor q = test::random_tensor({1, int64_t(lengths.size()), heads_q, head_dim}, DType::bf16, rng);
    Tensor k32 = Tensor::copy_of(k, DType::f32, Device::cpu), v32 = Tensor::copy_of(v, DType::f32, Device::cpu);
    Tensor q32 = Tensor::copy_of(q, DType::f32, Device::cpu);
    PagedKvCache cache(1, num_blocks, block_tokens, heads_kv, head_dim);
    const int64_t width = int64_t(heads_kv) * head_dim;
    for (int b = 0; b < num_blocks; ++b)
      for (int r = 0; r < block_tokens; ++r) {
        const int64_t row = int64_t(b) * block_tokens + r;
        std::memcpy(cache.k_row(0, b, r), static_cast<const float*>(k32.data()) + row * width, size_t(width) * 4);
        std::memcpy(cache.v_row(0, b, r), static_cast<const float*>(v32.data()) + row * width, size_t(width) * 4);
      }
    std::vector<float> expected(lengths.size() * size_t(heads_q * head_dim));
    std::vector<std::span<const int32_t>> spans(host_tables.begin(), host_tables.end());
    const double scale = 1.0 / std::sqrt(double(head_dim));
    paged_decode_attention(cache, 0, {static_cast<const float*>(q32.data()), expected.data(), spans, lengths, heads_q,
                                      scale, 0});

    Tensor k_dev = Tensor::copy_of(k, DType::bf16, Device::cuda), v_dev = Tensor::copy_of(v, DType::bf16, Device::cuda);
    Tensor q_dev = Tensor::copy_of(q, DType::bf16, Device::cuda);
    Tensor out_dev({1, int64_t(lengths.size()), heads_q, head_dim}, DType::bf16, Device::cuda);
    Tensor partials({1, 1, 1, cuda_detail::decode_partials_floats(1100, heads_q, head_dim, int(lengths.size()))},
                    DType::f32, Device::cuda);
    int32_t* tables_dev = device_copy(tables);
    int64_t* lengths_dev = device_copy(lengths);
    cuda_detail::DecodeAttentionArgs args{static_cast<const uint16_t*>(q_dev.data()),
                                          static_cast<const uint16_t*>(k_dev.data()),
                                          static_cast<const uint16_t*>(v_dev.data()),
                                          static_cast<uint16_t*>(out_dev.data()),
                                          1100, heads_q, heads_kv, head_dim, float(scale),
                                          static_cast<float*>(partials.data())};
    args.num_seqs = int(lengths.size());
    args.block_tables = tables_dev;
    args.seq_lengths = lengths_dev;
    args.max_blocks = max_blocks;
    args.block_tokens = block_tokens;
    cuda_detail::decode_attention(args, nullptr);
    device_synchronize();
    Tensor out = Tensor::copy_of(out_dev, DType::f32, Device::cpu);
    const int64_t per_seq = int64_t(heads_q) * head_dim;
    for (size_t s = 0; s < lengths.size(); ++s) {
      double diff = 0, norm = 0;
      for (int64_t i = 0; i < per_seq; ++i) {
        const double a = static_cast<const float*>(out.data())[int64_t(s) * per_seq + i];
        const double b = expected[s * size_t(per_seq) + size_t(i)];
        diff += (a - b) * (a - b);
        norm += b * b;
      }
      EXPECT_LE(std::sqrt(diff / norm), kPagedDecodeBudget) << "head_dim " << head_dim << " sequence " << s;
    }
    cudaFree(tables_dev);
    cudaFree(lengths_dev);
  }
}

}  // namespace
}  // namespace dattn::model::cuda_test
