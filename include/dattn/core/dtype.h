// Element types and their conversions to and from fp32 (round to nearest even).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace dattn {

enum class DType : uint8_t { f32, bf16, f16 };
enum class Device : uint8_t { cpu, cuda };

constexpr size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
std::string_view dtype_name(DType t);
DType parse_dtype(std::string_view name);  // "fp32"|"f32"|"float32", "bf16"|"bfloat16", "fp16"|"f16"|"float16"
std::string_view device_name(Device d);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace dattn
