#include "dattn/core/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dattn/core/error.h"

namespace dattn {
namespace {

const char* kind_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

bool allowed(mode_t mode, InputKind kind) {
  if (S_ISREG(mode)) return true;
  return kind == InputKind::file_or_pipe && (S_ISFIFO(mode) || S_ISSOCK(mode));
}

[[noreturn]] void refuse(const std::filesystem::path& path, mode_t mode, InputKind kind) {
  fail("'{}' is {}; expected {}", path.string(), kind_name(mode),
       kind == InputKind::regular_file ? "a regular file" : "a regular file or a pipe");
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  // exact: a limit and a size just above it must not print alike
  for (const auto& [unit, name] : {std::pair{uint64_t{1} << 30, "GiB"}, {uint64_t{1} << 20, "MiB"}, {uint64_t{1} << 10, "KiB"}}) {
    if (bytes >= unit && bytes % unit == 0) return fmt::format("{} {}", bytes / unit, name);
  }
  return fmt::format("{} bytes", bytes);
}

InputFile::InputFile(const std::filesystem::path& path, InputKind kind) : path_(path) {
  // stat first: a directory or device is refused without opening it, and a FIFO where a file is
  // expected is refused before open() could block waiting for a writer.
  struct stat st {};
  DATTN_CHECK(::stat(path.c_str(), &st) == 0, "cannot open '{}': {}", path.string(), std::strerror(errno));
  if (!allowed(st.st_mode, kind)) refuse(path, st.st_mode, kind);
  const int flags = O_RDONLY | O_CLOEXEC | (kind == InputKind::regular_file ? O_NONBLOCK : 0);
  fd_ = ::open(path.c_str(), flags);
  DATTN_CHECK(fd_ >= 0, "cannot open '{}': {}", path.string(), std::strerror(errno));
  // the path may have changed between stat and open: judge what was opened
  if (::fstat(fd_, &st) != 0 || !allowed(st.st_mode, kind)) {
    ::close(fd_);
    fd_ = -1;
    refuse(path, st.st_mode, kind);
  }
  regular_ = S_ISREG(st.st_mode);
  size_ = regular_ ? uint64_t(st.st_size) : 0;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t InputFile::read_some(void* dst, size_t n) {
  for (;;) {
    const ssize_t got = ::read(fd_, dst, n);
    if (got >= 0) return size_t(got);
    if (errno != EINTR) fail("cannot read '{}': {}", path_.string(), std::strerror(errno));
  }
}

void InputFile::read_exact(void* dst, size_t n, const char* what) {
  auto* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const size_t got = read_some(out + done, n - done);
    DATTN_CHECK(got > 0, "'{}' ends after {} of the {} bytes of its {} (truncated?)", path_.string(), done, n, what);
    done += got;
  }
}

std::string InputFile::read_rest(uint64_t max_bytes) {
  DATTN_CHECK(!regular_ || size_ <= max_bytes, "'{}' is {}, more than the {} this input may hold", path_.string(),
              format_bytes(size_), format_bytes(max_bytes));
  std::string text;
  if (regular_) text.reserve(size_t(size_));
  char chunk[1 << 16];
  for (;;) {
    const size_t got = read_some(chunk, sizeof chunk);
    if (got == 0) return text;
    DATTN_CHECK(text.size() + got <= max_bytes, "'{}' holds more than the {} this input may hold", path_.string(),
                format_bytes(max_bytes));
    text.append(chunk, got);
  }
}

}  // namespace dattn
