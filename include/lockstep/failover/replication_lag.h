// How stale a replica is, in milliseconds, from replication offsets alone.
//
// Redis reports a replica's lag in whole seconds (`slaveK:lag`, the age of its last REPLCONF
// ACK) or not at all, while `read_max_lag_ms` is in milliseconds. Offsets are exact, so the
// staleness is derived from them: every INFO probe of the primary records (time the probe was
// sent, master_repl_offset). The primary's offset at that send time was at most the value it
// reported, so a replica whose slave_repl_offset is >= that value holds everything the primary
// held at that moment: it is at most `now - sent_at` stale. The newest such sample gives the
// tightest bound. The estimate errs on the stale side by up to one probe interval, never on
// the fresh side, so a replica estimated within read_max_lag_ms really is.
//
// A replica older than every sample kept (about 25 s of history at the default interval) has
// unknown staleness: callers treat it as too stale. A primary offset that goes backwards means
// a new replication stream (restart, failover): history is dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "lockstep/failover/types.h"

namespace lockstep::failover {

class ReplicationLag {
 public:
  static constexpr size_t kSamples = 256;

  // The primary reported `offset` to a probe sent at `sent_at`.
  void on_primary_offset(TimeMs sent_at, int64_t offset);
  // Upper bound on how far behind (ms, at `now`) a replica whose offset is `replica_offset` is;
  // nullopt when no sample is old enough to tell.
  std::optional<TimeMs> staleness(int64_t replica_offset, TimeMs now) const;
  // The primary changed: offsets of the old stream say nothing about the new one.
  void reset() { samples_.clear(); }
  bool empty() const { return samples_.empty(); }

 private:
  struct Sample {
    TimeMs sent_at;
    int64_t offset;
  };
  std::vector<Sample> samples_;  // oldest first; sent_at and offset never decrease
};

}  // namespace lockstep::failover
