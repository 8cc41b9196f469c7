// Opening the files users name (model-directory files, .npy, prompts, texts) with their kind checked
// first, and bounded reads: /dev/zero, an endless FIFO or a directory ends in a dattn::Error naming the
// path instead of exhausting memory, blocking forever or reading as empty text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace dattn {

enum class InputKind : uint8_t {
  regular_file,  // a file or a link to one: model-directory files, .npy, safetensors
  file_or_pipe,  // also a FIFO or socket: `--prompt-file <(cmd)`, /dev/stdin fed by a pipe
};

// "4095 bytes", "256 MiB": exact sizes in messages.
std::string format_bytes(uint64_t bytes);

class InputFile {
 public:
  // Throws dattn::Error naming the path when it is missing, unreadable, a directory, a device, or (for
  // InputKind::regular_file) a FIFO or socket; a FIFO is then refused without blocking on it.
  InputFile(const std::filesystem::path& path, InputKind kind);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  bool is_regular() const { return regular_; }
  // The size of a regular file when it was opened (0 for a pipe).
  uint64_t size() const { return size_; }
  int fd() const { return fd_; }

  // Up to n bytes; fewer only at the end of the file (0 there).
  size_t read_some(void* dst, size_t n);
  // Exactly n bytes; throws naming the path and `what` when the file ends first.
  void read_exact(void* dst, size_t n, const char* what);
  // Everything from the current position to the end; throws when that exceeds max_bytes, having read
  // at most max_bytes + 1 of them.
  std::string read_rest(uint64_t max_bytes);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool regular_ = false;
  uint64_t size_ = 0;
};

}  // namespace dattn
