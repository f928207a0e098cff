// LATENCY's "command" event: requests slower than latency.monitor_threshold_ms, one sample per
// second (the worst of that second), the last 160 kept, as Redis keeps them.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace lockstep::server {

class LatencyMonitor {
 public:
  struct Sample {
    int64_t unix_time;
    uint64_t ms;
  };
  void add(int64_t unix_time, uint64_t ms);
  bool latest(Sample& last, uint64_t& max) const;
  std::vector<Sample> history() const;
  void reset();

 private:
  mutable std::mutex mu_;
  std::vector<Sample> samples_;
  uint64_t max_ = 0;
};

}  // namespace lockstep::server
