// parallel_for on OpenMP's persistent thread team (no thread creation per call), dynamic schedule.
#include "dattn/core/threads.h"

#include "dattn/core/error.h"

#include <omp.h>

#include <atomic>
#include <charconv>
#include <string_view>
#include <cstdlib>
#include <exception>
#include <mutex>

namespace dattn {

int default_num_threads() {
  if (const char* env = std::getenv("DATTN_NUM_THREADS"); env && *env) {
    const std::string_view text(env);
    int n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    DATTN_CHECK(ec == std::errc() && end == text.data() + text.size() && n >= 1 && n <= kMaxThreads,
                "DATTN_NUM_THREADS='{}' is not a thread count (allowed: 1 .. {})", text.substr(0, 40), kMaxThreads);
    return n;
  }
  return omp_get_num_procs();
}

void parallel_for(int64_t count, int num_threads, const std::function<void(int64_t, int)>& body) {
  if (count <= 0) return;
  int threads = num_threads > 0 ? num_threads : default_num_threads();
  if (threads > count) threads = int(count);
  if (threads <= 1) {
    for (int64_t i = 0; i < count; ++i) body(i, 0);
    return;
  }
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < count; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      body(i, omp_get_thread_num());
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace dattn
