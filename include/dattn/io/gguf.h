// GGUF files (llama.cpp's model format, versions 2 and 3): the header parser (pure, fuzzable), a
// memory-mapped file, and dequantization of the ggml tensor types to fp32 / bf16.
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count, the metadata key/value pairs, the
// tensor infos (name, dims, ggml type, offset), padding to general.alignment (default 32), the data.
// Everything is little-endian. The header is untrusted input: every count, length and offset is checked
// against the bytes that are really there before it is used, so a hostile file costs no large allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/io/mapped_file.h"

namespace dattn::io {

enum class GgufValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType t);

// A metadata value, read lazily from the file's bytes (arrays of 150K strings cost nothing until read).
class GgufValue {
 public:
  GgufValueType type() const { return type_; }
  // Arrays: the element type and count.
  GgufValueType element_type() const { return element_type_; }
  uint64_t size() const { return count_; }

  // Scalars. Integers convert between widths when the value fits; throws dattn::Error naming `key`.
  int64_t as_int(std::string_view key) const;
  double as_float(std::string_view key) const;  // f32, f64 or an integer
  bool as_bool(std::string_view key) const;
  std::string_view as_string(std::string_view key) const;
  // Arrays of strings / numbers / integers.
  std::vector<std::string_view> as_strings(std::string_view key) const;
  std::vector<float> as_floats(std::string_view key) const;
  std::vector<int64_t> as_ints(std::string_view key) const;
  // The value as text for `dattn` diagnostics (arrays abbreviated).
  std::string describe() const;

 private:
  friend struct GgufParser;
  GgufValueType type_ = GgufValueType::u8;
  GgufValueType element_type_ = GgufValueType::u8;
  uint64_t count_ = 0;
  std::span<const std::byte> bytes_;  // the scalar, the string's characters, or the array's elements
};

// ggml tensor types (ggml.h numbering). Only the ones with a dequantizer are accepted in tensor infos.
enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9, q2_k = 10, q3_k = 11,
  q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15, bf16 = 30,
};
std::string_view ggml_type_name(GgmlType t);  // "Q4_K"
// Elements per block and bytes per block; throws dattn::Error for a type without a dequantizer.
int64_t ggml_block_elements(GgmlType t);
int64_t ggml_block_bytes(GgmlType t);

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::f32;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  uint64_t offset = 0;        // from the start of the data section; a multiple of the alignment
  uint64_t bytes = 0;
  int64_t numel = 0;
  // torch order (dims reversed), as safetensors and transformers name shapes.
  std::vector<int64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
};

struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // file offset of the data section
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order; keys are unique
  std::vector<GgufTensorInfo> tensors;                      // in file order; names are unique

  const GgufValue* find(std::string_view key) const;
  const GgufValue& at(std::string_view key) const;  // throws dattn::Error naming a missing key
  const GgufTensorInfo* find_tensor(std::string_view name) const;
};

// Validates the whole header against the file: magic, version, counts, string lengths, value types, array
// nesting, alignment, tensor dims (positive, rows whole blocks, no overflow), types, byte ranges inside
// the file and aligned, no overlaps, unique names. The returned values point into `file`.
// Throws dattn::Error; `origin` names the file in messages.
GgufHeader parse_gguf_header(std::span<const std::byte> file, std::string_view origin = "GGUF data");

// True when `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::filesystem::path& path);

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);
  const GgufHeader& header() const { return header_; }
  const std::filesystem::path& path() const { return file_->path(); }
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;

 private:
  std::unique_ptr<MappedFile> file_;
  GgufHeader header_;
};

// Dequantizes `count` elements (a whole number of blocks) stored as `type` in `src`, as ggml's
// dequantize_row_* does. Throws dattn::Error when `src` is not exactly the bytes `count` needs.
void dequantize_to_f32(GgmlType type, std::span<const std::byte> src, int64_t count, float* dst);
// The same rounded to bf16 (round to nearest even), block by block (no fp32 copy of the whole tensor).
void dequantize_to_bf16(GgmlType type, std::span<const std::byte> src, int64_t count, uint16_t* dst);

}  // namespace dattn::io
