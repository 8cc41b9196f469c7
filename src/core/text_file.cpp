#include "dattn/core/text_file.h"

namespace dattn {

std::string read_text_file(const std::filesystem::path& path, uint64_t max_bytes, InputKind kind) {
  InputFile file(path, kind);
  return file.read_rest(max_bytes);
}

}  // namespace dattn
