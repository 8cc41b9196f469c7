#include "dattn/io/mapped_file.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "dattn/core/error.h"
#include "dattn/core/input_file.h"

namespace dattn::io {

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  InputFile file(path, InputKind::regular_file);  // a FIFO, device or directory is refused here, without blocking
  size_ = size_t(file.size());
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    DATTN_CHECK(p != MAP_FAILED, "cannot memory-map {}: {}", path.string(), std::strerror(errno));
    data_ = static_cast<const std::byte*>(p);
  }
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace dattn::io
