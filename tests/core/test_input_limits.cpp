// Checked size arithmetic, message excerpts and bounded file reads: the core pieces every parser of user
// files relies on (config.json, safetensors, .npy, tokenizer files, prompts).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>

#include "dattn/core/checked.h"
#include "dattn/core/error.h"
#include "dattn/core/text_file.h"

namespace dattn {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Checked, ArithmeticReportsOverflow) {
  EXPECT_EQ(checked_mul<int64_t>(3, 4), 12);
  EXPECT_EQ(checked_mul<int64_t>(int64_t{1} << 62, 2), std::nullopt);
  EXPECT_EQ(checked_mul<uint64_t>(uint64_t{1} << 63, 2), std::nullopt);
  EXPECT_EQ(checked_add<int64_t>(std::numeric_limits<int64_t>::max(), 1), std::nullopt);
  EXPECT_EQ(checked_add<uint32_t>(1, 2), 3u);
}

TEST(Checked, SizesNameTheFieldTheValueAndTheBound) {
  EXPECT_EQ(require_in_range(5, 1, 10, "x"), 5);
  EXPECT_EQ(error_of([] { require_in_range(1000000000, 1, 4096, "config.json: num_hidden_layers"); }),
            "config.json: num_hidden_layers is 1000000000 (must be in [1, 4096])");
  EXPECT_EQ(checked_product(64, 128, 1 << 24, "heads x head_dim"), 8192);
  // 4 x (2^62 + 16) wraps around to 64 in int64: refused, not wrapped
  EXPECT_NE(error_of([] { checked_product(4, (int64_t{1} << 62) + 16, int64_t{1} << 24, "q width"); })
                .find("q width: 4 x 4611686018427387920 exceeds"),
            std::string::npos);
  const std::vector<int64_t> shape{2, 3, 4};
  EXPECT_EQ(checked_numel(shape, 100, "t"), 24);
  EXPECT_EQ(checked_byte_size(shape, 4, 96, "t"), 96u);
  EXPECT_NE(error_of([&] { checked_byte_size(shape, 4, 95, "t"); }).find("exceeds 95 bytes"), std::string::npos);
  const std::vector<int64_t> wrapping{int64_t{1} << 32, int64_t{1} << 32, 16};  // 2^68 elements
  EXPECT_NE(error_of([&] { checked_numel(wrapping, int64_t{1} << 40, "t"); }).find("more than"), std::string::npos);
  const std::vector<int64_t> negative{2, -1};
  EXPECT_NE(error_of([&] { checked_numel(negative, 100, "t"); }).find("negative"), std::string::npos);
}

TEST(Excerpt, CutsLongTextAtACharacterBoundary) {
  EXPECT_EQ(excerpt("short"), "short");
  const std::string long_text(50 << 20, 'x');
  const std::string cut = excerpt(long_text);
  EXPECT_LT(cut.size(), 120u);
  EXPECT_NE(cut.find("(52428800 bytes)"), std::string::npos);
  // "é" is two bytes: a cut inside it backs off to the character start
  EXPECT_EQ(excerpt("aé", 2), "a... (3 bytes)");
}

struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("dattn_input_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() { fs::remove_all(path); }
};

TEST(InputFile, RefusesDirectoriesAndDevicesByName) {
  ScratchDir dir;
  EXPECT_NE(error_of([&] { read_text_file(dir.path); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([] { read_text_file("/dev/zero"); }).find("'/dev/zero' is a character device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_text_file(dir.path / "missing.txt"); }).find("No such file"), std::string::npos);
}

TEST(InputFile, RefusesAFifoWhereAFileIsNeededWithoutBlocking) {
  ScratchDir dir;
  const fs::path fifo = dir.path / "config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // no writer ever opens it: an open() would block forever
  EXPECT_NE(error_of([&] { InputFile(fifo, InputKind::regular_file); }).find("is a FIFO; expected a regular file"),
            std::string::npos);
}

TEST(InputFile, ReadsAPipeUpToItsCap) {
  ScratchDir dir;
  const fs::path fifo = dir.path / "prompt.txt";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // an endless writer: the read stops at the cap (1 MiB here) instead of exhausting memory
  std::signal(SIGPIPE, SIG_IGN);  // the writer's write after our close fails instead of killing the test
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    const std::string block(1 << 16, 'a');
    for (int i = 0; i < 64 && out.good(); ++i) out.write(block.data(), std::streamsize(block.size()));
  });
  const std::string message = error_of([&] { read_text_file(fifo, 1 << 20); });
  writer.join();  // our end closed: the writer's next write fails and it stops
  EXPECT_NE(message.find("holds more than the 1 MiB this input may hold"), std::string::npos) << message;
}

TEST(InputFile, RefusesARegularFileAboveItsCapBeforeReading) {
  ScratchDir dir;
  const fs::path path = dir.path / "big.txt";
  std::ofstream(path) << std::string(4096, 'x');
  EXPECT_EQ(read_text_file(path, 4096).size(), 4096u);
  EXPECT_NE(error_of([&] { read_text_file(path, 4095); }).find("is 4 KiB, more than the 4095 bytes this input may hold"),
            std::string::npos);
}

}  // namespace
}  // namespace dattn
