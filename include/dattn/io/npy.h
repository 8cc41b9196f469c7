// NumPy .npy files (format versions 1.0, 2.0, 3.0): float32 / float16 / int32 / int64 arrays in C order.
// Parsing is strict: every malformed header, dtype, shape or size mismatch throws dattn::Error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/core/input_file.h"

namespace dattn::npy {

enum class ElementType { f32, f16, bf16_as_u16, i32, i64 };

struct Array {
  ElementType type = ElementType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian element data, C order
  int64_t numel() const;
};

struct Header {
  ElementType type = ElementType::f32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;      // where the payload starts
  uint64_t payload_bytes = 0;  // numel * element size, at most 2^40 elements
};

// Parses the header at the start of `data` (magic, version, dict, at most 64 KiB); the payload is not
// looked at. Throws dattn::Error naming `name`.
Header parse_header(const uint8_t* data, size_t size, const std::string& name);
// Parses a whole .npy file held in memory (the fuzzed entry point).
Array parse(const uint8_t* data, size_t size, const std::string& name = "<memory>");

// A .npy file opened for reading (regular files only): the header is parsed and its payload size checked
// against the file's size before any data is read, so the payload can go straight to its destination.
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path);
  const Header& header() const { return header_; }
  // Reads header().payload_bytes bytes into dst.
  void read_payload(void* dst);

 private:
  InputFile file_;
  Header header_;
};

Array load(const std::filesystem::path& path);

// The bytes before the data of a version 1.0 file of this type and shape (magic, header length, header).
std::string file_header(ElementType type, const std::vector<int64_t>& shape);
// A view of raw bytes as the string_view OutputFiles::stage takes.
inline std::string_view byte_view(const void* data, size_t size) {
  return {static_cast<const char*>(data), size};
}

// Writes one file through OutputFiles (a temporary in the same folder, moved into place on success),
// so a failure never leaves a partial output behind. Commands writing several files use OutputFiles.
void save(const std::filesystem::path& path, const Array& array);
void save_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

std::string element_type_name(ElementType t);

}  // namespace dattn::npy
