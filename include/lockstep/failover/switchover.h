// A planned switchover (LOCKSTEP FAILOVER <backend> [TO <addr>]) as a state machine: zero
// acknowledged writes lost, writes paused only for the switch itself.
//
//   precheck   INFO replication on the primary and the candidates: the primary must say role
//              master, the target replicate from it with the link up (without TO: the
//              candidate with the highest offset)
//   pause      CLIENT PAUSE <pause_ms> WRITE on the old primary. From its OK on, the old
//              primary executes no write (Redis holds writes, EVAL, PUBLISH ... of every client
//              in the query buffer; replication to replicas goes on)
//   offset     INFO replication on the old primary: master_repl_offset is final
//   catch up   INFO replication on the target every poll_interval_ms until its
//              slave_repl_offset reaches that offset (catch_up_timeout_ms, else abort)
//   commit     propose "primary is now target" (generation + 1) through the log; wait
//   re-pause   CLIENT PAUSE <pause_ms> WRITE again: the pause now outlasts the rest of the
//              switch by pause_ms however long the commit took
//   promote    REPLICAOF NO ONE on the target
//   demote     REPLICAOF target on the old primary (still paused: the writes it holds fail
//              with -READONLY when released, unexecuted, and the proxy retries them on the new
//              primary)
//   unpause    CLIENT UNPAUSE on the old primary
//   re-point   REPLICAOF target on every other replica
//
// Why no lease wait: the failover must wait for leases because the old primary may still take
// writes from a cut-off Lockstep replica; here it takes none between the pause and its demotion,
// and the re-pause makes the pause outlast every lease granted before the commit (pause_ms >=
// the lease wait is checked at construction). If the re-pause, the promotion or the demotion
// fails (the old primary or the target died mid-switch), the state is kHandedOver: the commit
// stands, and the leader's GroupReconciler finishes the job with the ordinary lease wait.
// Before the commit every failure aborts cleanly: CLIENT UNPAUSE, state kFailed with the
// reason, nothing changed. A commit that times out and lands later is a primary change like
// any other, carried out by the reconciler with the lease wait.
//
// The pause is measured from the CLIENT PAUSE send to the CLIENT UNPAUSE send (pause_ms()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lockstep/failover/failover_decider.h"
#include "lockstep/failover/replication_groups.h"
#include "lockstep/failover/types.h"

namespace lockstep::failover {

struct SwitchoverOptions {
  TimeMs pause_ms = 3000;             // CLIENT PAUSE timeout; must be > the lease wait
  TimeMs catch_up_timeout_ms = 2000;  // from the pause to the target's catching up
  TimeMs poll_interval_ms = 1;        // between INFO probes of the target while it catches up
  TimeMs step_timeout_ms = 1000;      // any one command
  TimeMs commit_timeout_ms = 5000;    // the log entry
};

enum class SwitchoverState : uint8_t {
  kPrecheck,
  kPausing,
  kReadingOffset,
  kCatchingUp,
  kCommitting,
  kRepausing,
  kPromoting,
  kDemoting,
  kUnpausing,
  kRepointing,
  kAborting,    // CLIENT UNPAUSE after a failure before the commit
  kDone,        // the target is the primary, the old primary its replica
  kFailed,      // aborted before the commit: nothing changed (error() says why)
  kHandedOver,  // committed, then a step failed: the reconciler finishes (error() says which)
};
std::string_view switchover_state_name(SwitchoverState state);

struct SwitchoverEffects {
  std::vector<ServerCommand> commands;
  std::optional<FailoverDecision> propose;  // commit it, then call on_committed
  std::optional<TimeMs> wake_at;            // call on_timer then
};

class Switchover {
 public:
  // `target` empty: the replica with the highest offset. `lease_wait_ms`: the time a failover
  // would wait for leases (ConfigLease::promotion_not_before - applied time).
  Switchover(std::string backend, Group group, std::string target, SwitchoverOptions options,
             TimeMs lease_wait_ms);

  // "" when the switchover can start, else an "ERR ..." (unknown target, pause too short ...).
  std::string validate() const;

  SwitchoverEffects start(TimeMs now);
  // The reply to the last command sent to `server` (no-reply kinds included).
  SwitchoverEffects on_reply(const std::string& server, const CommandReply& reply, TimeMs now);
  // The proposal was applied (ok) or refused / not applied in time (!ok, with the reason).
  SwitchoverEffects on_committed(bool ok, const std::string& error, TimeMs now);
  SwitchoverEffects on_timer(TimeMs now);

  SwitchoverState state() const { return state_; }
  bool finished() const {
    return state_ == SwitchoverState::kDone || state_ == SwitchoverState::kFailed ||
           state_ == SwitchoverState::kHandedOver;
  }
  // Between the commit and the end: the reconciler must leave this group alone meanwhile.
  bool owns_group() const { return committed_ && !finished(); }
  bool committed() const { return committed_; }
  TimeMs committed_at() const { return committed_at_; }
  const std::string& error() const { return error_; }
  const std::string& target() const { return target_; }
  const std::string& old_primary() const { return group_.primary; }
  int64_t target_offset() const { return target_offset_; }
  // Write pause: CLIENT PAUSE sent -> CLIENT UNPAUSE sent; -1 until both happened.
  TimeMs pause_ms() const;

 private:
  SwitchoverEffects send(SwitchoverState next, std::vector<ServerCommand> commands, TimeMs now);
  SwitchoverEffects abort(std::string error, TimeMs now);
  SwitchoverEffects hand_over(std::string error);
  SwitchoverEffects after_precheck(TimeMs now);
  std::vector<std::string> candidates() const;

  std::string backend_;
  Group group_;
  std::string target_;
  bool target_given_;
  SwitchoverOptions options_;
  TimeMs lease_wait_ms_;

  SwitchoverState state_ = SwitchoverState::kPrecheck;
  std::set<std::string> awaiting_;  // servers whose reply the current step waits for
  TimeMs step_deadline_ = 0;
  std::map<std::string, ReplicationInfo> prechecked_;
  std::map<std::string, std::string> precheck_errors_;
  bool paused_ = false;
  TimeMs pause_sent_at_ = -1;
  TimeMs unpause_sent_at_ = -1;
  int64_t target_offset_ = -1;
  int64_t target_seen_offset_ = -1;
  bool committed_ = false;
  TimeMs committed_at_ = 0;
  std::string error_;
};

}  // namespace lockstep::failover
