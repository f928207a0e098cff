// What a redis-server says about its replication, parsed from the text of `INFO replication`.
//
// The parser is a plain function of the reply's text so it can be fuzzed and unit-tested with
// real servers' output. It reads the fields the failover cores decide on and ignores every other
// line (servers add fields between versions: Redis 7 added slave_read_repl_offset, Valkey
// renames nothing yet but may). A field it does read must be well-formed: a role it does not
// know, a number with trailing garbage or a `slaveN` line without ip/port/offset makes the whole
// reply an error, because a failover decided on a misread offset could promote the wrong
// replica. It never throws and never allocates more than the input's size.
//
// Facts the fields rest on (redis-server 7.0, checked against a running primary and replica):
//   primary:  role:master, connected_slaves:N, slaveK:ip=..,port=..,state=online,offset=..,lag=..
//             master_replid, master_repl_offset (bytes of replication stream produced)
//   replica:  role:slave, master_host, master_port, master_link_status:up|down,
//             master_last_io_seconds_ago (-1 when down), master_sync_in_progress:0|1,
//             slave_repl_offset (bytes processed), master_link_down_since_seconds (when down),
//             master_replid (the primary's, while it replicates), master_repl_offset
// `slaveK:ip` is the address the primary sees the replica connect from (or its
// replica-announce-ip) and `port` its listening port, so it need not match the configured name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/failover/types.h"

namespace lockstep::failover {

// One `slaveK:` line of a primary.
struct ReplicaLine {
  std::string ip;
  uint16_t port = 0;
  std::string state;  // online, wait_bgsave, send_bulk, ...
  int64_t offset = 0;
  int64_t lag_s = 0;  // seconds since the replica's last REPLCONF ACK
  bool operator==(const ReplicaLine&) const = default;
};

struct ReplicationInfo {
  Role role = Role::kUnknown;
  // Replica side (role kReplica).
  std::string master_host;
  uint16_t master_port = 0;
  bool master_link_up = false;
  int64_t master_last_io_s = -1;
  int64_t master_link_down_since_s = -1;
  bool sync_in_progress = false;
  int64_t replica_offset = -1;  // slave_repl_offset: bytes of the primary's stream applied
  // Both sides.
  std::string replid;  // master_replid
  int64_t master_repl_offset = -1;
  int connected_replicas = 0;
  std::vector<ReplicaLine> replicas;  // primary only

  // The master this replica follows, "host:port" ("" unless role kReplica).
  std::string master_address() const;
  // The replication offset that says how much of the stream this server holds: the primary's
  // master_repl_offset, a replica's slave_repl_offset; -1 when unknown.
  int64_t offset() const;
  bool operator==(const ReplicationInfo&) const = default;
};

struct ParsedReplicationInfo {
  std::optional<ReplicationInfo> info;
  std::string error;  // "ERR ..." when info is empty
};

// Parses the text of an `INFO replication` (or full `INFO`) reply: "key:value" lines separated
// by "\r\n" or "\n", "# Section" headers and blank lines skipped.
ParsedReplicationInfo parse_replication_info(std::string_view text);

}  // namespace lockstep::failover
