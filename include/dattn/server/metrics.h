// The server's own counters and histograms, written with the engine's gauges in Prometheus' text format.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dattn::server {

struct EngineStats;

// A Prometheus histogram with fixed bucket bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // The _bucket, _sum and _count lines of metric `name`.
  std::string format(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  void observe_time_to_first_token(double seconds);
  void observe_request(double seconds, int64_t prompt_tokens, int64_t completion_tokens);
  void set_in_flight(int64_t requests);
  // All metrics, the engine's included, as the body of GET /metrics.
  std::string format(const EngineStats& engine) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram time_to_first_token_, request_duration_;
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  int64_t in_flight_ = 0;
};

}  // namespace dattn::server
