// `dattn attention` end to end: .npy in, .npy out equal to the in-process operator; bad input gives
// a non-zero exit, a message, and no output file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "dattn/delta/delta_attention.h"
#include "dattn/io/npy.h"
#include "test_support.h"

namespace dattn {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code;
  std::string output;
};

CommandResult run_dattn(const std::string& args, const fs::path& dir) {
  fs::path log = dir / "log.txt";
  std::string command = std::string(DATTN_BINARY) + " " + args + " > " + log.string() + " 2>&1";
  int status = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {WEXITSTATUS(status), text.str()};
}

class CliAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dattn_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::mt19937 rng(3);
    q_ = test::random_tensor({2, 300, 4, 32}, DType::f32, rng);
    k_ = test::random_tensor({2, 300, 2, 32}, DType::f32, rng);
    v_ = test::random_tensor({2, 300, 2, 32}, DType::f32, rng);
    save(q_, "q.npy");
    save(k_, "k.npy");
    save(v_, "v.npy");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void save(const Tensor& t, const char* name) {
    const auto& s = t.view().shape;
    npy::save_f32(dir_ / name, {s[0], s[1], s[2], s[3]}, static_cast<const float*>(t.data()));
  }
  std::string inputs() const {
    return " --q " + (dir_ / "q.npy").string() + " --k " + (dir_ / "k.npy").string() + " --v " +
           (dir_ / "v.npy").string();
  }
  fs::path dir_;
  Tensor q_, k_, v_;
};

TEST_F(CliAttention, WritesTheOperatorsOutputAndLse) {
  auto r = run_dattn("attention" + inputs() + " --out " + (dir_ / "o.npy").string() + " --lse " +
                         (dir_ / "lse.npy").string() + " --mode delta --window 32 --sink 4 --gamma 16",
                     dir_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  npy::Array out = npy::load(dir_ / "o.npy"), lse = npy::load(dir_ / "lse.npy");
  ASSERT_EQ(out.shape, (std::vector<int64_t>{2, 300, 4, 32}));
  ASSERT_EQ(lse.shape, (std::vector<int64_t>{2, 4, 300}));
  Tensor expected({2, 300, 4, 32}, DType::f32), expected_lse({2, 4, 300, 1}, DType::f32);
  AttentionParams p;
  p.window = 32;
  p.sink = 4;
  p.gamma = 16;
  p.backend = Backend::reference;
  delta_attention_lse(q_, k_, v_, expected, expected_lse, p);
  TensorView got = expected.view();
  got.data = out.bytes.data();
  // 1e-5: the CLI runs the fp32 CPU kernel, compared here with the fp64 reference
  EXPECT_LT(test::relative_l2(got, expected), 1e-5);
  TensorView got_lse = expected_lse.view();
  got_lse.data = lse.bytes.data();
  EXPECT_LT(test::relative_l2(got_lse, expected_lse), 1e-5);
}

// The pattern, correction and variant flags reach the operator (--correction replaces --mode).
TEST_F(CliAttention, PatternCorrectionAndVariantFlagsReachTheOperator) {
  auto r = run_dattn("attention" + inputs() + " --out " + (dir_ / "o.npy").string() +
                         " --mode dense --correction delta --pattern block_topk --block-q 32 --block-k 16 --topk 2"
                         " --delta-variant interpolate --window 16 --sink 4 --gamma 16",
                     dir_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  npy::Array out = npy::load(dir_ / "o.npy");
  Tensor expected({2, 300, 4, 32}, DType::f32);
  AttentionParams p;
  p.pattern = KeyPattern::block_topk;
  p.block_q = 32;
  p.block_k = 16;
  p.topk = 2;
  p.delta_variant = DeltaVariant::interpolate;
  p.window = 16;
  p.sink = 4;
  p.gamma = 16;
  p.backend = Backend::reference;
  delta_attention(q_, k_, v_, expected, p);
  TensorView got = expected.view();
  got.data = out.bytes.data();
  EXPECT_LT(test::relative_l2(got, expected), 1e-5);  // fp32 CPU kernel vs the fp64 reference, as above

  r = run_dattn("attention" + inputs() + " --out " + (dir_ / "o2.npy").string() + " --pattern hip", dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown key pattern 'hip'"), std::string::npos) << r.output;
  r = run_dattn("attention" + inputs() + " --out " + (dir_ / "o2.npy").string() + " --correction sparse", dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown correction 'sparse'"), std::string::npos) << r.output;
}

TEST_F(CliAttention, BadInputsFailCleanlyWithoutOutput) {
  fs::path out = dir_ / "o.npy";
  {
    std::ofstream bad(dir_ / "bad.npy", std::ios::binary);
    bad << "\x93NUMPY garbage";
  }
  auto r = run_dattn("attention --q " + (dir_ / "bad.npy").string() + " --k " + (dir_ / "k.npy").string() +
                         " --v " + (dir_ / "v.npy").string() + " --out " + out.string(),
                     dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("bad.npy"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  r = run_dattn("attention" + inputs() + " --out " + out.string() + " --gamma 0", dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--gamma: '0' is not an integer in the allowed range 1 .."), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  r = run_dattn("attention --q " + (dir_ / "k.npy").string() + " --k " + (dir_ / "q.npy").string() + " --v " +
                    (dir_ / "q.npy").string() + " --out " + out.string(),
                dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("multiple of kv heads"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  r = run_dattn("attention" + inputs() + " --out " + out.string() + " --mode fastest", dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("'fastest'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliAttention, BenchPrintsATableAndWritesALatencyPlot) {
  fs::path svg = dir_ / "latency.svg";
  auto r = run_dattn("bench attention --lengths 256,512 --repeats 1 --heads 2 --kv-heads 1 --head-dim 32 --window 64 "
                     "--sink 16 --gamma 16 --anchor-gap --svg " + svg.string(),
                     dir_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* row : {"256 dense", "512 sparse", "512 delta", "512 delta+gap"})
    EXPECT_NE(r.output.find(row), std::string::npos) << r.output;
  std::ifstream in(svg);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().rfind("<svg", 0), 0u);
  for (const char* series : {">dense<", ">sparse<", ">delta<"}) EXPECT_NE(text.str().find(series), std::string::npos);
}

TEST_F(CliAttention, DemoShowsDeltaBeatingSparse) {
  auto r = run_dattn("demo-operator --length 2048 --window 256 --sink 64 --gamma 32", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Delta cuts the error"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dattn
