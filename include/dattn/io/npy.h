// NumPy .npy files (format versions 1.0, 2.0, 3.0): float32 / float16 / int32 / int64 arrays in C order.
// Parsing is strict: every malformed header, dtype, shape or size mismatch throws dattn::Error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace dattn::npy {

enum class ElementType { f32, f16, bf16_as_u16, i32, i64 };

struct Array {
  ElementType type = ElementType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian element data, C order
  int64_t numel() const;
};

// Parses a whole .npy file held in memory (the fuzzed entry point).
Array parse(const uint8_t* data, size_t size, const std::string& name = "<memory>");
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
