#include "dattn/io/npy.h"

#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <limits>
#include <random>
#include <system_error>

#include <unistd.h>

#include <fmt/ranges.h>

#include "dattn/core/checked.h"
#include "dattn/core/error.h"

namespace dattn::npy {
namespace {

constexpr int64_t kMaxElements = int64_t(1) << 40;
// numpy itself refuses headers above 10000 bytes by default; ours are 128 bytes
constexpr size_t kMaxHeaderBytes = 65536;

size_t element_size(ElementType t) {
  switch (t) {
    case ElementType::f32: case ElementType::i32: return 4;
    case ElementType::f16: case ElementType::bf16_as_u16: return 2;
    case ElementType::i64: return 8;
  }
  return 0;
}

std::string descr_of(ElementType t) {
  switch (t) {
    case ElementType::f32: return "<f4";
    case ElementType::f16: return "<f2";
    case ElementType::bf16_as_u16: return "<u2";
    case ElementType::i32: return "<i4";
    case ElementType::i64: return "<i8";
  }
  return "?";
}

// A tiny parser for the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
struct HeaderParser {
  std::string_view text;
  size_t pos = 0;
  const std::string& name;

  [[noreturn]] void error(std::string_view what) {
    fail("{}: malformed .npy header ({} at offset {}): {}", name, what, pos, excerpt(text, 120));
  }
  void skip_space() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n')) ++pos;
  }
  void expect(char c) {
    skip_space();
    if (pos >= text.size() || text[pos] != c) error(std::string("expected '") + c + "'");
    ++pos;
  }
  bool accept(char c) {
    skip_space();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  std::string quoted() {
    skip_space();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"')) error("expected a quoted string");
    char quote = text[pos++];
    size_t end = text.find(quote, pos);
    if (end == std::string_view::npos) error("unterminated string");
    std::string s(text.substr(pos, end - pos));
    pos = end + 1;
    return s;
  }
  std::string word() {
    skip_space();
    size_t start = pos;
    while (pos < text.size() && std::isalnum(static_cast<unsigned char>(text[pos]))) ++pos;
    if (start == pos) error("expected a value");
    return std::string(text.substr(start, pos - start));
  }
  int64_t integer() {
    std::string w = word();
    int64_t value = 0;
    for (char c : w) {
      if (!std::isdigit(static_cast<unsigned char>(c))) error("shape entry is not a non-negative integer");
      if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) error("shape entry too large");
      value = value * 10 + (c - '0');
    }
    return value;
  }
};

}  // namespace

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string element_type_name(ElementType t) { return descr_of(t); }

Header parse_header(const uint8_t* data, size_t size, const std::string& name) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  DATTN_CHECK(size >= 10, "{}: not a .npy file ({} bytes, too short for the header)", name, size);
  DATTN_CHECK(std::memcmp(data, magic, 6) == 0, "{}: not a .npy file (bad magic bytes)", name);
  uint8_t major = data[6];
  DATTN_CHECK(major >= 1 && major <= 3, "{}: unsupported .npy format version {}.{}", name, major, data[7]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = size_t(data[8]) | (size_t(data[9]) << 8);
    header_start = 10;
  } else {
    DATTN_CHECK(size >= 12, "{}: truncated .npy header", name);
    header_len = size_t(data[8]) | (size_t(data[9]) << 8) | (size_t(data[10]) << 16) | (size_t(data[11]) << 24);
    header_start = 12;
  }
  DATTN_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} exceeds the limit of {} bytes", name, header_len,
              kMaxHeaderBytes);
  DATTN_CHECK(header_len <= size - header_start, "{}: header length {} runs past the end of the file ({} bytes)",
              name, header_len, size);
  std::string header(reinterpret_cast<const char*>(data + header_start), header_len);
  HeaderParser p{header, 0, name};

  std::string descr;
  bool fortran = false, have_descr = false, have_order = false, have_shape = false;
  std::vector<int64_t> shape;
  p.expect('{');
  while (!p.accept('}')) {
    std::string key = p.quoted();
    p.expect(':');
    if (key == "descr") {
      descr = p.quoted();
      have_descr = true;
    } else if (key == "fortran_order") {
      std::string w = p.word();
      if (w != "True" && w != "False") p.error("fortran_order must be True or False");
      fortran = w == "True";
      have_order = true;
    } else if (key == "shape") {
      p.expect('(');
      while (!p.accept(')')) {
        shape.push_back(p.integer());
        if (shape.size() > 32) p.error("more than 32 dimensions");
        if (!p.accept(',')) {
          p.expect(')');
          break;
        }
      }
      have_shape = true;
    } else {
      p.error("unknown key '" + excerpt(key, 40) + "'");
    }
    if (!p.accept(',')) {
      p.expect('}');
      break;
    }
  }
  DATTN_CHECK(have_descr && have_order && have_shape, "{}: .npy header lacks descr, fortran_order or shape", name);
  DATTN_CHECK(!fortran, "{}: Fortran-order arrays are not supported (save with np.ascontiguousarray)", name);

  Header h;
  if (descr == "<f4") h.type = ElementType::f32;
  else if (descr == "<f2") h.type = ElementType::f16;
  else if (descr == "<u2") h.type = ElementType::bf16_as_u16;
  else if (descr == "<i4") h.type = ElementType::i32;
  else if (descr == "<i8") h.type = ElementType::i64;
  else fail("{}: unsupported dtype '{}' (expected float32 '<f4' or float16 '<f2')", name, excerpt(descr, 40));
  h.shape = std::move(shape);
  h.payload_bytes = uint64_t(checked_numel(h.shape, kMaxElements, name)) * element_size(h.type);
  h.data_offset = header_start + header_len;
  return h;
}

Array parse(const uint8_t* data, size_t size, const std::string& name) {
  Header h = parse_header(data, size, name);
  DATTN_CHECK(size - h.data_offset == h.payload_bytes, "{}: data is {} bytes but shape [{}] of {} needs {} bytes", name,
              size - h.data_offset, fmt::join(h.shape, ", "), descr_of(h.type), h.payload_bytes);
  Array array;
  array.type = h.type;
  array.shape = std::move(h.shape);
  array.bytes.assign(data + h.data_offset, data + size);
  return array;
}

Reader::Reader(const std::filesystem::path& path) : file_(path, InputKind::regular_file) {
  const std::string name = path.string();
  // The header (capped), then the payload size checked against the file's: nothing is allocated for a
  // size the file does not have. The prefix may take some payload bytes along; they are read again.
  std::vector<uint8_t> prefix(size_t(std::min<uint64_t>(file_.size(), 12 + kMaxHeaderBytes)));
  file_.read_exact(prefix.data(), prefix.size(), "header");
  header_ = parse_header(prefix.data(), prefix.size(), name);
  DATTN_CHECK(file_.size() - header_.data_offset == header_.payload_bytes,
              "{}: data is {} bytes but shape [{}] of {} needs {} bytes", name, file_.size() - header_.data_offset,
              fmt::join(header_.shape, ", "), descr_of(header_.type), header_.payload_bytes);
  DATTN_CHECK(::lseek(file_.fd(), off_t(header_.data_offset), SEEK_SET) == off_t(header_.data_offset),
              "cannot read '{}'", name);
}

void Reader::read_payload(void* dst) { file_.read_exact(dst, size_t(header_.payload_bytes), "data"); }

Array load(const std::filesystem::path& path) {
  Reader reader(path);
  Array array;
  array.type = reader.header().type;
  array.shape = reader.header().shape;
  array.bytes.resize(size_t(reader.header().payload_bytes));
  reader.read_payload(array.bytes.data());
  return array;
}

void save(const std::filesystem::path& path, const Array& array) {
  DATTN_CHECK(size_t(array.numel()) * element_size(array.type) == array.bytes.size(),
              "npy::save '{}': {} bytes do not match the shape", path.string(), array.bytes.size());
  std::string shape_text;
  for (int64_t s : array.shape) shape_text += std::to_string(s) + ", ";
  if (array.shape.size() > 1) shape_text.resize(shape_text.size() - 1);  // "(2, 3)" but "(5,)"
  if (array.shape.size() > 1) shape_text.pop_back();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                   descr_of(array.type), shape_text);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  DATTN_CHECK(header.size() <= 65535, "npy::save: header too long");

  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp{}", std::random_device{}());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DATTN_CHECK(out.good(), "cannot open '{}' for writing", tmp.string());
    const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(magic, 8);
    uint16_t len = uint16_t(header.size());
    out.put(char(len & 0xff)).put(char(len >> 8));
    out.write(header.data(), std::streamsize(header.size()));
    out.write(reinterpret_cast<const char*>(array.bytes.data()), std::streamsize(array.bytes.size()));
    out.close();
    if (!out.good()) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail("error writing '{}'", path.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("cannot move the output into place at '{}'", path.string());
  }
}

void save_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data) {
  Array a;
  a.type = ElementType::f32;
  a.shape = shape;
  a.bytes.resize(size_t(a.numel()) * 4);
  std::memcpy(a.bytes.data(), data, a.bytes.size());
  save(path, a);
}

}  // namespace dattn::npy
