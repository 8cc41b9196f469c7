#include "stage_profiler.h"

#include <algorithm>

#include "device_buffer.h"

namespace dattn::model::cuda_detail {

StageProfiler::~StageProfiler() {
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
}

cudaEvent_t StageProfiler::event(size_t index) {
  while (pool_.size() <= index) {
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreate(&e), "creating a profiling event");
    pool_.push_back(e);
  }
  return pool_[index];
}

void StageProfiler::begin() {
  if (!enabled_) return;
  stages_.assign(1, nullptr);
  check_cuda(cudaEventRecord(event(0), stream_), "recording a profiling event");
}

void StageProfiler::mark(const char* stage) {
  if (!enabled_ || stages_.empty()) return;
  check_cuda(cudaEventRecord(event(stages_.size()), stream_), "recording a profiling event");
  stages_.push_back(stage);
}

void StageProfiler::collect() {
  if (!enabled_) return;
  for (size_t i = 1; i < stages_.size(); ++i) {
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, pool_[i - 1], pool_[i]), "reading a profiling event");
    auto it = std::find_if(totals_.begin(), totals_.end(), [&](const auto& t) { return t.first == stages_[i]; });
    if (it == totals_.end()) it = totals_.insert(totals_.end(), {stages_[i], 0.0});
    it->second += ms;
  }
  stages_.clear();
}

}  // namespace dattn::model::cuda_detail
