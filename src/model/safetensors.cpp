// Safetensors header validation. The header is untrusted input: every number is checked before use so
// that a lying or truncated file ends in a dattn::Error, never an out-of-bounds read.
#include "dattn/model/safetensors.h"

#include <algorithm>
#include <cstring>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "dattn/core/checked.h"
#include "dattn/core/dtype.h"
#include "dattn/core/error.h"
#include "dattn/io/json_input.h"

namespace dattn::model {

using nlohmann::json;

namespace {

struct DTypeEntry {
  StDType type;
  std::string_view name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {StDType::f64, "F64", 8},   {StDType::f32, "F32", 4},       {StDType::f16, "F16", 2},
    {StDType::bf16, "BF16", 2}, {StDType::i64, "I64", 8},       {StDType::i32, "I32", 4},
    {StDType::i16, "I16", 2},   {StDType::i8, "I8", 1},         {StDType::u64, "U64", 8},
    {StDType::u32, "U32", 4},   {StDType::u16, "U16", 2},       {StDType::u8, "U8", 1},
    {StDType::boolean, "BOOL", 1}, {StDType::f8_e4m3, "F8_E4M3", 1}, {StDType::f8_e5m2, "F8_E5M2", 1},
};

// Headers above this size are rejected outright (the reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr size_t kMaxRank = 8;
// {"name": {"dtype", "shape": [..], "data_offsets": [..]}}: three levels; __metadata__ is flat
constexpr int kMaxHeaderDepth = 8;
// One tensor above 1 TiB is no checkpoint we can run; the bound keeps every size product far from overflow.
constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 40;

uint64_t checked_u64(const json& v, std::string_view what, std::string_view tensor, std::string_view origin) {
  DATTN_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
              "{}: tensor '{}': {} must be a non-negative integer, got {}", origin, excerpt(tensor), what,
              json_excerpt(v));
  return v.get<uint64_t>();
}

TensorInfo parse_tensor_entry(const std::string& full_name, const json& entry, uint64_t data_size,
                              std::string_view origin) {
  const std::string name = excerpt(full_name);  // for messages
  DATTN_CHECK(entry.is_object(), "{}: tensor '{}' entry must be an object, got {}", origin, name, entry.type_name());
  TensorInfo info;
  info.name = full_name;

  DATTN_CHECK(entry.contains("dtype") && entry.at("dtype").is_string(), "{}: tensor '{}' has no dtype string", origin,
              name);
  std::string dtype = entry.at("dtype").get<std::string>();
  const DTypeEntry* found = nullptr;
  for (const DTypeEntry& e : kDTypes)
    if (e.name == dtype) found = &e;
  DATTN_CHECK(found, "{}: tensor '{}' has unknown dtype '{}'", origin, name, excerpt(dtype));
  info.dtype = found->type;

  DATTN_CHECK(entry.contains("shape") && entry.at("shape").is_array(), "{}: tensor '{}' has no shape list", origin,
              name);
  const json& shape = entry.at("shape");
  DATTN_CHECK(shape.size() <= kMaxRank, "{}: tensor '{}' has rank {} (at most {} supported)", origin, name,
              shape.size(), kMaxRank);
  for (const json& dim : shape) {
    const uint64_t d = checked_u64(dim, "a shape dimension", name, origin);
    DATTN_CHECK(d <= kMaxTensorBytes, "{}: tensor '{}' dimension {} exceeds {}", origin, name, d, kMaxTensorBytes);
    info.shape.push_back(int64_t(d));
  }
  // numel * element size bounded before it is compared with the byte range
  const uint64_t bytes = checked_byte_size(info.shape, found->size, kMaxTensorBytes,
                                           fmt::format("{}: tensor '{}'", origin, name));
  DATTN_CHECK(entry.contains("data_offsets") && entry.at("data_offsets").is_array() &&
                  entry.at("data_offsets").size() == 2,
              "{}: tensor '{}' needs data_offsets [begin, end]", origin, name);
  info.begin = checked_u64(entry.at("data_offsets")[0], "data_offsets[0]", name, origin);
  info.end = checked_u64(entry.at("data_offsets")[1], "data_offsets[1]", name, origin);
  DATTN_CHECK(info.begin <= info.end, "{}: tensor '{}' data_offsets [{}, {}] are reversed", origin, name, info.begin,
              info.end);
  DATTN_CHECK(info.end <= data_size,
              "{}: tensor '{}' data_offsets [{}, {}] run past the end of the data ({} bytes; file truncated?)", origin,
              name, info.begin, info.end, data_size);
  DATTN_CHECK(info.end - info.begin == bytes,
              "{}: tensor '{}' occupies {} bytes but its dtype {} and shape {} need {} bytes", origin, name,
              info.end - info.begin, dtype, json_excerpt(shape), bytes);
  return info;
}

}  // namespace

std::string_view st_dtype_name(StDType t) {
  for (const DTypeEntry& e : kDTypes)
    if (e.type == t) return e.name;
  return "?";
}

size_t st_dtype_size(StDType t) {
  for (const DTypeEntry& e : kDTypes)
    if (e.type == t) return e.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> prefix, uint64_t file_size,
                                           std::string_view origin) {
  DATTN_CHECK(file_size >= 8 && prefix.size() >= 8, "{}: {} bytes is too short for a safetensors file", origin,
              file_size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | uint64_t(prefix[size_t(i)]);
  DATTN_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} exceeds the {} byte limit", origin, header_len,
              kMaxHeaderBytes);
  DATTN_CHECK(header_len <= file_size - 8, "{}: header length {} exceeds the file ({} bytes; truncated?)", origin,
              header_len, file_size);
  DATTN_CHECK(prefix.size() >= 8 + header_len, "{}: only {} of the header's {} bytes are available", origin,
              prefix.size() - 8, header_len);

  const std::string_view text(reinterpret_cast<const char*>(prefix.data()) + 8, size_t(header_len));
  json j = parse_json(text, fmt::format("{}: header", origin), {kMaxHeaderBytes, kMaxHeaderDepth});
  DATTN_CHECK(j.is_object(), "{}: header must be a JSON object, got {}", origin, j.type_name());

  SafetensorsHeader header;
  header.data_offset = 8 + header_len;
  const uint64_t data_size = file_size - header.data_offset;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      DATTN_CHECK(value.is_object(), "{}: __metadata__ must be an object", origin);
      for (const auto& [mkey, mvalue] : value.items()) {
        DATTN_CHECK(mvalue.is_string(), "{}: __metadata__ value '{}' must be a string", origin, excerpt(mkey));
        header.metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    header.tensors.emplace(key, parse_tensor_entry(key, value, data_size, origin));
  }

  // Two tensors must never share bytes (a writer bug or a crafted file aliasing weights).
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, info] : header.tensors)
    if (info.end > info.begin) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    DATTN_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end,
                "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", origin, excerpt(by_offset[i - 1]->name),
                by_offset[i - 1]->begin, by_offset[i - 1]->end, excerpt(by_offset[i]->name), by_offset[i]->begin,
                by_offset[i]->end);
  return header;
}

F32Tensor F32Tensor::from(const TensorRef& ref, const std::vector<int64_t>& expected_shape) {
  const TensorInfo& info = *ref.info;
  if (info.shape != expected_shape) {
    fail("tensor '{}' in {} has shape [{}] but the config needs [{}]", excerpt(info.name), ref.file->string(),
         fmt::join(info.shape, ", "), fmt::join(expected_shape, ", "));
  }
  F32Tensor t;
  t.size_ = info.numel();
  const std::byte* src = ref.bytes.data();
  switch (info.dtype) {
    case StDType::f32:
      if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
        t.borrowed_ = reinterpret_cast<const float*>(src);
      } else {
        t.owned_.resize(size_t(t.size_));
        std::memcpy(t.owned_.data(), src, size_t(t.size_) * 4);
      }
      break;
    case StDType::bf16:
    case StDType::f16: {
      t.owned_.resize(size_t(t.size_));
      bool bf16 = info.dtype == StDType::bf16;
      for (int64_t i = 0; i < t.size_; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        t.owned_[size_t(i)] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      break;
    }
    default:
      fail("tensor '{}' in {} has dtype {}; weights must be F32, BF16 or F16", info.name, ref.file->string(),
           st_dtype_name(info.dtype));
  }
  return t;
}

}  // namespace dattn::model
