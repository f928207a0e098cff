// One Lockstep replica's view of one redis-server: is it answering, what does it say about its
// replication, and how far away is it.
//
// A server is up while it answered something within down_after_ms: a PING (+PONG, and also
// -LOADING and -MASTERDOWN, which Sentinel counts as alive too: the process runs and will serve),
// an INFO replication probe, or any reply on live traffic. It is down once nothing answered for
// down_after_ms. Failures (refused or reset connections, timeouts, unusable replies) are counted
// and remembered for LOCKSTEP BACKEND LIST, but never make a server down by themselves: a
// restart refuses a few connections, and one Lockstep replica's view decides nothing anyway (the
// failover decider needs a majority of views). Before the first answer the server is presumed up
// for down_after_ms from the tracker's creation, so a Lockstep start is not a mass "down" event.
//
// Time comes in with every call (monotonic ms); latency in microseconds, because on one host a
// round trip is a fraction of a millisecond and `read_from: nearest` must still tell servers
// apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lockstep/failover/replication_info.h"
#include "lockstep/failover/types.h"

namespace lockstep::failover {

// How a driver should read a PING reply's first line: proof of life or a failure.
// "+PONG", "-LOADING ...", "-MASTERDOWN ..." are life; any other error (say -NOAUTH after a
// restart with a new password) is a failure.
bool ping_reply_is_alive(std::string_view reply_line);

class ServerHealth {
 public:
  ServerHealth(TimeMs now, TimeMs down_after_ms);

  // An answer (PING reply that is alive, or any reply on live traffic). rtt_us < 0 = unmeasured.
  void on_reply(TimeMs now, int64_t rtt_us = -1);
  // No usable answer: connection refused or reset, a timeout, a reply that is not alive.
  void on_failure(TimeMs now, std::string why);
  // An INFO replication reply to a probe sent at `sent_at`. It is an answer too.
  void on_info(TimeMs sent_at, TimeMs now, ReplicationInfo info, int64_t rtt_us = -1);

  bool up(TimeMs now) const { return now - last_answer_at_ < down_after_ms_; }
  // How long since the last answer (or since creation, before the first).
  TimeMs silent_for(TimeMs now) const { return now - last_answer_at_; }
  bool ever_answered() const { return ever_answered_; }

  // The last good INFO replication, and when its probe was sent (the server's state is at
  // least that recent). Kept while the server is down: the decider needs a dead primary's
  // replicas' last offsets, and a returning server's role is re-read before it is trusted.
  const std::optional<ReplicationInfo>& info() const { return info_; }
  TimeMs info_sent_at() const { return info_sent_at_; }
  Role role() const { return info_ ? info_->role : Role::kUnknown; }

  // Smoothed round-trip time in microseconds (EWMA, 1/5 weight to the newest), -1 = unknown.
  int64_t latency_us() const { return latency_us_; }
  uint64_t answers() const { return answers_; }
  uint64_t failures() const { return failures_; }
  uint32_t consecutive_failures() const { return consecutive_failures_; }
  const std::string& last_failure() const { return last_failure_; }

 private:
  void answered(TimeMs now, int64_t rtt_us);

  TimeMs down_after_ms_;
  TimeMs last_answer_at_;
  bool ever_answered_ = false;
  std::optional<ReplicationInfo> info_;
  TimeMs info_sent_at_ = 0;
  int64_t latency_us_ = -1;
  uint64_t answers_ = 0;
  uint64_t failures_ = 0;
  uint32_t consecutive_failures_ = 0;
  std::string last_failure_;
};

}  // namespace lockstep::failover
