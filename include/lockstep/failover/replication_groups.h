// The replicated part of failover: which servers form each backend's replica group, which of
// them is the primary, and the primary's generation. Every Lockstep replica holds the same
// value because it changes only by GroupChange values applied in log order (the Paxos
// configuration state machine embeds it; see failover.h, "Wiring"), and apply() is a pure
// function of the value and the change: the same changes in the same order give byte-identical
// encodings everywhere.
//
// A primary change is a compare-and-set on the generation: a decision carries the generation
// it was made against, and apply() refuses it if the group changed meanwhile (another leader's
// decision, a switchover, Sentinel). So two leaders racing after a leadership change cannot
// fail a group over twice, and a decision delayed in the log cannot undo a newer one. The
// generation only grows; every server the group ever used stays listed (the old primary
// becomes a replica) until it is removed explicitly.
//
// Invariants apply() keeps: backend names and servers are non-empty, a server belongs to at
// most one group and appears once in it, a Lockstep-managed group always has a primary, the
// primary is not also listed as a replica. A refused change leaves the value untouched and
// returns an "ERR ..." text for the proposer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::failover {

struct Group {
  std::string primary;                // "" only for a Sentinel group whose primary is not yet known
  std::vector<std::string> replicas;  // every other server, in the order they joined
  uint64_t generation = 0;            // bumped by every primary change
  // Wall-clock time (unix ms, the proposer's clock) of the last primary change; 0 = never. Only
  // the failover rate limit reads it, to survive leader changes (see FailoverDecider).
  int64_t changed_at_ms = 0;
  bool sentinel = false;  // Sentinel decides the primary; Lockstep only records its choice

  // Primary first, then the replicas.
  std::vector<std::string> servers() const;
  bool contains(std::string_view server) const;
  bool operator==(const Group&) const = default;
};

struct GroupChange {
  enum class Kind : uint8_t {
    kDefine = 1,        // backend, server = primary, replicas, sentinel
    kRemove = 2,        // backend
    kSetPrimary = 3,    // backend, server = new primary, expected_generation, at_ms
    kAddServer = 4,     // backend, server (a new replica)
    kRemoveServer = 5,  // backend, server (not the primary)
  };
  Kind kind = Kind::kDefine;
  std::string backend;
  std::string server;
  std::vector<std::string> replicas;
  uint64_t expected_generation = 0;
  int64_t at_ms = 0;
  bool sentinel = false;
  bool operator==(const GroupChange&) const = default;

  static GroupChange define(std::string backend, std::string primary,
                            std::vector<std::string> replicas, bool sentinel = false);
  static GroupChange remove(std::string backend);
  static GroupChange set_primary(std::string backend, std::string primary,
                                 uint64_t expected_generation, int64_t at_ms);
  static GroupChange add_server(std::string backend, std::string server);
  static GroupChange remove_server(std::string backend, std::string server);

  // A primary change is a fence for the configuration lease (config_lease.h): the log entry
  // carrying it must be reported by acceptors as their highest accepted fence.
  bool is_fence() const { return kind == Kind::kSetPrimary; }
};

std::string encode_change(const GroupChange& change);
std::optional<GroupChange> decode_change(std::string_view bytes);

class ReplicationGroups {
 public:
  // Empty string when applied; otherwise "ERR ..." and the value is unchanged.
  std::string apply(const GroupChange& change);

  const std::map<std::string, Group, std::less<>>& groups() const { return groups_; }
  const Group* find(std::string_view backend) const;
  // The backend `server` belongs to, or nullptr.
  const std::string* backend_of(std::string_view server) const;

  std::string encode() const;
  // nullopt on malformed input, or input that breaks an invariant above.
  static std::optional<ReplicationGroups> decode(std::string_view bytes);

  bool operator==(const ReplicationGroups&) const = default;

 private:
  std::map<std::string, Group, std::less<>> groups_;
};

}  // namespace lockstep::failover
