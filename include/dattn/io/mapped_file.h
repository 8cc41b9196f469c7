// A read-only memory mapping of a whole file (safetensors and GGUF weights are used in place).
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>

namespace dattn::io {

class MappedFile {
 public:
  // Throws dattn::Error naming the path when it cannot be opened, is not a regular file or cannot be mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dattn::io
