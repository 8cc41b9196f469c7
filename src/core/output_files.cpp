#include "dattn/core/output_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "dattn/core/error.h"

namespace dattn {
namespace fs = std::filesystem;
namespace {

// The file a path finally names: symbolic links followed one by one (also dangling ones, whose target
// is then created), then made absolute without touching the rest.
fs::path resolve_links(const fs::path& path, const std::string& flag) {
  fs::path current = fs::absolute(path);
  for (int hops = 0;; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(current, ec))) break;
    DATTN_CHECK(hops < 40, "{} '{}': too many levels of symbolic links", flag, path.string());
    fs::path next = fs::read_symlink(current, ec);
    DATTN_CHECK(!ec, "{} '{}': cannot read the symbolic link: {}", flag, path.string(), ec.message());
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  return fs::weakly_canonical(current);
}

void write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    DATTN_CHECK(n > 0, "cannot write '{}': {}", path.string(), std::strerror(errno));
    bytes.remove_prefix(size_t(n));
  }
}

mode_t new_file_mode() {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

OutputFiles::~OutputFiles() {
  for (const Output& o : outputs_)
    if (!o.temporary.empty()) ::unlink(o.temporary.c_str());
}

void OutputFiles::add(const std::string& flag, const fs::path& path) {
  DATTN_CHECK(!path.empty(), "{}: the output path is empty", flag);
  Output o{flag, path, resolve_links(path, flag), {}, false, {}, false};
  struct stat target_stat {};
  const bool exists = ::stat(o.target.c_str(), &target_stat) == 0;
  if (exists) {
    DATTN_CHECK(!S_ISDIR(target_stat.st_mode), "{} '{}' is a directory; give a file name", flag, path.string());
    DATTN_CHECK(::access(o.target.c_str(), W_OK) == 0, "{} '{}' exists and cannot be written: {}", flag,
                path.string(), std::strerror(errno));
    o.special = !S_ISREG(target_stat.st_mode);
  }
  const fs::path folder = o.target.parent_path();
  struct stat folder_stat {};
  DATTN_CHECK(::stat(folder.c_str(), &folder_stat) == 0 && S_ISDIR(folder_stat.st_mode),
              "{} '{}': the folder '{}' does not exist", flag, path.string(), folder.string());
  DATTN_CHECK(o.special || ::access(folder.c_str(), W_OK | X_OK) == 0, "{} '{}': the folder '{}' is not writable",
              flag, path.string(), folder.string());
  for (const Output& other : outputs_) {
    bool same = other.target == o.target;
    struct stat other_stat {};
    if (!same && exists && ::stat(other.target.c_str(), &other_stat) == 0)
      same = other_stat.st_dev == target_stat.st_dev && other_stat.st_ino == target_stat.st_ino;
    DATTN_CHECK(!same, "{} '{}' and {} '{}' name the same file; give each output its own path", other.flag,
                other.given.string(), flag, path.string());
  }
  outputs_.push_back(std::move(o));
}

OutputFiles::Output& OutputFiles::find(const fs::path& path) {
  for (Output& o : outputs_)
    if (o.given == path) return o;
  fail("internal error: output '{}' was not registered", path.string());
}

void OutputFiles::stage(const fs::path& path, std::initializer_list<std::string_view> pieces) {
  Output& o = find(path);
  if (o.special) {
    o.held.clear();
    for (std::string_view piece : pieces) o.held += piece;
    o.staged = true;
    return;
  }
  if (o.temporary.empty()) {
    std::random_device random;
    for (int attempt = 0; attempt < 100 && o.temporary.empty(); ++attempt) {
      const fs::path candidate =
          o.target.parent_path() / fmt::format(".{}.dattn-{:08x}", o.target.filename().string(), random());
      const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::close(fd);
        o.temporary = candidate;
      } else {
        DATTN_CHECK(errno == EEXIST, "{} '{}': cannot create a temporary file in '{}': {}", o.flag, o.given.string(),
                    o.target.parent_path().string(), std::strerror(errno));
      }
    }
    DATTN_CHECK(!o.temporary.empty(), "{} '{}': cannot find a free temporary name", o.flag, o.given.string());
  }
  const int fd = ::open(o.temporary.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  DATTN_CHECK(fd >= 0, "cannot open '{}': {}", o.temporary.string(), std::strerror(errno));
  try {
    for (std::string_view piece : pieces) write_all(fd, piece, o.given);
    // the replaced file's permission bits (a 600 file stays 600), else what a new file would get
    struct stat existing {};
    const mode_t mode = ::stat(o.target.c_str(), &existing) == 0 ? (existing.st_mode & 07777) : new_file_mode();
    DATTN_CHECK(::fchmod(fd, mode) == 0, "cannot set the permissions of '{}': {}", o.temporary.string(),
                std::strerror(errno));
  } catch (...) {
    ::close(fd);
    throw;
  }
  DATTN_CHECK(::close(fd) == 0, "cannot write '{}': {}", o.given.string(), std::strerror(errno));
  o.staged = true;
}

void OutputFiles::commit() {
  for (const Output& o : outputs_)
    DATTN_CHECK(o.staged, "internal error: output {} '{}' was never written", o.flag, o.given.string());
  for (Output& o : outputs_) {
    if (o.special) {
      const int fd = ::open(o.target.c_str(), O_WRONLY | O_CLOEXEC);
      DATTN_CHECK(fd >= 0, "{} '{}': cannot open for writing: {}", o.flag, o.given.string(), std::strerror(errno));
      try {
        write_all(fd, o.held, o.given);
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
      continue;
    }
    DATTN_CHECK(::rename(o.temporary.c_str(), o.target.c_str()) == 0, "{}: cannot move the output into place at '{}': {}",
                o.flag, o.target.string(), std::strerror(errno));
    o.temporary.clear();
  }
}

}  // namespace dattn
