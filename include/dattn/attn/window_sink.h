// The window + sink geometry (spec "The pieces"), written once for every backend and for host and device
// code: which keys a row sees, which key blocks a run of rows visits, and when a block needs no mask.
// Templated on the integer type: the host works in int64_t (window and sink go up to INT64_MAX), the CUDA
// kernels in 32-bit int (cheaper index arithmetic; the host clamps window and sink to n_kv + 1 < 2^30
// first). Plain C++17, no CUDA headers: nvcc sees the functions as __host__ __device__.
#pragma once

#ifdef __CUDACC__
#define DATTN_HOST_DEVICE __host__ __device__
#else
#define DATTN_HOST_DEVICE
#endif

namespace dattn::window_sink {

// A row at position pos sees key j <= pos with j < sink (the sink) or pos - j < window (the window).
template <typename Int>
DATTN_HOST_DEVICE constexpr bool sees_key(Int key, Int pos, Int window, Int sink) {
  return key <= pos && (key < sink || key > pos - window);
}

// The same keys as two ranges, [0, sink_end) and [window_begin, pos], that never overlap (window_begin >=
// sink_end), so each key counts once.
template <typename Int>
struct RowKeyRanges {
  Int sink_end, window_begin;
};
template <typename Int>
DATTN_HOST_DEVICE constexpr RowKeyRanges<Int> row_key_ranges(Int pos, Int window, Int sink) {
  const Int sink_end = sink < pos + 1 ? sink : pos + 1;
  const Int window_begin = pos - window + 1;
  return {sink_end, window_begin < sink_end ? sink_end : window_begin};
}

// Key blocks of `block` keys (block b holds keys [b * block, (b + 1) * block)) that rows at positions
// [pos_first, pos_last] see: [0, sink_blocks) and [window_block, last_block]. When window_block <=
// sink_blocks the two touch or overlap and every block up to last_block is visited.
template <typename Int>
struct KeyBlocks {
  Int sink_blocks, window_block, last_block;
};
template <typename Int>
DATTN_HOST_DEVICE constexpr KeyBlocks<Int> key_blocks(Int pos_first, Int pos_last, Int window, Int sink, Int block) {
  const Int sink_keys = sink < pos_last + 1 ? sink : pos_last + 1;
  const Int window_first = pos_first - window + 1 > 0 ? pos_first - window + 1 : 0;  // first key any window reaches
  return {(sink_keys + block - 1) / block, window_first / block, pos_last / block};
}

// Does some row of `rows` rows at positions pos_first + r * step see a key of [key_first, key_first + block)?
// Rows gathered with a stride (the anchors, gamma apart) leave whole blocks between their windows unseen.
template <typename Int>
DATTN_HOST_DEVICE constexpr bool strided_rows_see_block(Int pos_first, Int step, Int rows, Int key_first, Int block,
                                                         Int window, Int sink) {
  if (key_first < sink) return true;
  const Int lo = key_first, hi = key_first + block - 1 + window - 1;  // positions whose window reaches the block
  const Int r = lo <= pos_first ? 0 : (lo - pos_first + step - 1) / step;  // first row at or past lo
  return r < rows && pos_first + r * step <= hi;
}

// Does every row at positions [pos_first, pos_last] see every key of [key_first, key_last]? Then a tile of
// those rows and keys needs no per-element mask.
template <typename Int>
DATTN_HOST_DEVICE constexpr bool rows_see_all_keys(Int pos_first, Int pos_last, Int key_first, Int key_last,
                                                   Int window, Int sink) {
  return key_last <= pos_first && (key_last < sink || key_first > pos_last - window);
}

}  // namespace dattn::window_sink
