#include "server/stats/error_counters.h"

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

}  // namespace lockstep::server
