// The GGUF reader: dequantization block by block against gguf-py, every metadata type, and hostile or
// corrupt headers (each must end in a dattn::Error naming the problem, without a large allocation).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "dattn/core/dtype.h"
#include "dattn/core/error.h"
#include "dattn/io/gguf.h"

namespace dattn::io {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(DATTN_SOURCE_DIR) / "tests/fixtures/gguf";

// Appends GGUF fields little-endian, so a test can write any header, lying ones included.
struct Writer {
  std::vector<std::byte> bytes;
  template <typename T>
  Writer& put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  Writer& str(std::string_view s) {
    put<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes.insert(bytes.end(), p, p + s.size());
    return *this;
  }
  Writer& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return put<uint32_t>(0x46554747).put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  Writer& pad(size_t alignment = 32) {
    while (bytes.size() % alignment) bytes.push_back(std::byte{0});
    return *this;
  }
};

std::string error_of(const std::vector<std::byte>& bytes) {
  try {
    parse_gguf_header(bytes, "test.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufDequant, MatchesGgufPyBlockByBlock) {
  // Tolerance: exact. gguf-py and ggml compute each element as one or two fp32 products of the same
  // operands in the same order; a differing rounding would show as a 1-ulp mismatch here.
  const GgufFile file(kFixtures / "dequant.gguf");
  int checked = 0;
  for (const GgufTensorInfo& q : file.header().tensors) {
    if (!q.name.starts_with("q.")) continue;
    const GgufTensorInfo* expected = file.header().find_tensor("expected." + q.name.substr(2));
    ASSERT_NE(expected, nullptr) << q.name;
    ASSERT_EQ(expected->type, GgmlType::f32);
    ASSERT_EQ(q.numel, expected->numel);
    std::vector<float> want(size_t(q.numel)), got(size_t(q.numel));
    std::memcpy(want.data(), file.tensor_bytes(*expected).data(), want.size() * 4);
    dequantize_to_f32(q.type, file.tensor_bytes(q), q.numel, got.data());
    const int64_t block = ggml_block_elements(q.type);
    for (int64_t i = 0; i < q.numel; ++i)
      ASSERT_EQ(got[size_t(i)], want[size_t(i)]) << ggml_type_name(q.type) << " block " << i / block << " element "
                                                 << i % block;
    std::vector<uint16_t> bf16(size_t(q.numel));
    dequantize_to_bf16(q.type, file.tensor_bytes(q), q.numel, bf16.data());
    for (int64_t i = 0; i < q.numel; ++i) ASSERT_EQ(bf16[size_t(i)], f32_to_bf16(want[size_t(i)]));
    ++checked;
  }
  EXPECT_EQ(checked, 13);  // F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K..Q6_K
}

TEST(GgufDequant, RejectsWrongByteCounts) {
  std::vector<std::byte> block(34);
  std::vector<float> out(64);
  EXPECT_THROW(dequantize_to_f32(GgmlType::q8_0, block, 64, out.data()), Error);
  EXPECT_THROW(dequantize_to_f32(GgmlType::q8_0, block, 31, out.data()), Error);
  EXPECT_THROW(dequantize_to_f32(GgmlType::q8_1, block, 32, out.data()), Error);
}

TEST(GgufHeader, ReadsEveryMetadataType) {
  for (uint32_t version : {2u, 3u}) {
    Writer w;
    w.header(1, 15, version);
    w.str("u8").put<uint32_t>(0).put<uint8_t>(200);
    w.str("i8").put<uint32_t>(1).put<int8_t>(-5);
    w.str("u16").put<uint32_t>(2).put<uint16_t>(60000);
    w.str("i16").put<uint32_t>(3).put<int16_t>(-300);
    w.str("u32").put<uint32_t>(4).put<uint32_t>(4000000000u);
    w.str("i32").put<uint32_t>(5).put<int32_t>(-70000);
    w.str("f32").put<uint32_t>(6).put<float>(0.25f);
    w.str("bool").put<uint32_t>(7).put<uint8_t>(1);
    w.str("string").put<uint32_t>(8).str("héllo");
    w.str("u64").put<uint32_t>(10).put<uint64_t>(1ull << 40);
    w.str("i64").put<uint32_t>(11).put<int64_t>(-(1ll << 40));
    w.str("f64").put<uint32_t>(12).put<double>(1e-300);
    w.str("ints").put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(3).put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
    w.str("strings").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(2).str("a").str("bc");
    w.str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1).put<uint32_t>(6).put<uint64_t>(2)
        .put<float>(1.5f).put<float>(-2.0f);
    w.str("t").put<uint32_t>(2).put<uint64_t>(32).put<uint64_t>(2).put<uint32_t>(0).put<uint64_t>(0);
    w.pad();
    for (int i = 0; i < 64; ++i) w.put<float>(float(i));
    const GgufHeader h = parse_gguf_header(w.bytes);
    EXPECT_EQ(h.version, version);
    EXPECT_EQ(h.at("u8").as_int("u8"), 200);
    EXPECT_EQ(h.at("i8").as_int("i8"), -5);
    EXPECT_EQ(h.at("u16").as_int("u16"), 60000);
    EXPECT_EQ(h.at("i16").as_int("i16"), -300);
    EXPECT_EQ(h.at("u32").as_int("u32"), 4000000000ll);
    EXPECT_EQ(h.at("i32").as_int("i32"), -70000);
    EXPECT_EQ(h.at("f32").as_float("f32"), 0.25);
    EXPECT_TRUE(h.at("bool").as_bool("bool"));
    EXPECT_EQ(h.at("string").as_string("string"), "héllo");
    EXPECT_EQ(h.at("u64").as_int("u64"), 1ll << 40);
    EXPECT_EQ(h.at("i64").as_int("i64"), -(1ll << 40));
    EXPECT_EQ(h.at("f64").as_float("f64"), 1e-300);
    EXPECT_EQ(h.at("ints").as_ints("ints"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(h.at("strings").as_strings("strings"), (std::vector<std::string_view>{"a", "bc"}));
    EXPECT_EQ(h.at("nested").size(), 1u);
    EXPECT_THROW(h.at("string").as_int("string"), Error);
    EXPECT_THROW(h.at("ints").as_strings("ints"), Error);
    EXPECT_THROW(h.at("missing"), Error);
    ASSERT_EQ(h.tensors.size(), 1u);
    EXPECT_EQ(h.tensors[0].shape(), (std::vector<int64_t>{2, 32}));
    EXPECT_EQ(h.tensors[0].bytes, 256u);
    EXPECT_EQ(h.data_offset % 32, 0u);
  }
}

// One tensor "t" of the given dims / type / offset after an optional general.alignment.
std::vector<std::byte> one_tensor(std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data_bytes,
                                  std::optional<uint32_t> alignment = std::nullopt) {
  Writer w;
  w.header(1, alignment ? 1 : 0);
  if (alignment) w.str("general.alignment").put<uint32_t>(4).put<uint32_t>(*alignment);
  w.str("t").put<uint32_t>(uint32_t(dims.size()));
  for (uint64_t d : dims) w.put<uint64_t>(d);
  w.put<uint32_t>(type).put<uint64_t>(offset);
  w.pad(alignment.value_or(32));
  w.bytes.resize(w.bytes.size() + data_bytes);
  return std::move(w.bytes);
}

TEST(GgufHeader, HostileHeadersGiveClearErrors) {
  auto expect_error = [](const std::vector<std::byte>& bytes, std::string_view words) {
    const std::string e = error_of(bytes);
    EXPECT_NE(e.find(words), std::string::npos) << "got: '" << e << "', want: '" << words << "'";
  };
  expect_error(Writer().header(0, 0, 1).bytes, "version 1");
  expect_error(Writer().put<uint32_t>(0x12345678).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(0).bytes,
               "not a GGUF file");
  expect_error(Writer().header(0, ~0ull).bytes, "metadata entries cannot fit");
  expect_error(Writer().header(~0ull >> 1, 0).bytes, "tensor infos cannot fit");
  expect_error(Writer().header(0, 1).put<uint64_t>(~0ull).put<uint64_t>(0).put<uint64_t>(0).bytes,
               "needs 18446744073709551615 bytes");
  expect_error(Writer().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1ull << 62).bytes, "only 0 remain");
  expect_error(Writer().header(0, 1).str("k").put<uint32_t>(99).bytes, "unknown value type 99");
  // arrays: huge scalar counts overflow or run out; huge string counts are bounded before the loop
  expect_error(Writer().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(10).put<uint64_t>(~0ull >> 1).bytes,
               "overflows");
  expect_error(Writer().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1ull << 50).bytes,
               "claims 1125899906842624 elements");
  Writer deep;
  deep.header(0, 1).str("k").put<uint32_t>(9);  // an array of arrays of arrays ...
  for (int i = 0; i < 6; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);
  expect_error(deep.bytes, "nests arrays deeper");
  expect_error(Writer().header(0, 2).str("k").put<uint32_t>(0).put<uint8_t>(1).str("k").put<uint32_t>(0).put<uint8_t>(1)
                   .bytes,
               "appears twice");
  // tensors
  expect_error(one_tensor({32}, 0, 0, 64), "runs past the end");
  expect_error(one_tensor({32}, 0, 1ull << 60, 128), "runs past the end");
  expect_error(one_tensor({32}, 0, ~0ull & ~31ull, 128), "overflows");
  expect_error(one_tensor({32}, 0, 16, 256), "not a multiple of the alignment 32");
  expect_error(one_tensor({1ull << 32, 1ull << 32, 1ull << 32}, 0, 0, 0), "overflows");
  expect_error(one_tensor({0}, 0, 0, 0), "dimension 0 is 0");
  expect_error(one_tensor({1, 1, 1, 1, 1}, 0, 0, 4), "5 dimensions");
  expect_error(one_tensor({32}, 20, 0, 128), "ggml type 20");
  expect_error(one_tensor({48}, 8, 0, 256), "not whole Q8_0 blocks of 32");
  expect_error(one_tensor({32}, 0, 0, 128, 3), "not a power of two");
  EXPECT_EQ(error_of(one_tensor({32}, 0, 0, 128, 64)), "");
  Writer overlap;
  overlap.header(2, 0);
  overlap.str("a").put<uint32_t>(1).put<uint64_t>(32).put<uint32_t>(0).put<uint64_t>(0);
  overlap.str("b").put<uint32_t>(1).put<uint64_t>(32).put<uint32_t>(0).put<uint64_t>(64);
  overlap.pad();
  overlap.bytes.resize(overlap.bytes.size() + 256);
  expect_error(overlap.bytes, "overlap");
}

// Random corruptions of real fixture headers must parse or fail with dattn::Error (never crash).
TEST(GgufHeader, RandomCorruptionIsRejectedOrParsed) {
  std::ifstream in(kFixtures / "qwen2_bias_tied.Q8_0.gguf", std::ios::binary);
  std::vector<char> text((std::istreambuf_iterator<char>(in)), {});
  const std::vector<std::byte> original(reinterpret_cast<std::byte*>(text.data()),
                                        reinterpret_cast<std::byte*>(text.data()) + text.size());
  const size_t header_size = parse_gguf_header(original).data_offset;
  std::mt19937_64 rng(13);
  int parsed = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::byte> bytes = original;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % header_size;
      switch (rng() % 3) {
        case 0: bytes[at] = std::byte(rng()); break;
        case 1: bytes[at] ^= std::byte(1u << (rng() % 8)); break;
        default: std::memset(&bytes[at], 0xff, std::min<size_t>(8, bytes.size() - at));
      }
    }
    if (rng() % 8 == 0) bytes.resize(rng() % bytes.size());
    try {
      const GgufHeader h = parse_gguf_header(bytes);
      for (const GgufTensorInfo& t : h.tensors) ASSERT_LE(h.data_offset + t.offset + t.bytes, bytes.size());
      ++parsed;
    } catch (const Error&) {
      ++rejected;
    }
  }
  RecordProperty("parsed", parsed);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace dattn::io
