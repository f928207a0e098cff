// Values exchanged between PaxosCore, LogStorage and the driver: ballots, log entries,
// membership, snapshots, the acceptor's hard state and the peer messages. Plain data, no
// behaviour beyond ordering and lookups; codec.h turns them into bytes.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::consensus {

// Replica identity inside one cluster. 0 means "none"; ids are never reused.
using NodeId = uint64_t;

// A Paxos ballot: (round, proposer). Ballots of different proposers never tie.
struct Ballot {
  uint64_t round = 0;
  NodeId node = 0;
  auto operator<=>(const Ballot&) const = default;
  bool is_zero() const { return round == 0 && node == 0; }
};

// Who asked for an entry, so the proposer can match the acknowledgement. {0,0} for entries
// the core makes itself (no-ops, learner promotions).
struct ProposalId {
  NodeId origin = 0;
  uint64_t seq = 0;
  auto operator<=>(const ProposalId&) const = default;
};

enum class EntryType : uint8_t {
  kNoop = 0,        // written by a new leader; nothing to apply
  kCommand = 1,     // opaque bytes for the application's state machine
  kMembership = 2,  // data = encoded Membership: the whole replica set after the change
};

struct Entry {
  uint64_t index = 0;  // log slot, from 1
  Ballot ballot;       // ballot it was accepted in (on this acceptor)
  EntryType type = EntryType::kNoop;
  ProposalId id;
  std::string data;
  bool operator==(const Entry&) const = default;
  // Same proposed value (the ballot may differ when a later leader re-proposed it).
  bool same_value(const Entry& o) const {
    return index == o.index && type == o.type && id == o.id && data == o.data;
  }
};

struct Member {
  NodeId id = 0;
  std::string address;
  bool voter = false;  // false: learner, receives the log but neither votes nor campaigns
  bool operator==(const Member&) const = default;
};

// The replica set. `retired` remembers every removed id so it can never be added again.
struct Membership {
  std::vector<Member> members;  // sorted by id
  std::vector<NodeId> retired;  // sorted
  bool operator==(const Membership&) const = default;

  const Member* find(NodeId id) const;
  bool is_voter(NodeId id) const;
  size_t voters() const;
  // True if `ids` holds a majority of the voters.
  bool is_quorum(const std::vector<NodeId>& ids) const;
};

// One change at a time, as the core proposes them.
struct MembershipChange {
  enum class Kind : uint8_t { kAddLearner = 0, kPromote = 1, kRemove = 2 };
  Kind kind = Kind::kAddLearner;
  NodeId id = 0;
  std::string address;  // kAddLearner only
};

// The change applied to `m`, or an error text (unknown id, id already used, ...).
struct MembershipResult {
  std::optional<Membership> membership;
  std::string error;
};
MembershipResult apply_change(const Membership& m, const MembershipChange& c);

// A state-machine image covering every log slot up to `index`.
struct Snapshot {
  uint64_t index = 0;
  Membership membership;  // as of `index`
  std::string data;       // the application's bytes (ConfigStateMachine::snapshot)
  bool operator==(const Snapshot&) const = default;
};

// What an acceptor must remember across crashes besides its entries.
struct HardState {
  Ballot promised;      // highest ballot promised; never decreases
  uint64_t commit = 0;  // highest slot known chosen with every slot below it (a hint: may lag)
  bool operator==(const HardState&) const = default;
};

enum class MsgType : uint8_t {
  kPrepare = 1,       // phase 1a: ballot, index = first slot asked about
  kPromise = 2,       // phase 1b: entries accepted at or above that slot, commit, maybe snapshot
  kAccept = 3,        // phase 2a: entries to accept in `ballot`, commit = leader's commit
  kAccepted = 4,      // phase 2b: indexes accepted (entries carry only .index)
  kReject = 5,        // ballot = the higher ballot the acceptor promised
  kHeartbeat = 6,     // leader alive; commit; read_seq for read-index rounds
  kHeartbeatAck = 7,  // commit = follower's commit; read_seq echoed
  kLearn = 8,         // catch-up: chosen entries (and/or a snapshot) for a lagging replica
};

struct Message {
  MsgType type = MsgType::kHeartbeat;
  NodeId from = 0;
  NodeId to = 0;
  Ballot ballot;
  uint64_t index = 0;
  uint64_t commit = 0;
  uint64_t read_seq = 0;
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;
  bool operator==(const Message&) const = default;
};

}  // namespace lockstep::consensus
