#include "lockstep/failover/replication_lag.h"

#include <algorithm>

namespace lockstep::failover {

void ReplicationLag::on_primary_offset(TimeMs sent_at, int64_t offset) {
  if (offset < 0) return;
  if (!samples_.empty()) {
    const Sample& last = samples_.back();
    if (offset < last.offset) {
      samples_.clear();  // a new stream
    } else if (sent_at < last.sent_at) {
      return;  // a reply to an older probe, overtaken: it adds nothing
    } else if (offset == last.offset) {
      // Same offset later: the primary had nothing new, so the later time is the better bound.
      samples_.back().sent_at = sent_at;
      return;
    }
  }
  if (samples_.size() == kSamples) samples_.erase(samples_.begin());
  samples_.push_back({sent_at, offset});
}

std::optional<TimeMs> ReplicationLag::staleness(int64_t replica_offset, TimeMs now) const {
  // The newest sample the replica has caught up with.
  auto it = std::upper_bound(samples_.begin(), samples_.end(), replica_offset,
                             [](int64_t offset, const Sample& s) { return offset < s.offset; });
  if (it == samples_.begin()) return std::nullopt;
  --it;
  return std::max<TimeMs>(0, now - it->sent_at);
}

}  // namespace lockstep::failover
