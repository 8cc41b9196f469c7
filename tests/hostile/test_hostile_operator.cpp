// Hostile input to the operator and to the output writer: parameters near INT64_MAX, out-of-range scales
// and thread counts, NaN / Inf inputs, and outputs that are links, devices, read-protected or the same file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "dattn/core/error.h"
#include "dattn/core/finite.h"
#include "dattn/core/output_files.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
const AttentionMode kModes[] = {AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute,
                                AttentionMode::delta};
const Backend kHostBackends[] = {Backend::reference, Backend::cpu};

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HostileRowPlan, SaturatesInsteadOfWrapping) {
  AttentionParams p;
  for (int64_t n_q : {1, 2, 63, 64, 1000}) {
    p.gamma = kMax;  // tail_min defaults to gamma: the sum n_q mod gamma + tail_min would wrap
    RowPlan plan = make_row_plan(n_q, p);
    EXPECT_EQ(plan.tail, n_q);
    EXPECT_EQ(plan.sparse_rows, 0);
    EXPECT_EQ(plan.num_anchors(), 0);
    p = {};
    p.tail_min = kMax;
    plan = make_row_plan(n_q, p);
    EXPECT_EQ(plan.tail, n_q);
    p.tail_min = kMax - 5;
    EXPECT_EQ(make_row_plan(n_q, p).tail, n_q);
    p = {};
  }
  // an ordinary plan is unchanged: 1000 mod 64 + 128 = 168 dense rows
  EXPECT_EQ(make_row_plan(1000, p).tail, 168);
  EXPECT_EQ(saturating_add(kMax, kMax), kMax);
  EXPECT_EQ(saturating_add(3, 4), 7);
}

// Every mode with window, sink, gamma or tail_min at or near INT64_MAX on each host backend: every element
// of out and LSE is written (the views start as NaN) and equals dense (huge gamma / tail_min make every
// row dense, a huge window makes every sparse row dense).
TEST(HostileParameters, ExtremeValuesGiveDenseAndWriteEveryElement) {
  // 260 rows: with the default gamma 64 and tail_min 128 the plan has 128 sparse rows, so only the extreme
  // values make every row dense
  std::mt19937 rng(11);
  const Tensor q = test::random_tensor({1, 260, 2, 16}, DType::f32, rng), k = test::random_tensor({1, 260, 1, 16}, DType::f32, rng),
               v = test::random_tensor({1, 260, 1, 16}, DType::f32, rng);
  Tensor dense({1, 260, 2, 16}, DType::f32), dense_lse({1, 2, 260, 1}, DType::f32);
  AttentionParams reference;
  reference.mode = AttentionMode::dense;
  reference.backend = Backend::reference;
  delta_attention_lse(q, k, v, dense, dense_lse, reference);

  for (Backend backend : kHostBackends)
    for (AttentionMode mode : kModes)
      for (int which = 0; which < 4; ++which) {
        AttentionParams p;
        p.mode = mode;
        p.backend = backend;
        p.num_threads = 1;  // the tiles are the same with any count; one thread stays fast on a loaded machine
        if (which == 0) p.gamma = kMax;
        if (which == 1) p.tail_min = kMax - 1;
        if (which == 2) p.window = kMax, p.sink = kMax;
        if (which == 3) p.window = kMax, p.sink = 0, p.gamma = kMax - 2, p.tail_min = kMax;
        if (mode == AttentionMode::sparse && which < 2) continue;  // gamma / tail_min do not apply to sparse
        Tensor out({1, 260, 2, 16}, DType::f32), lse({1, 2, 260, 1}, DType::f32);
        test::poison(out);
        test::poison(lse);
        delta_attention_lse(q, k, v, out, lse, p);
        SCOPED_TRACE(fmt::format("{} {} case {}", backend_name(backend), mode_name(mode), which));
        // fp32 accumulation against the fp64 reference
        EXPECT_LE(test::max_abs_diff(out, dense), 1e-5);
        EXPECT_LE(test::max_abs_diff(lse, dense_lse), 1e-5);
      }
}

TEST(HostileParameters, OutOfRangeValuesNameTheFieldAndRange) {
  std::mt19937 rng(1);
  const Tensor q = test::random_tensor({1, 8, 2, 16}, DType::f32, rng);
  Tensor out({1, 8, 2, 16}, DType::f32);
  auto message = [&](AttentionParams p) { return error_of([&] { delta_attention(q, q, q, out, p); }); };
  AttentionParams p;
  p.scale = 1e38;  // finite as a double, infinite once multiplied by log2(e) in fp32
  EXPECT_NE(message(p).find("scale must be finite and positive (0 = 1/sqrt(d)), at most 1e+30, got 1e+38"),
            std::string::npos)
      << message(p);
  p = {};
  p.num_threads = std::numeric_limits<int>::max();
  EXPECT_NE(message(p).find("num_threads must be in 0 .. 4096"), std::string::npos) << message(p);
  p = {};
  p.gamma = std::numeric_limits<int64_t>::min();
  EXPECT_NE(message(p).find("gamma must be >= 1"), std::string::npos) << message(p);
  p = {};
  p.scale = kMaxAttentionScale;  // the largest allowed scale still computes (every row finite)
  p.backend = Backend::cpu;
  EXPECT_NO_THROW(delta_attention(q, q, q, out, p));
}

TEST(HostileThreads, EnvironmentThreadCountIsChecked) {
  for (const char* bad : {"2147483648", "0", "-3", "12abc", "99999999999999999999"}) {
    ASSERT_EQ(setenv("DATTN_NUM_THREADS", bad, 1), 0);
    const std::string m = error_of([] { default_num_threads(); });
    EXPECT_NE(m.find(fmt::format("DATTN_NUM_THREADS='{}' is not a thread count (allowed: 1 .. 4096)", bad)),
              std::string::npos)
        << m;
  }
  ASSERT_EQ(setenv("DATTN_NUM_THREADS", "3", 1), 0);
  EXPECT_EQ(default_num_threads(), 3);
  unsetenv("DATTN_NUM_THREADS");
}

// One behaviour everywhere: a NaN or Inf anywhere in q, k or v is refused with its index, whichever row
// would read it (here a key no sparse row sees), on every host backend, mode and dtype.
TEST(HostileNonFinite, RefusedOnEveryHostBackendModeAndDtype) {
  std::mt19937 rng(5);
  const char* names[] = {"q", "k", "v"};
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    Tensor t[3] = {test::random_tensor({1, 40, 4, 16}, dtype, rng), test::random_tensor({1, 40, 2, 16}, dtype, rng),
                   test::random_tensor({1, 40, 2, 16}, dtype, rng)};
    Tensor out({1, 40, 4, 16}, dtype);
    for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
      for (int tensor = 0; tensor < 3; ++tensor) {
        const float good = t[tensor].view().get(0, 20, 1, 7);
        t[tensor].view().set(0, 20, 1, 7, bad);
        for (Backend backend : kHostBackends)
          for (AttentionMode mode : kModes) {
            AttentionParams p = test::with(mode, 4, 2, 4);
            p.backend = backend;
            p.num_threads = 1;
            const std::string m = error_of([&] { delta_attention(t[0], t[1], t[2], out, p); });
            EXPECT_NE(m.find(fmt::format("{} holds a non-finite value", names[tensor])), std::string::npos) << m;
            EXPECT_NE(m.find("at [0, 20, 1, 7]"), std::string::npos) << m;
          }
        t[tensor].view().set(0, 20, 1, 7, good);
      }
  }
}

TEST(HostileNonFinite, FindsTheFirstInStridedViews) {
  std::mt19937 rng(2);
  const Tensor t = test::random_tensor({2, 30, 3, 8}, DType::f32, rng);
  const test::Placed heads_major = test::place(t, DType::f32, Device::cpu, test::Layout::heads_major);
  EXPECT_FALSE(find_non_finite(heads_major.view).has_value());
  heads_major.view.set(1, 17, 2, 5, std::nanf(""));
  heads_major.view.set(1, 29, 0, 0, std::numeric_limits<float>::infinity());
  const auto bad = find_non_finite(heads_major.view, 2);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(*bad, (std::array<int64_t, 4>{1, 17, 2, 5}));
  std::vector<float> flat(100, 1.0f);
  EXPECT_EQ(find_non_finite(flat.data(), flat.size()), -1);
  flat[63] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(find_non_finite(flat.data(), flat.size()), 63);
}

// ---- OutputFiles

struct Scratch {
  fs::path dir = fs::temp_directory_path() / fmt::format("dattn_hostile_{}", ::getpid());
  Scratch() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  void write(const fs::path& p, const std::string& text) const { std::ofstream(p, std::ios::binary) << text; }
  std::string read(const fs::path& p) const {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  size_t entries() const { return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator())); }
};

TEST(HostileOutputs, SymlinkIsWrittenThroughAndModeIsKept) {
  Scratch s;
  s.write(s.dir / "target", "old");
  ::chmod((s.dir / "target").c_str(), 0600);
  fs::create_symlink("target", s.dir / "link");
  OutputFiles files;
  files.add("--out", s.dir / "link");
  files.stage(s.dir / "link", {"new ", "content"});
  EXPECT_EQ(s.read(s.dir / "target"), "old");  // nothing changes before commit
  files.commit();
  EXPECT_TRUE(fs::is_symlink(s.dir / "link"));
  EXPECT_EQ(s.read(s.dir / "target"), "new content");
  struct stat st {};
  ASSERT_EQ(::stat((s.dir / "target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(s.entries(), 2u);  // no temporary left behind
}

TEST(HostileOutputs, DanglingSymlinkCreatesItsTarget) {
  Scratch s;
  fs::create_symlink("made", s.dir / "link");
  OutputFiles files;
  files.add("--out", s.dir / "link");
  files.stage(s.dir / "link", {"x"});
  files.commit();
  EXPECT_TRUE(fs::is_symlink(s.dir / "link"));
  EXPECT_EQ(s.read(s.dir / "made"), "x");
}

TEST(HostileOutputs, DeviceIsWrittenDirectlyNotReplaced) {
  OutputFiles files;
  files.add("--out", "/dev/null");
  files.stage("/dev/null", {"discarded"});
  files.commit();
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST(HostileOutputs, SameFileThroughLinksIsRefused) {
  Scratch s;
  s.write(s.dir / "a", "a");
  fs::create_symlink("a", s.dir / "sym");
  fs::create_hard_link(s.dir / "a", s.dir / "hard");
  for (const char* other : {"a", "sym", "hard", "./a"}) {
    OutputFiles files;
    files.add("--out", s.dir / "a");
    const std::string m = error_of([&] { files.add("--lse", s.dir / other); });
    EXPECT_NE(m.find("name the same file"), std::string::npos) << other << ": " << m;
  }
}

TEST(HostileOutputs, BadPathsAreRefusedBeforeAnyWrite) {
  Scratch s;
  OutputFiles files;
  EXPECT_NE(error_of([&] { files.add("--out", s.dir / "missing" / "x"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { files.add("--out", s.dir); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { files.add("--out", ""); }).find("empty"), std::string::npos);
}

TEST(HostileOutputs, NothingChangesUnlessEveryOutputIsWritten) {
  Scratch s;
  s.write(s.dir / "out", "keep out");
  s.write(s.dir / "lse", "keep lse");
  {
    OutputFiles files;
    files.add("--out", s.dir / "out");
    files.add("--lse", s.dir / "lse");
    files.stage(s.dir / "out", {"new"});
    // the command fails before staging --lse: commit refuses, and the destructor removes the temporary
    EXPECT_NE(error_of([&] { files.commit(); }).find("never written"), std::string::npos);
  }
  EXPECT_EQ(s.read(s.dir / "out"), "keep out");
  EXPECT_EQ(s.read(s.dir / "lse"), "keep lse");
  EXPECT_EQ(s.entries(), 2u);
}

TEST(HostileOutputs, NewFilesGetTheUmaskMode) {
  Scratch s;
  const mode_t old_mask = ::umask(027);
  OutputFiles files;
  files.add("--out", s.dir / "fresh");
  files.stage(s.dir / "fresh", {"x"});
  files.commit();
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::stat((s.dir / "fresh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

}  // namespace
}  // namespace dattn
