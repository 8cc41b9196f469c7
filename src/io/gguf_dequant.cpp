// ggml's block formats decoded to fp32, following ggml-quants.c's dequantize_row_* (reference C versions).
#include <algorithm>
#include <cstring>

#include "dattn/core/dtype.h"
#include "dattn/core/error.h"
#include "dattn/io/gguf.h"

namespace dattn::io {
namespace {

using u8 = uint8_t;

float half(const u8* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q4_0: f16 d, 16 bytes of nibbles; the low nibbles are elements 0..15, the high ones 16..31.
void q4_0(const u8* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = float((b[2 + j] & 0xF) - 8) * d;
    y[j + 16] = float((b[2 + j] >> 4) - 8) * d;
  }
}

void q4_1(const u8* b, float* y) {
  const float d = half(b), m = half(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(b[4 + j] & 0xF) * d + m;
    y[j + 16] = float(b[4 + j] >> 4) * d + m;
  }
}

// Q5_0 / Q5_1: a fifth bit per element in a u32 (bit j for element j).
void q5_0(const u8* b, float* y) {
  const float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const u8* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int xh0 = int(((qh >> j) << 4) & 0x10), xh1 = int((qh >> (j + 12)) & 0x10);
    y[j] = float(((qs[j] & 0xF) | xh0) - 16) * d;
    y[j + 16] = float(((qs[j] >> 4) | xh1) - 16) * d;
  }
}

void q5_1(const u8* b, float* y) {
  const float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const u8* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int xh0 = int(((qh >> j) << 4) & 0x10), xh1 = int((qh >> (j + 12)) & 0x10);
    y[j] = float((qs[j] & 0xF) | xh0) * d + m;
    y[j + 16] = float((qs[j] >> 4) | xh1) * d + m;
  }
}

void q8_0(const u8* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// Q2_K: scales[16] (4-bit scale, 4-bit min), qs[64] (2-bit), f16 d, f16 dmin.
void q2_k(const u8* b, float* y) {
  const u8* scales = b;
  const u8* q = b + 16;
  const float d = half(b + 80), min = half(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int part = 0; part < 2; ++part) {
        const u8 sc = scales[is++];
        const float dl = d * float(sc & 0xF), ml = min * float(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * part] >> shift) & 3) - ml;
      }
      shift += 2;
    }
    q += 32;
  }
}

// Q3_K: hmask[32] (high bit), qs[64] (low 2 bits), scales[12] (16 6-bit scales), f16 d.
void q3_k(const u8* b, float* y) {
  const u8* hm = b;
  const u8* q = b + 32;
  const float d_all = half(b + 108);
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  std::memcpy(aux, b + 96, 12);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  int8_t scales[16];
  std::memcpy(scales, aux, 16);
  int is = 0;
  u8 m = 1;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int part = 0; part < 2; ++part) {
        const float dl = d_all * float(scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * part;
          *y++ = dl * float(((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
        }
      }
      shift += 2;
      m = u8(m << 1);
    }
    q += 32;
  }
}

// The 6-bit scale and min of sub-block j in the 12 packed bytes of Q4_K / Q5_K.
void scale_min_k4(int j, const u8* q, u8& d, u8& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = u8((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = u8((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K: f16 d, f16 dmin, scales[12], qs[128].
void q4_k(const u8* b, float* y) {
  const float d = half(b), min = half(b + 2);
  const u8* scales = b + 4;
  const u8* q = b + 16;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    u8 sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * float(sc), m1 = min * float(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * float(sc), m2 = min * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}

// Q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128].
void q5_k(const u8* b, float* y) {
  const float d = half(b), min = half(b + 2);
  const u8* scales = b + 4;
  const u8* qh = b + 16;
  const u8* ql = b + 48;
  u8 u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32) {
    u8 sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * float(sc), m1 = min * float(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * float(sc), m2 = min * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    u1 = u8(u1 << 2);
    u2 = u8(u2 << 2);
  }
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d.
void q6_k(const u8* b, float* y) {
  const u8* ql = b;
  const u8* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * float(sc[is]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

void plain(GgmlType type, const u8* b, float* y) {
  if (type == GgmlType::f32) {
    std::memcpy(y, b, 4);
  } else {
    uint16_t h;
    std::memcpy(&h, b, 2);
    *y = type == GgmlType::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

using BlockFn = void (*)(const u8*, float*);

BlockFn block_decoder(GgmlType type) {
  switch (type) {
    case GgmlType::q4_0: return q4_0;
    case GgmlType::q4_1: return q4_1;
    case GgmlType::q5_0: return q5_0;
    case GgmlType::q5_1: return q5_1;
    case GgmlType::q8_0: return q8_0;
    case GgmlType::q2_k: return q2_k;
    case GgmlType::q3_k: return q3_k;
    case GgmlType::q4_k: return q4_k;
    case GgmlType::q5_k: return q5_k;
    case GgmlType::q6_k: return q6_k;
    default: return nullptr;
  }
}

// Calls emit(first_element, values, n) for runs of decoded values, at most 256 at a time.
template <typename Emit>
void decode_blocks(GgmlType type, std::span<const std::byte> src, int64_t count, Emit emit) {
  const int64_t block = ggml_block_elements(type), bytes = ggml_block_bytes(type);
  DATTN_CHECK(count >= 0 && count % block == 0, "dequantize {}: {} elements are not whole blocks of {}",
              ggml_type_name(type), count, block);
  DATTN_CHECK(uint64_t(src.size()) == uint64_t(count / block) * uint64_t(bytes),
              "dequantize {}: {} elements need {} bytes, got {}", ggml_type_name(type), count,
              (count / block) * bytes, src.size());
  const u8* base = reinterpret_cast<const u8*>(src.data());
  const BlockFn fn = block_decoder(type);
  const int64_t blocks = count / block;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t first = 0; first < blocks; first += 256 / block) {
    float values[256];
    const int64_t n_blocks = std::min<int64_t>(256 / block, blocks - first);
    for (int64_t i = 0; i < n_blocks; ++i) {
      if (fn) fn(base + (first + i) * bytes, values + i * block);
      else plain(type, base + (first + i) * bytes, values + i * block);
    }
    emit(first * block, values, n_blocks * block);
  }
}

}  // namespace

void dequantize_to_f32(GgmlType type, std::span<const std::byte> src, int64_t count, float* dst) {
  decode_blocks(type, src, count, [&](int64_t at, const float* v, int64_t n) { std::memcpy(dst + at, v, size_t(n) * 4); });
}

void dequantize_to_bf16(GgmlType type, std::span<const std::byte> src, int64_t count, uint16_t* dst) {
  decode_blocks(type, src, count, [&](int64_t at, const float* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[at + i] = f32_to_bf16(v[i]);
  });
}

}  // namespace dattn::io
