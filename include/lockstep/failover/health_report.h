// What one Lockstep replica tells the leader about the servers it probes. Every replica sends
// its report every health interval (the leader "sends" one to itself); the failover decider
// counts only reports from voters that arrived recently, so a replica that stops reporting
// stops counting instead of voting with an old view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/failover/server_health.h"
#include "lockstep/failover/types.h"

namespace lockstep::failover {

struct ServerView {
  std::string server;
  bool up = false;  // answered within down_after_ms, as seen by the reporter
  // The last INFO replication the reporter read, kept after the server went down: a dead
  // primary's replicas are compared by the offsets they last reported.
  Role role = Role::kUnknown;
  std::string master;  // a replica's master, "host:port"
  bool link_up = false;
  int64_t offset = -1;
  bool operator==(const ServerView&) const = default;
};

struct HealthReport {
  ReplicaId from = 0;
  std::vector<ServerView> servers;
  const ServerView* find(std::string_view server) const;
  bool operator==(const HealthReport&) const = default;
};

ServerView make_view(const std::string& server, const ServerHealth& health, TimeMs now);

std::string encode_report(const HealthReport& report);
std::optional<HealthReport> decode_report(std::string_view bytes);

}  // namespace lockstep::failover
