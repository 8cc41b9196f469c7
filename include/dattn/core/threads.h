// Thread policy: one shared pool; parallel_for hands out indices dynamically so that work items of
// unequal cost (causal attention rows) balance across threads.
#pragma once
#include <cstdint>
#include <functional>

namespace dattn {

// The most threads any call accepts (thread counts from flags and DATTN_NUM_THREADS are checked against it).
inline constexpr int kMaxThreads = 4096;

// Number of worker threads used when a caller passes 0 (DATTN_NUM_THREADS or hardware concurrency).
// Throws dattn::Error when DATTN_NUM_THREADS is set but is not an integer in 1 .. kMaxThreads.
int default_num_threads();

// Calls body(index, thread_id) for index in [0, count) on up to num_threads threads (0 = default).
// Indices are claimed one at a time in increasing order: give costlier items lower indices.
// Exceptions thrown by body are rethrown in the caller after all threads stop.
void parallel_for(int64_t count, int num_threads, const std::function<void(int64_t, int)>& body);

}  // namespace dattn
