// The .npy reader: round trips, every malformed header rejected, and a randomised corruption sweep
// (bounded, fixed seed) that may only ever produce a parsed array or a dattn::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "dattn/core/error.h"
#include "dattn/io/npy.h"

namespace dattn {
namespace {

std::vector<uint8_t> npy_bytes(const std::string& header_dict, size_t payload_bytes, uint8_t version = 1) {
  std::string header = header_dict;
  size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', version, 0};
  size_t len = header.size();
  bytes.push_back(uint8_t(len & 0xff));
  bytes.push_back(uint8_t(len >> 8));
  if (version != 1) {
    bytes.push_back(0);
    bytes.push_back(0);
  }
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (size_t i = 0; i < payload_bytes; ++i) bytes.push_back(uint8_t(i * 7));
  return bytes;
}

TEST(Npy, ParsesWhatNumpyWrites) {
  auto bytes = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  npy::Array a = npy::parse(bytes.data(), bytes.size());
  EXPECT_EQ(a.type, npy::ElementType::f32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  bytes = npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }", 10, 2);
  a = npy::parse(bytes.data(), bytes.size());
  EXPECT_EQ(a.type, npy::ElementType::f16);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{5}));
  bytes = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4);
  EXPECT_EQ(npy::parse(bytes.data(), bytes.size()).numel(), 1);
}

TEST(Npy, SaveLoadRoundTripAndAtomicWrite) {
  auto dir = std::filesystem::temp_directory_path() / "dattn_npy_test";
  std::filesystem::create_directories(dir);
  std::vector<float> values = {1, -2, 3.5f, 4, 5, 6};
  npy::save_f32(dir / "a.npy", {1, 2, 3}, values.data());
  npy::Array a = npy::load(dir / "a.npy");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(std::memcmp(a.bytes.data(), values.data(), 24), 0);
  npy::save_f32(dir / "b.npy", {6}, values.data());
  EXPECT_EQ(npy::load(dir / "b.npy").shape, (std::vector<int64_t>{6}));
  // a failed write leaves nothing behind
  EXPECT_THROW(npy::save_f32(dir / "missing_dir" / "c.npy", {6}, values.data()), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "missing_dir"));
  for (auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  std::filesystem::remove_all(dir);
}

void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  try {
    npy::parse(bytes.data(), bytes.size(), "x.npy");
    ADD_FAILURE() << "accepted; expected an error mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Npy, RejectsMalformedFiles) {
  expect_rejected({1, 2, 3}, "too short");
  expect_rejected(std::vector<uint8_t>(64, 'x'), "bad magic");
  expect_rejected(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16), "unsupported dtype '<f8'");
  expect_rejected(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), "'>f4'");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8), "Fortran");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8), "needs 12 bytes");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 8), "malformed");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8),
                  "too large");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2), }", 8),
                  "has more than 1099511627776 elements");
  expect_rejected(npy_bytes("{'descr': '<f4', 'shape': (2,), }", 8), "lacks");
  expect_rejected(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8), "unknown key");
  expect_rejected(npy_bytes("{'descr': '<f4, 'fortran_order': False}", 8), "malformed");
  auto bytes = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  bytes[8] = 0xff;  // header length past the end
  expect_rejected(bytes, "runs past the end");
  bytes[6] = 7;
  expect_rejected(bytes, "version 7");
}

TEST(Npy, RandomCorruptionNeverCrashes) {
  const auto good = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 96);
  std::mt19937 rng(20261128);
  int parsed = 0, rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::vector<uint8_t> bytes = good;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: bytes[rng() % bytes.size()] = uint8_t(rng()); break;                     // flip a byte
        case 1: bytes.resize(rng() % (bytes.size() + 1)); break;                         // truncate
        case 2: bytes.insert(bytes.begin() + long(rng() % (bytes.size() + 1)), uint8_t(rng())); break;
        case 3: if (!bytes.empty()) bytes.erase(bytes.begin() + long(rng() % bytes.size())); break;
      }
      if (bytes.empty()) break;
    }
    try {
      npy::Array a = npy::parse(bytes.data(), bytes.size());
      EXPECT_EQ(a.bytes.size(), size_t(a.numel()) * (a.type == npy::ElementType::f32 ? 4 : a.type == npy::ElementType::i64 ? 8 : a.type == npy::ElementType::i32 ? 4 : 2));
      ++parsed;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(parsed, 10);  // e.g. edits inside the payload or padding keep the file valid
}

}  // namespace
}  // namespace dattn
