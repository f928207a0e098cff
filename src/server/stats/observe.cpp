#include "server/stats/observe.h"

#include <algorithm>

namespace lockstep::server {

std::string_view error_kind(std::string_view e) {
  if (e.starts_with('-')) e.remove_prefix(1);
  const std::string_view word = e.substr(0, e.find_first_of(" \r\n"));
  if (word.empty() || word.size() > 32) return "ERR";
  for (char c : word)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return "ERR";
  return word;
}

void ErrorCounters::count(std::string_view error_reply) {
  const std::string_view kind = error_kind(error_reply);
  std::lock_guard lock(mu_);
  auto it = counts_.find(kind);
  if (it == counts_.end())
    it = counts_.emplace(counts_.size() < kMaxKinds ? std::string(kind) : "OTHER", 0).first;
  ++it->second;
}

void ErrorCounters::add_to(std::map<std::string, uint64_t>& totals) const {
  std::lock_guard lock(mu_);
  for (const auto& [kind, n] : counts_) totals[kind] += n;
}

void ErrorCounters::reset() {
  std::lock_guard lock(mu_);
  counts_.clear();
}

void SlowLog::add(SlowLogEntry entry, size_t max_len) {
  std::lock_guard lock(mu_);
  entry.id = next_id_++;
  entries_.push_back(std::move(entry));
  if (entries_.size() > max_len)
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<long>(entries_.size() - max_len));
}

std::vector<SlowLogEntry> SlowLog::get(size_t count) const {
  std::lock_guard lock(mu_);
  std::vector<SlowLogEntry> out;
  for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < count; ++it)
    out.push_back(*it);
  return out;
}

size_t SlowLog::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void SlowLog::reset() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

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
