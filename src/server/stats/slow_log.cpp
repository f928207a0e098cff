#include "server/stats/slow_log.h"

namespace lockstep::server {

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

}  // namespace lockstep::server
