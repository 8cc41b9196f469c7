// Safetensors checkpoints, memory-mapped: the header parser (pure, fuzzable) and the file/shard set.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data; offsets are relative to the first byte after the header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/io/mapped_file.h"

namespace dattn::model {

// Every dtype the format names; the runtime computes with f32/bf16/f16 and rejects the others on use.
enum class StDType : uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean, f8_e4m3, f8_e5m2 };
std::string_view st_dtype_name(StDType t);  // as the format spells it: "BF16"
size_t st_dtype_size(StDType t);

struct TensorInfo {
  std::string name;
  StDType dtype = StDType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte range within the data section
  uint64_t end = 0;
  int64_t numel() const;
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;  // 8 + header length: where the data section starts in the file
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

// Validates everything a header can lie about against the file size: header length, JSON shape, dtypes,
// shapes (overflow), byte ranges (inside the data, size = numel * dtype size, no overlaps).
// Throws dattn::Error; `origin` names the file in messages.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file_prefix, uint64_t file_size,
                                           std::string_view origin = "safetensors data");

using io::MappedFile;

// A tensor located in a mapped file.
struct TensorRef {
  const TensorInfo* info = nullptr;
  std::span<const std::byte> bytes;
  const std::filesystem::path* file = nullptr;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards listed by
// model.safetensors.index.json (weight_map). Each tensor name must be stored exactly once.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir);
  static Checkpoint open_files(const std::vector<std::filesystem::path>& files);
  // Tensors already decoded into memory (GGUF weights): `data` holds each at its [begin, end) range;
  // `origin` names their file in messages.
  static Checkpoint from_memory(const std::filesystem::path& origin, std::vector<TensorInfo> tensors,
                                std::vector<std::byte> data);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Throws dattn::Error naming the tensor when it is missing.
  TensorRef get(const std::string& name) const;
  std::vector<std::string> names() const;
  // Total bytes of tensor data in the checkpoint.
  uint64_t data_bytes() const;
  // Throws dattn::Error unless the layers of the checkpoint (its "model.layers.N." tensors) are exactly
  // 0 .. num_layers - 1: weights for more or fewer layers than config.json's num_hidden_layers belong to
  // another config, and running them truncated would be silent garbage.
  void check_layer_count(int64_t num_layers) const;

 private:
  struct Shard {
    std::unique_ptr<MappedFile> file;  // null for a shard decoded into `decoded`
    std::vector<std::byte> decoded;
    std::filesystem::path origin;
    SafetensorsHeader header;
    std::span<const std::byte> bytes() const { return file ? file->bytes() : std::span<const std::byte>(decoded); }
    const std::filesystem::path& path() const { return file ? file->path() : origin; }
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  std::map<std::string, std::pair<const Shard*, const TensorInfo*>> index_;
  void add_shard(const std::filesystem::path& path);
};

// A tensor as fp32: borrowed from the mapping when stored as aligned f32 (no copy), else widened from
// bf16/f16 into owned memory. The Checkpoint must outlive a borrowing F32Tensor.
class F32Tensor {
 public:
  F32Tensor() = default;
  const float* data() const { return borrowed_ ? borrowed_ : owned_.data(); }
  int64_t size() const { return size_; }
  bool borrowed() const { return borrowed_ != nullptr; }
  // Throws dattn::Error for a dtype other than f32/bf16/f16 and when the element count differs from
  // expected_shape's (both shapes named in the message).
  static F32Tensor from(const TensorRef& ref, const std::vector<int64_t>& expected_shape);

 private:
  std::vector<float> owned_;
  const float* borrowed_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace dattn::model
