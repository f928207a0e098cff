// Multi-Paxos for one replica, as a deterministic state machine: no sockets, clocks, threads
// or randomness inside. See src/consensus/paxos_core.cpp for the design and the guarantees.
//
// Driving it (the etcd/raft Ready pattern):
//
//   LogStorage::open(...)            -> RecoveredState
//   restore the state machine from recovered.snapshot.data
//   PaxosCore core(options, recovered);
//   loop:
//     core.tick()                    every tick (e.g. 10 ms of a monotonic clock)
//     core.step(msg)                 for every message a peer sent to us
//     core.propose(...) / propose_membership(...) / read_index(...)
//     while (core.has_ready()) {
//       Ready r = core.ready();
//       1. if r.snapshot: storage.save_snapshot(*r.snapshot); restore the SM from it
//       2. storage.save(r.hard_state, r.entries)        (durable before any message goes out)
//       3. send r.messages
//       4. apply r.committed in order (ack proposals whose ProposalId is yours)
//       5. answer r.reads (the SM has applied up to each read's index); fail r.dropped
//       core.advance();
//     }
//   from time to time: Snapshot s = core.compact(core.applied_index(), sm.snapshot());
//                      storage.save_snapshot(s);
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lockstep/consensus/log_storage.h"
#include "lockstep/consensus/types.h"

namespace lockstep::consensus {

struct PaxosOptions {
  NodeId id = 0;
  uint32_t heartbeat_ticks = 1;  // leader heartbeat period
  uint32_t election_ticks = 10;  // a follower campaigns after [election, 2*election) silent ticks
  uint64_t random_seed = 0;      // picks those timeouts; give each replica a different seed
  size_t max_batch = 64;         // entries per Accept / Learn message
  size_t max_inflight = 256;     // slots in phase 2 at once
};

// A read-index request settled: ok means the state machine has applied at least `index`,
// which covers every change chosen before read_index() was called, so a local read is now
// linearizable. !ok: leadership was lost before a quorum confirmed it; retry elsewhere.
struct ReadState {
  uint64_t read_id = 0;
  uint64_t index = 0;
  bool ok = false;
};

// A proposal this replica queued but never put in a slot (leadership lost, or a membership
// change that became invalid). It was not chosen and never will be: safe to retry.
struct Dropped {
  ProposalId id;
  std::string error;
};

struct Ready {
  std::optional<Snapshot> snapshot;  // installed from the leader: persist, restore the SM
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;     // accepted entries to persist (same index: later wins)
  std::vector<Message> messages;  // send only after snapshot, hard_state, entries are durable
  std::vector<Entry> committed;   // chosen entries to apply, consecutive indexes
  std::vector<ReadState> reads;
  std::vector<Dropped> dropped;
  bool empty() const {
    return !snapshot && !hard_state && entries.empty() && messages.empty() && committed.empty() &&
           reads.empty() && dropped.empty();
  }
};

enum class Role : uint8_t { kFollower, kCandidate, kLeader };

struct ProposeResult {
  enum class Status : uint8_t { kQueued, kNotLeader, kRejected };
  Status status = Status::kQueued;
  NodeId leader = 0;  // kNotLeader: the leader this replica knows of, 0 if none
  std::string error;  // kRejected: a Redis error text
  bool queued() const { return status == Status::kQueued; }
};

class PaxosCore {
 public:
  PaxosCore(const PaxosOptions& options, const RecoveredState& recovered);

  // --- inputs ---
  void tick();
  void step(const Message& m);
  // Start phase 1 now instead of waiting for the election timeout (e.g. a cluster of one at
  // start-up). Ignored unless this replica is a voter.
  void campaign();
  // Queue a command on the leader. It is acknowledged when an entry with this id appears in
  // Ready::committed (on every replica). On a follower: kNotLeader with the leader's id, and
  // the driver forwards the proposal there.
  ProposeResult propose(ProposalId id, std::string data);
  // One membership change at a time; kRejected while another is in progress or if invalid.
  // Added replicas start as learners and the leader promotes them once caught up.
  ProposeResult propose_membership(ProposalId id, const MembershipChange& change);
  // Linearizable read: settled in Ready::reads once a quorum confirmed this leadership and
  // the state machine caught up. kNotLeader on followers.
  ProposeResult read_index(uint64_t read_id);
  // Drop log entries up to `index` (<= applied_index()) behind a snapshot of the state machine
  // at that index; returns the snapshot for LogStorage::save_snapshot.
  Snapshot compact(uint64_t index, std::string app_data);

  // --- outputs ---
  bool has_ready() const;
  Ready ready();
  void advance();  // everything in the last Ready was persisted, sent and applied

  // --- observers ---
  NodeId id() const { return opt_.id; }
  Role role() const { return role_; }
  NodeId leader() const { return leader_; }
  Ballot promised() const { return promised_; }
  uint64_t commit_index() const { return commit_; }
  uint64_t applied_index() const { return applied_; }
  uint64_t snapshot_index() const { return snapshot_.index; }
  const Membership& membership() const { return membership_; }
  bool is_voter() const { return membership_.is_voter(opt_.id); }
  // One line of internal state for logs and failing tests.
  std::string describe() const;

 private:
  struct Queued {
    Entry entry;
    std::optional<MembershipChange> change;
  };
  struct Peer {
    uint64_t commit = 0;
    uint64_t last_heard = 0;  // tick of the last reply in our ballot
    uint64_t read_seq = 0;    // highest read round it confirmed
  };
  struct PendingRead {
    uint64_t id = 0;
    uint64_t index = 0;
    uint64_t seq = 0;
    std::vector<NodeId> acks;
  };

  // acceptor
  void on_prepare(const Message& m);
  void on_accept(const Message& m);
  void on_heartbeat(const Message& m);
  void on_learn(const Message& m);
  bool adopt_ballot(const Message& m);  // false (and a Reject sent) if m.ballot is stale
  void follow(NodeId leader);
  void apply_commit_hint(Ballot b, uint64_t commit);
  void learn_chosen(const Entry& e);
  void install_snapshot(const Snapshot& s);
  void store(const Entry& e);
  bool is_chosen(uint64_t index) const;
  void advance_commit();
  void on_membership(const Membership& m, uint64_t index);
  Membership membership_at(uint64_t index) const;

  // proposer
  void on_promise(const Message& m);
  void on_accepted(const Message& m);
  void on_heartbeat_ack(const Message& m);
  void on_reject(const Message& m);
  void become_leader();
  void step_down();
  void pump();
  bool has_promise_quorum() const;
  void request_promises();
  void broadcast_heartbeat();
  void resend_accepts();
  void send_catch_up(NodeId to, uint64_t their_commit);
  void check_reads();
  Message to(NodeId peer, MsgType t) const;
  void send(Message m) { out_messages_.push_back(std::move(m)); }
  void reset_timeout();
  uint64_t next_random();

  PaxosOptions opt_;
  uint64_t rng_;

  // acceptor and learner state
  Ballot promised_;
  bool hard_state_dirty_ = false;
  std::map<uint64_t, Entry> log_;  // accepted entries above snapshot_.index
  std::set<uint64_t> chosen_above_;
  Snapshot snapshot_;
  uint64_t commit_ = 0;
  uint64_t handed_ = 0;   // last index handed out in Ready::committed
  uint64_t applied_ = 0;  // last index the driver confirmed applied (advance)
  Membership membership_;
  uint64_t membership_index_ = 0;  // slot of the membership entry membership_ came from
  std::vector<std::pair<uint64_t, Membership>> membership_log_;  // changes above the snapshot
  uint64_t max_round_ = 0;

  // role
  Role role_ = Role::kFollower;
  NodeId leader_ = 0;
  uint64_t ticks_ = 0;
  uint32_t elapsed_ = 0;  // ticks since we heard from a leader (or started campaigning)
  uint32_t timeout_ = 0;
  uint32_t heartbeat_elapsed_ = 0;

  // candidate / leader
  Ballot ballot_;
  uint64_t from_index_ = 0;
  std::vector<NodeId> promisers_;
  std::map<uint64_t, Entry> recovered_;
  uint64_t next_index_ = 0;
  uint64_t own_noop_ = 0;  // first slot this leadership filled itself; 0 = not yet
  uint64_t barrier_ = 0;   // slot of the membership entry in flight; 0 = none
  uint64_t leader_since_ = 0;
  std::map<uint64_t, std::vector<NodeId>> votes_;  // unchosen slots in flight -> who accepted
  std::deque<Queued> queue_;
  std::map<NodeId, Peer> peers_;
  uint64_t read_seq_ = 0;
  uint64_t announced_commit_ = 0;  // highest commit index sent in an Accept or Heartbeat
  std::vector<PendingRead> reads_;
  std::vector<ReadState> confirmed_reads_;

  // outputs since the last ready()
  std::optional<Snapshot> out_snapshot_;
  std::vector<Entry> out_entries_;
  std::vector<Message> out_messages_;
  std::vector<ReadState> out_reads_;
  std::vector<Dropped> out_dropped_;
};

}  // namespace lockstep::consensus
