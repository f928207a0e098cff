#include "server/stats/latency_monitor.h"

#include <algorithm>

namespace lockstep::server {

void LatencyMonitor::add(int64_t unix_time, uint64_t ms) {
  std::lock_guard lock(mu_);
  max_ = std::max(max_, ms);
  if (!samples_.empty() && samples_.back().unix_time == unix_time) {
    samples_.back().ms = std::max(samples_.back().ms, ms);
    return;
  }
  samples_.push_back({unix_time, ms});
  if (samples_.size() > 160) samples_.erase(samples_.begin());
}

bool LatencyMonitor::latest(Sample& last, uint64_t& max) const {
  std::lock_guard lock(mu_);
  if (samples_.empty()) return false;
  last = samples_.back();
  max = max_;
  return true;
}

std::vector<LatencyMonitor::Sample> LatencyMonitor::history() const {
  std::lock_guard lock(mu_);
  return samples_;
}

void LatencyMonitor::reset() {
  std::lock_guard lock(mu_);
  samples_.clear();
  max_ = 0;
}

}  // namespace lockstep::server
