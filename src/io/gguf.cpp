// GGUF header parsing. Every length and count read from the file is compared with the bytes left
// before anything is sized by it; sums and products go through checked arithmetic.
#include "dattn/io/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dattn/core/error.h"

namespace dattn::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 4;        // llama.cpp writes at most arrays of arrays
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxAlignment = 1u << 20;

uint64_t checked_add(uint64_t a, uint64_t b, std::string_view origin, std::string_view what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("{}: {} overflows", origin, what);
  return r;
}

uint64_t checked_mul(uint64_t a, uint64_t b, std::string_view origin, std::string_view what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("{}: {} overflows", origin, what);
  return r;
}

size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::u8: case GgufValueType::i8: case GgufValueType::boolean: return 1;
    case GgufValueType::u16: case GgufValueType::i16: return 2;
    case GgufValueType::u32: case GgufValueType::i32: case GgufValueType::f32: return 4;
    case GgufValueType::u64: case GgufValueType::i64: case GgufValueType::f64: return 8;
    default: return 0;  // string, array: variable
  }
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

struct TypeEntry {
  GgmlType type;
  std::string_view name;
  int64_t block_elements, block_bytes;
};
constexpr TypeEntry kTypes[] = {
    {GgmlType::f32, "F32", 1, 4},       {GgmlType::f16, "F16", 1, 2},       {GgmlType::bf16, "BF16", 1, 2},
    {GgmlType::q4_0, "Q4_0", 32, 18},   {GgmlType::q4_1, "Q4_1", 32, 20},   {GgmlType::q5_0, "Q5_0", 32, 22},
    {GgmlType::q5_1, "Q5_1", 32, 24},   {GgmlType::q8_0, "Q8_0", 32, 34},   {GgmlType::q2_k, "Q2_K", 256, 84},
    {GgmlType::q3_k, "Q3_K", 256, 110}, {GgmlType::q4_k, "Q4_K", 256, 144}, {GgmlType::q5_k, "Q5_K", 256, 176},
    {GgmlType::q6_k, "Q6_K", 256, 210},
};

const TypeEntry* find_type(uint32_t t) {
  for (const TypeEntry& e : kTypes)
    if (uint32_t(e.type) == t) return &e;
  return nullptr;
}

}  // namespace

// Reads the header front to back; `pos` never passes `file.size()`.
struct GgufParser {
  std::span<const std::byte> file;
  std::string_view origin;
  uint64_t pos = 0;

  uint64_t left() const { return file.size() - pos; }

  std::span<const std::byte> take(uint64_t n, std::string_view what) {
    if (n > left())
      fail("{}: {} needs {} bytes at offset {} but only {} remain (file truncated or lying)", origin, what, n, pos,
           left());
    auto out = file.subspan(size_t(pos), size_t(n));
    pos += n;
    return out;
  }
  template <typename T>
  T read(std::string_view what) {
    return load<T>(take(sizeof(T), what).data());
  }
  std::string_view read_string(std::string_view what) {
    uint64_t n = read<uint64_t>(what);
    auto bytes = take(n, what);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  GgufValueType read_type(std::string_view key) {
    uint32_t t = read<uint32_t>("a value type");
    DATTN_CHECK(t <= uint32_t(GgufValueType::f64), "{}: metadata '{}' has unknown value type {}", origin, key, t);
    return GgufValueType(t);
  }

  // Skips over one value of type `t`, checking it fits; returns its bytes (strings: the characters).
  GgufValue read_value(GgufValueType t, std::string_view key, int depth) {
    GgufValue v;
    v.type_ = t;
    if (t == GgufValueType::string) {
      std::string_view s = read_string(key);
      v.bytes_ = std::as_bytes(std::span(s.data(), s.size()));
    } else if (t == GgufValueType::array) {
      DATTN_CHECK(depth < kMaxArrayDepth, "{}: metadata '{}' nests arrays deeper than {}", origin, key,
                  kMaxArrayDepth);
      v.element_type_ = read_type(key);
      v.count_ = read<uint64_t>(key);
      const uint64_t start = pos;
      if (size_t elem = scalar_size(v.element_type_)) {
        take(checked_mul(v.count_, elem, origin, fmt::format("metadata '{}' array size", key)), key);
      } else {
        // each string needs 8 bytes of length, each array 12 bytes of header: bound the loop first
        const uint64_t min_size = v.element_type_ == GgufValueType::string ? 8 : 12;
        DATTN_CHECK(v.count_ <= left() / min_size, "{}: metadata '{}' claims {} elements but only {} bytes remain",
                    origin, key, v.count_, left());
        for (uint64_t i = 0; i < v.count_; ++i) read_value(v.element_type_, key, depth + 1);
      }
      v.bytes_ = file.subspan(size_t(start), size_t(pos - start));
    } else {
      v.bytes_ = take(scalar_size(t), key);
    }
    return v;
  }
};

std::string_view gguf_value_type_name(GgufValueType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",     "u16",    "i16",   "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) < std::size(names) ? names[uint32_t(t)] : "?";
}

namespace {

int64_t scalar_as_int(GgufValueType t, const std::byte* p, std::string_view key) {
  switch (t) {
    case GgufValueType::u8: return load<uint8_t>(p);
    case GgufValueType::i8: return load<int8_t>(p);
    case GgufValueType::u16: return load<uint16_t>(p);
    case GgufValueType::i16: return load<int16_t>(p);
    case GgufValueType::u32: return load<uint32_t>(p);
    case GgufValueType::i32: return load<int32_t>(p);
    case GgufValueType::i64: return load<int64_t>(p);
    case GgufValueType::u64: {
      uint64_t v = load<uint64_t>(p);
      DATTN_CHECK(v <= uint64_t(INT64_MAX), "GGUF metadata '{}': {} is too large", key, v);
      return int64_t(v);
    }
    default: fail("GGUF metadata '{}' must be an integer, got {}", key, gguf_value_type_name(t));
  }
}

double scalar_as_float(GgufValueType t, const std::byte* p, std::string_view key) {
  if (t == GgufValueType::f32) return load<float>(p);
  if (t == GgufValueType::f64) return load<double>(p);
  return double(scalar_as_int(t, p, key));
}

}  // namespace

int64_t GgufValue::as_int(std::string_view key) const { return scalar_as_int(type_, bytes_.data(), key); }
double GgufValue::as_float(std::string_view key) const { return scalar_as_float(type_, bytes_.data(), key); }

bool GgufValue::as_bool(std::string_view key) const {
  DATTN_CHECK(type_ == GgufValueType::boolean, "GGUF metadata '{}' must be a bool, got {}", key,
              gguf_value_type_name(type_));
  return load<uint8_t>(bytes_.data()) != 0;
}

std::string_view GgufValue::as_string(std::string_view key) const {
  DATTN_CHECK(type_ == GgufValueType::string, "GGUF metadata '{}' must be a string, got {}", key,
              gguf_value_type_name(type_));
  return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
}

std::vector<std::string_view> GgufValue::as_strings(std::string_view key) const {
  DATTN_CHECK(type_ == GgufValueType::array && element_type_ == GgufValueType::string,
              "GGUF metadata '{}' must be an array of strings, got {}", key, describe());
  std::vector<std::string_view> out;
  out.reserve(size_t(count_));  // bounded by the file size at parse time
  size_t p = 0;
  for (uint64_t i = 0; i < count_; ++i) {
    uint64_t n = load<uint64_t>(bytes_.data() + p);
    out.emplace_back(reinterpret_cast<const char*>(bytes_.data()) + p + 8, size_t(n));
    p += 8 + size_t(n);
  }
  return out;
}

std::vector<float> GgufValue::as_floats(std::string_view key) const {
  DATTN_CHECK(type_ == GgufValueType::array && scalar_size(element_type_) != 0 &&
                  element_type_ != GgufValueType::boolean,
              "GGUF metadata '{}' must be an array of numbers, got {}", key, describe());
  std::vector<float> out(static_cast<size_t>(count_));
  const size_t elem = scalar_size(element_type_);
  for (uint64_t i = 0; i < count_; ++i) out[i] = float(scalar_as_float(element_type_, bytes_.data() + i * elem, key));
  return out;
}

std::vector<int64_t> GgufValue::as_ints(std::string_view key) const {
  DATTN_CHECK(type_ == GgufValueType::array && scalar_size(element_type_) != 0 &&
                  element_type_ != GgufValueType::f32 && element_type_ != GgufValueType::f64 &&
                  element_type_ != GgufValueType::boolean,
              "GGUF metadata '{}' must be an array of integers, got {}", key, describe());
  std::vector<int64_t> out(static_cast<size_t>(count_));
  const size_t elem = scalar_size(element_type_);
  for (uint64_t i = 0; i < count_; ++i) out[i] = scalar_as_int(element_type_, bytes_.data() + i * elem, key);
  return out;
}

std::string GgufValue::describe() const {
  if (type_ == GgufValueType::array)
    return fmt::format("array of {} {}", count_, gguf_value_type_name(element_type_));
  return std::string(gguf_value_type_name(type_));
}

std::string_view ggml_type_name(GgmlType t) {
  const TypeEntry* e = find_type(uint32_t(t));
  return e ? e->name : "unsupported";
}

int64_t ggml_block_elements(GgmlType t) {
  const TypeEntry* e = find_type(uint32_t(t));
  DATTN_CHECK(e, "ggml type {} has no dequantizer", uint32_t(t));
  return e->block_elements;
}

int64_t ggml_block_bytes(GgmlType t) {
  const TypeEntry* e = find_type(uint32_t(t));
  DATTN_CHECK(e, "ggml type {} has no dequantizer", uint32_t(t));
  return e->block_bytes;
}

const GgufValue* GgufHeader::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const GgufValue& GgufHeader::at(std::string_view key) const {
  const GgufValue* v = find(key);
  DATTN_CHECK(v, "GGUF metadata '{}' is missing", key);
  return *v;
}

const GgufTensorInfo* GgufHeader::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

GgufHeader parse_gguf_header(std::span<const std::byte> file, std::string_view origin) {
  GgufParser p{file, origin};
  DATTN_CHECK(file.size() >= 24, "{}: {} bytes is too short for a GGUF file", origin, file.size());
  const uint32_t magic = p.read<uint32_t>("magic");
  DATTN_CHECK(magic == kMagic, "{}: not a GGUF file (magic {:#010x})", origin, magic);
  GgufHeader h;
  h.version = p.read<uint32_t>("version");
  DATTN_CHECK(h.version == 2 || h.version == 3, "{}: GGUF version {} is not supported (2 and 3 are)", origin,
              h.version);
  const uint64_t n_tensors = p.read<uint64_t>("tensor count");
  const uint64_t n_metadata = p.read<uint64_t>("metadata count");
  // a key/value pair takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8
  DATTN_CHECK(n_metadata <= p.left() / 13, "{}: {} metadata entries cannot fit in the {} bytes that remain", origin,
              n_metadata, p.left());
  h.metadata.reserve(size_t(n_metadata));
  std::unordered_set<std::string_view> keys;
  for (uint64_t i = 0; i < n_metadata; ++i) {
    std::string_view key = p.read_string("a metadata key");
    DATTN_CHECK(keys.insert(key).second, "{}: metadata key '{}' appears twice", origin, key);
    GgufValueType t = p.read_type(key);
    h.metadata.emplace_back(std::string(key), p.read_value(t, key, 0));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    const int64_t alignment = a->as_int("general.alignment");
    DATTN_CHECK(alignment > 0 && uint64_t(alignment) <= kMaxAlignment && (alignment & (alignment - 1)) == 0,
                "{}: general.alignment {} is not a power of two up to {}", origin, alignment, kMaxAlignment);
    h.alignment = uint64_t(alignment);
  }
  DATTN_CHECK(n_tensors <= p.left() / 32, "{}: {} tensor infos cannot fit in the {} bytes that remain", origin,
              n_tensors, p.left());
  h.tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = std::string(p.read_string("a tensor name"));
    const uint32_t n_dims = p.read<uint32_t>(t.name);
    DATTN_CHECK(n_dims >= 1 && n_dims <= kMaxDims, "{}: tensor '{}' has {} dimensions (1 to {} allowed)", origin,
                t.name, n_dims, kMaxDims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = p.read<uint64_t>(t.name);
      DATTN_CHECK(dim >= 1 && dim <= uint64_t(INT64_MAX), "{}: tensor '{}' dimension {} is {}", origin, t.name, d,
                  dim);
      numel = checked_mul(numel, dim, origin, fmt::format("tensor '{}' element count", t.name));
      t.dims.push_back(int64_t(dim));
    }
    DATTN_CHECK(numel <= uint64_t(INT64_MAX), "{}: tensor '{}' has too many elements", origin, t.name);
    t.numel = int64_t(numel);
    const uint32_t type = p.read<uint32_t>(t.name);
    const TypeEntry* entry = find_type(type);
    DATTN_CHECK(entry, "{}: tensor '{}' has ggml type {}, which dattn cannot dequantize", origin, t.name, type);
    t.type = entry->type;
    DATTN_CHECK(t.dims[0] % entry->block_elements == 0,
                "{}: tensor '{}' rows of {} elements are not whole {} blocks of {}", origin, t.name, t.dims[0],
                entry->name, entry->block_elements);
    t.bytes = checked_mul(numel / uint64_t(entry->block_elements), uint64_t(entry->block_bytes), origin,
                          fmt::format("tensor '{}' byte size", t.name));
    t.offset = p.read<uint64_t>(t.name);
    DATTN_CHECK(t.offset % h.alignment == 0, "{}: tensor '{}' offset {} is not a multiple of the alignment {}",
                origin, t.name, t.offset, h.alignment);
    h.tensors.push_back(std::move(t));
  }
  // the data section starts at the next multiple of the alignment
  const uint64_t pad = (h.alignment - p.pos % h.alignment) % h.alignment;
  h.data_offset = checked_add(p.pos, pad, origin, "data offset");
  DATTN_CHECK(h.data_offset <= file.size(), "{}: the data section starts at {}, past the end of the file ({} bytes)",
              origin, h.data_offset, file.size());
  const uint64_t data_size = file.size() - h.data_offset;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : h.tensors) {
    const uint64_t end = checked_add(t.offset, t.bytes, origin, fmt::format("tensor '{}' end offset", t.name));
    DATTN_CHECK(end <= data_size,
                "{}: tensor '{}' ({} {}, {} bytes at data offset {}) runs past the end of the file ({} data bytes; "
                "truncated?)",
                origin, t.name, ggml_type_name(t.type), fmt::join(t.dims, "x"), t.bytes, t.offset, data_size);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->name < b->name;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    DATTN_CHECK(b.offset >= a.offset + a.bytes, "{}: tensors '{}' and '{}' overlap (offsets {} and {})", origin,
                a.name, b.name, a.offset, b.offset);
  }
  std::vector<std::string_view> names;
  for (const GgufTensorInfo& t : h.tensors) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  for (size_t i = 1; i < names.size(); ++i)
    DATTN_CHECK(names[i] != names[i - 1], "{}: tensor '{}' appears twice", origin, names[i]);
  return h;
}

bool is_gguf_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::GgufFile(const std::filesystem::path& path)
    : file_(std::make_unique<MappedFile>(path)), header_(parse_gguf_header(file_->bytes(), path.string())) {}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return file_->bytes().subspan(size_t(header_.data_offset + info.offset), size_t(info.bytes));
}

}  // namespace dattn::io
