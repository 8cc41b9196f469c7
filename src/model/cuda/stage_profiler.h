// Optional per-stage GPU time of the forward pass (GEMMs, attention, norms, ...), measured with CUDA
// events recorded between the stages on the session's stream: off by default, since every mark costs
// an event record and the totals need a sync to read.
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <utility>
#include <vector>

namespace dattn::model::cuda_detail {

class StageProfiler {
 public:
  explicit StageProfiler(cudaStream_t stream) : stream_(stream) {}
  ~StageProfiler();
  StageProfiler(const StageProfiler&) = delete;
  StageProfiler& operator=(const StageProfiler&) = delete;

  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }
  // Starts the timeline of one forward pass.
  void begin();
  // The GPU work queued since the previous mark belongs to `stage`.
  void mark(const char* stage);
  // After the stream is synchronised: adds the pass's intervals to the totals.
  void collect();
  // Milliseconds per stage since the last clear, in order of first appearance.
  const std::vector<std::pair<std::string, double>>& totals() const { return totals_; }
  void clear() { totals_.clear(); }

 private:
  cudaEvent_t event(size_t index);
  cudaStream_t stream_;
  bool enabled_ = false;
  std::vector<cudaEvent_t> pool_;
  std::vector<const char*> stages_;  // stage of the interval ending at event i (i >= 1)
  std::vector<std::pair<std::string, double>> totals_;
};

}  // namespace dattn::model::cuda_detail
