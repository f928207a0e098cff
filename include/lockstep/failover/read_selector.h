// Which server of a group serves a read, under `read_from`.
//
// The data plane calls pick() for read-only commands outside MULTI and WATCH (writes always go
// to the primary). A replica may serve only if it is up, its last INFO says it replicates from
// the group's current primary with the link up, and its estimated staleness
// (replication_lag.h) is known and within read_max_lag_ms. Among the servers a policy allows,
// the one with the fewest requests outstanding wins; `nearest` picks the lowest smoothed latency
// instead, outstanding requests breaking ties. Remaining ties rotate, so idle replicas share
// the load instead of the first one taking all of it.
//
//   primary          the primary
//   prefer-replica   an eligible replica, else the primary
//   replica          an eligible replica only (reads fail rather than touch the primary)
//   nearest          any eligible server, the primary included
//
// What a replica read may miss: writes acknowledged up to read_max_lag_ms (plus one health
// interval of estimate error) before the read, including the client's own previous write.
// Clients that need read-your-writes use read_from primary (or the connection's READWRITE).
//
// No server qualifies: an "ERR ..." naming each server and why, so a client sees e.g. "every
// server of backend 'b1' is down" rather than a timeout. Other backends are unaffected.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lockstep/failover/types.h"

namespace lockstep::failover {

enum class ReadFrom : uint8_t { kPrimary, kPreferReplica, kReplica, kNearest };
std::optional<ReadFrom> parse_read_from(std::string_view text);  // the config's spelling
std::string_view read_from_name(ReadFrom policy);

struct ReadCandidate {
  std::string_view server;
  bool is_primary = false;
  bool up = false;
  // Replicas: replicates from the current primary with the link up (INFO replication).
  bool replicating = false;
  std::optional<TimeMs> staleness_ms;  // replicas: ReplicationLag::staleness
  uint32_t outstanding = 0;            // requests in flight on this worker
  int64_t latency_us = -1;             // ServerHealth::latency_us
};

struct ReadChoice {
  int index = -1;     // into the candidates; -1 = none
  std::string error;  // "ERR ..." when none
  bool ok() const { return index >= 0; }
};

class ReadSelector {
 public:
  ReadChoice pick(std::string_view backend, ReadFrom policy,
                  std::span<const ReadCandidate> candidates, TimeMs max_lag_ms);

 private:
  uint32_t rotation_ = 0;
};

}  // namespace lockstep::failover
