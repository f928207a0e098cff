// The leader's decision to fail a group's primary over: when, and to which replica.
//
// Every Lockstep replica reports its view of every server (health_report.h); the leader feeds
// the reports here, its own included, and calls evaluate() every health interval. A primary is
// failed over only when a majority of the voters, counted on reports that arrived within
// report_ttl_ms, see it down: one replica cut off from a healthy primary reports it down alone
// and changes nothing. A cluster of one is its own majority and decides alone.
//
// The new primary is the replica with the highest replication offset among those that
//   - the leader itself sees up (it is the one that will send REPLICAOF NO ONE),
//   - last reported being a replica of the failed primary (a server replicating from elsewhere
//     holds another stream: its offset says nothing about this one),
//   - have reported an offset at all;
// ties go to the earlier server in the group's list, so every leader picks the same one.
// Offsets of one stream are prefixes of each other: the highest offset holds every write any
// other candidate holds.
//
// A decision is a GroupChange::set_primary against the group's current generation, proposed
// through the log (the leader must not act on it before it is applied: replication_groups.h
// refuses a stale one, and config_lease.h says when to carry it out). One decision per group is
// in flight at a time; an unanswered one is proposed again after proposal_retry_ms.
//
// NO FAILOVER STORM: after a primary change of a group, that group is not failed over again for
// min_interval_ms, as long as the new primary was promoted (some fresh report shows it with
// role primary). A flapping primary therefore costs at most one failover per interval. A new
// primary that died before anyone saw it promoted does not start the interval: replacing it
// is finishing the same failover, and it still needs a majority to see it down. The interval
// survives leader changes through the wall-clock time each change carries (changed_at_ms):
// on_primary_changed() converts its age to this process's clock, so clock skew between replicas
// shifts the interval by the skew. It is a rate limit, not a safety property.
//
// WHAT IT DOES NOT DO: send anything, wait for leases, or touch Sentinel groups (they are
// reported kSentinel and left to sentinel_follower.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/failover/health_report.h"
#include "lockstep/failover/replication_groups.h"
#include "lockstep/failover/types.h"

namespace lockstep::failover {

struct DeciderOptions {
  TimeMs min_interval_ms = 30000;
  TimeMs report_ttl_ms = 500;  // a view older than this is not counted (about 5 health intervals)
  TimeMs proposal_retry_ms = 5000;
};

struct FailoverDecision {
  std::string backend;
  std::string old_primary;
  std::string new_primary;
  uint64_t expected_generation = 0;
  std::string reason;
  // The log entry to propose; at_ms is the proposer's wall clock (unix ms).
  GroupChange change(int64_t at_ms) const {
    return GroupChange::set_primary(backend, new_primary, expected_generation, at_ms);
  }
  bool operator==(const FailoverDecision&) const = default;
};

enum class Verdict : uint8_t {
  kHealthy,      // a majority does not see the primary down
  kSuspected,    // some, fewer than a majority, see it down
  kPending,      // a decision for the current generation is in the log, not yet applied
  kRateLimited,  // down for a majority, but the group changed less than min_interval_ms ago
  kNoCandidate,  // down for a majority, and no replica qualifies (detail says why each)
  kAllDown,      // down for a majority, and the leader sees every server of the group down
  kDecided,      // decision below: propose it
  kSentinel,     // Sentinel decides for this group
};
std::string_view verdict_name(Verdict verdict);

struct Assessment {
  std::string backend;
  Verdict verdict = Verdict::kHealthy;
  std::string detail;  // for logs and LOCKSTEP BACKEND LIST; "ERR ..." for kNoCandidate/kAllDown
  std::optional<FailoverDecision> decision;
};

class FailoverDecider {
 public:
  FailoverDecider(ReplicaId self, DeciderOptions options);

  void set_voters(std::vector<ReplicaId> voters);
  // A report from a Lockstep replica (this one's own included), received at `now`.
  void on_report(HealthReport report, TimeMs now);
  // A primary change of `backend` was applied here, made `age_ms` ago by the proposer's wall
  // clock (now_wall - changed_at_ms; clamped to [0, min_interval_ms]).
  void on_primary_changed(const std::string& backend, uint64_t generation, TimeMs now,
                          TimeMs age_ms);
  // The proposal for `backend` was refused or lost: it may be decided again at once.
  void on_proposal_failed(const std::string& backend);
  // Leadership lost: forget in-flight proposals (reports and change times stay useful).
  void on_leadership_lost() { pending_.clear(); }

  std::vector<Assessment> evaluate(const ReplicationGroups& groups, TimeMs now);
  Assessment evaluate(const std::string& backend, const Group& group, TimeMs now);

  // The reconciler found `better` ahead of the decided primary before promoting it (a replica
  // that kept receiving writes while the decision waited for leases). Re-decide for `better`,
  // unless a decision is already in flight; not rate-limited, since nothing was promoted.
  std::optional<FailoverDecision> redirect(const std::string& backend, const Group& group,
                                           const std::string& better, TimeMs now);

 private:
  struct Received {
    TimeMs at = 0;
    HealthReport report;
  };
  struct Pending {
    uint64_t generation = 0;
    TimeMs proposed_at = 0;
  };
  size_t majority() const { return voters_.size() / 2 + 1; }
  // Fresh views of `server` from voters, own view first if any.
  std::vector<const ServerView*> views(const std::string& server, TimeMs now) const;
  const ServerView* own_view(const std::string& server, TimeMs now) const;
  bool pending(const std::string& backend, const Group& group, TimeMs now) const;
  Assessment decide(const std::string& backend, const Group& group, TimeMs now);

  ReplicaId self_;
  DeciderOptions options_;
  std::vector<ReplicaId> voters_;
  std::map<ReplicaId, Received> reports_;
  std::map<std::string, TimeMs, std::less<>> changed_at_;  // this process's clock
  std::map<std::string, Pending, std::less<>> pending_;
};

}  // namespace lockstep::failover
