// Carries out the committed primary of a group on the redis-servers, idempotently: the
// failover executor.
//
// The log entry "backend X: primary is P (generation g)" is the truth; the reconciler compares it
// with what every server last said in INFO replication and emits the REPLICAOF commands that
// close the gap:
//   P says role replica              -> REPLICAOF NO ONE on P (after the lease wait, see below)
//   S != P says role master, or      -> REPLICAOF P on S, once P is a primary
//   follows a master other than P
// Nothing else is ever sent, and nothing is sent to a server whose last INFO already agrees,
// so running it again -- a new leader after a crash in the middle of a failover, or every health
// interval in steady state -- repeats only the steps not yet done. Both commands are idempotent
// on the server too (REPLICAOF NO ONE on a primary and REPLICAOF to the current master answer
// OK and change nothing).
//
// The same rule covers the faults around a failover:
//   - the old primary comes back (restarted, or its network healed) saying role master: it is
//     re-pointed at P as soon as its first INFO arrives. The data plane sends it nothing before
//     that, because it routes writes only to P and reads only to servers whose INFO says they
//     replicate from P with the link up (read_selector.h);
//   - a replica promoted by hand behind Lockstep's back says role master: it is re-pointed, and
//     the action's `why` says so (the log is the truth: use LOCKSTEP FAILOVER to switch);
//   - a server that is down is skipped and listed in status().waiting_for until it answers.
// At most one command per server is in flight; after a reply (or a failure), that server is
// looked at again only with an INFO probe sent after the reply, so a command is never repeated
// on stale information.
//
// PROMOTION GATE. P is promoted no earlier than promote_not_before (ConfigLease::
// promotion_not_before from the apply time: every lease that let another Lockstep replica write
// to the old primary has run out). Then, before promoting, every other reachable replica of the
// same stream is read again (INFO probes sent after the gate): if one holds a higher offset than
// P -- writes kept arriving through a cut-off Lockstep replica until its lease ran out, and with
// `durability: replica` one of them may be an acknowledged write only that replica has -- the
// state is kCandidateBehind and `better` names it; the leader re-decides for it
// (FailoverDecider::redirect) instead of promoting P and discarding that replica's stream.
//
// WHO RUNS IT: only the leader, only while it holds its configuration lease (so a stale leader
// that has not applied a newer primary acts on nothing: while its lease is valid no newer
// primary has been promoted), and not for a group whose planned switchover is running
// (switchover.h sends the same commands in its own order). Not for Sentinel groups.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/failover/replication_groups.h"
#include "lockstep/failover/replication_info.h"
#include "lockstep/failover/types.h"

namespace lockstep::failover {

struct ReconcileAction {
  ServerCommand command;
  std::string why;  // for the log: what the server said and what the log says
};

enum class ReconcileState : uint8_t {
  kWaitingLease,        // the decided primary may not be promoted yet
  kCheckingCandidate,   // reading the other replicas' offsets before promoting
  kCandidateBehind,     // another replica is further ahead: re-decide (better)
  kPrimaryUnreachable,  // the decided primary does not answer
  kPromoting,           // REPLICAOF NO ONE sent, or about to be
  kRepointing,          // the primary is a primary; some servers still follow something else
  kConverged,           // every reachable server agrees with the log
};
std::string_view reconcile_state_name(ReconcileState state);

struct ReconcileStatus {
  ReconcileState state = ReconcileState::kWaitingLease;
  std::string detail;
  std::string better;                    // kCandidateBehind: the replica to promote instead
  std::vector<std::string> waiting_for;  // servers not (yet) in their committed role
};

class GroupReconciler {
 public:
  explicit GroupReconciler(std::string backend);

  // The committed state to converge to. A new generation forgets what was sent for the old one.
  void set_target(const Group& group, TimeMs promote_not_before);
  const Group& target() const { return group_; }

  // What the leader's probes found. `reachable` follows ServerHealth::up.
  void on_info(const std::string& server, TimeMs sent_at, const ReplicationInfo& info);
  void set_reachable(const std::string& server, bool reachable);
  // The reply to a command this reconciler emitted to `server`.
  void on_reply(const std::string& server, const CommandReply& reply, TimeMs now);

  // Commands to send now.
  std::vector<ReconcileAction> poll(TimeMs now);
  ReconcileStatus status(TimeMs now) const;

 private:
  struct Server {
    bool reachable = true;
    std::optional<ReplicationInfo> info;
    TimeMs info_sent_at = -1;
    bool in_flight = false;
    uint64_t in_flight_generation = 0;  // the target generation the command was sent for
    TimeMs replied_at = -1;  // last command reply; older INFO says nothing about its effect
    // What the last OK'd command made of the server, until a fresh INFO says otherwise.
    std::optional<Role> assumed_role;
    std::string assumed_master;
  };
  // The server's role and master as best known: a fresh INFO, else what an OK'd command made it.
  std::optional<std::pair<Role, std::string>> known(const Server& s) const;
  bool fresh(const Server& s) const { return s.info && s.info_sent_at > s.replied_at; }
  bool primary_promoted() const;
  // kCheckingCandidate / kCandidateBehind / promotable, before P is promoted.
  ReconcileStatus check_candidate(TimeMs now) const;
  Server& server(const std::string& address) { return servers_[address]; }

  std::string backend_;
  Group group_;
  TimeMs promote_not_before_ = 0;
  std::map<std::string, Server, std::less<>> servers_;
};

}  // namespace lockstep::failover
