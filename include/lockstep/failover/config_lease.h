// The configuration lease: how a Lockstep replica cut off from the majority stops writing to a
// primary the others have demoted, before the new primary takes writes.
//
// THE PROBLEM
// Replicas R1, R2, R3 route writes for backend X to primary P. R3 is partitioned from R1 and R2
// but still reaches P; R1 and R2 cannot reach P, commit "X: primary is now Q" and promote Q.
// R3 never learns of the change. Without a fence, R3 keeps writing to P and acknowledging
// writes that Q will never have: they are lost when P is re-pointed at Q.
//
// THE RULE
// A replica R writes to primaries only while it holds a lease. R renews it in rounds: it sends
// LeaseRequest{seq} to every voter at time s (its own monotonic clock) and counts the LeaseAcks.
// Each ack carries the acker's *fence index*: the highest log index of a fence entry (a primary
// change, or a membership change) it has ACCEPTED, chosen or not. R counts an ack only if that
// index is <= R's applied index; R's own vote counts the same way, taken when the round starts.
// Once the counted votes are a majority of the voters of R's applied membership, R's lease runs
// until s + lease_ms. Acks to older rounds still count for those rounds' start times.
// The leader that applied a primary change at time a (its clock) carries it out -- REPLICAOF NO
// ONE on the new primary -- no earlier than a + lease_ms * (1 + rho) / (1 - rho) + 1 ms, where
// rho bounds the clocks' rate error (kClockRateError, 1 %; clocks need not be synchronised,
// only tick at nearly the same rate). A cluster with one member carries it out at once.
// Finally R acknowledges a write to a client only if the primary's reply (and with `durability:
// replica` the WAIT reply) arrived while its lease was valid: checking only when sending would
// let a write delayed in the network land after the promotion.
//
// WHY IT IS SAFE (no write is acknowledged by the old primary after the new one is promoted)
// Take a primary change C at index c, and a replica R that has not applied c (R that has applied
// it routes to the new primary). Let F be the first fence entry after R's applied index in log
// order (F = C, or an earlier fence). No membership change lies between R's applied index and F,
// so F was chosen by a majority of R's applied membership (or of one single-step change of it,
// which intersects every majority of it).
//  1. Any renewal round of R that is counted has a majority of R's membership whose acks report
//     a fence index <= R's applied index < F's index. That majority meets F's accepting
//     majority in some voter V. V's counted ack was sent before V accepted F (from then on V
//     reports at least F's index), so before F was chosen, and R started the round, at s,
//     before that ack: s < chosen(F) <= the moment the leader applies C (entries apply in order,
//     F at or before C).
//  2. So R's lease ends at s + lease_ms on R's clock: at most lease_ms / (1 - rho) of real time
//     after s, since R's clock runs at least 1 - rho times as fast as real time. The leader's
//     wait of lease_ms * (1 + rho) / (1 - rho) on its own clock (at most 1 + rho times as fast)
//     is at least lease_ms / (1 - rho) of real time after a > s. So R's lease has ended before
//     the promotion. R counts no later round until it applied c, and then it no longer routes
//     to the old primary. (Acks are checked against R's applied index when they are counted;
//     it only grows, and the argument holds for any index R had applied by then.)
//  3. A write R acknowledges had its reply arrive before R's lease ended, so the old primary
//     executed it before then, hence before the promotion.
// Any replica's apply time is no earlier than the entry was chosen, so a new leader that re-runs
// a half-done failover may wait from the time it applied the entry in this process (as a
// follower, or when a restart replayed it): the argument holds for it as well. A stale leader
// that still believes it leads acts only while its own lease is valid, and while it is, no
// primary change it has not applied has been carried out.
// What the lease does not give: with `durability: async` a write the old primary executed before
// the promotion but had not yet replicated is lost as in any asynchronous failover; with
// `durability: replica` the promoted replica is re-checked against the other replicas' offsets
// first (group_reconciler.h), so a write a replica confirmed is kept as long as that replica
// answers the leader when it promotes.
//
// COST AND LIVENESS
// A failover takes down_after_ms to detect, then lease_ms more before promotion (defaults 1000 +
// 400). A replica that misses renewals for lease_ms (a stalled event loop, a lost network) holds
// writes until it renews; reads are not fenced. Rounds run every lease_ms / 4 so two lost rounds
// cost nothing. Fence indexes must survive restarts: an acceptor that restarts reports at least
// its snapshot index (every entry below it is chosen), which only delays renewals, never breaks
// the rule.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/failover/types.h"

namespace lockstep::failover {

struct LeaseRequest {
  ReplicaId from = 0;
  uint64_t seq = 0;
  bool operator==(const LeaseRequest&) const = default;
};

struct LeaseAck {
  ReplicaId from = 0;  // the acker
  ReplicaId to = 0;    // the requester
  uint64_t seq = 0;
  uint64_t fence_index = 0;  // highest accepted fence entry index at the acker
  bool operator==(const LeaseAck&) const = default;
};

std::string encode_lease_request(const LeaseRequest& request);
std::optional<LeaseRequest> decode_lease_request(std::string_view bytes);
std::string encode_lease_ack(const LeaseAck& ack);
std::optional<LeaseAck> decode_lease_ack(std::string_view bytes);

class ConfigLease {
 public:
  static constexpr double kClockRateError = 0.01;
  static constexpr size_t kMaxOpenRounds = 16;

  ConfigLease(ReplicaId self, TimeMs lease_ms);

  // The voters of this replica's applied membership. A change does not cut the current lease:
  // the next rounds count against the new set.
  void set_voters(std::vector<ReplicaId> voters);
  // Highest log index applied here (never decreases).
  void set_applied_index(uint64_t index);
  // Highest fence entry index this replica has accepted (as an acceptor; 0 for a learner).
  void set_own_fence_index(uint64_t index);

  // Starts a round: send the request to every voter but this one.
  LeaseRequest start_round(TimeMs now);
  void on_ack(const LeaseAck& ack);

  bool valid(TimeMs now) const { return now < expires_at_; }
  TimeMs expires_at() const { return expires_at_; }  // 0 = never held
  TimeMs renew_interval() const { return lease_ms_ / 4 > 0 ? lease_ms_ / 4 : 1; }
  TimeMs lease_ms() const { return lease_ms_; }
  // The error a write gets while the lease is not held.
  std::string refusal(TimeMs now) const;

  // An acceptor's answer to a request.
  static LeaseAck answer(const LeaseRequest& request, ReplicaId self, uint64_t accepted_fence);
  // The earliest time (leader's clock) a primary change applied at `applied_at` may be carried
  // out. `members` counts every Lockstep replica, learners included (they route writes too).
  static TimeMs promotion_not_before(TimeMs applied_at, TimeMs lease_ms, size_t members);

 private:
  struct Round {
    TimeMs started_at = 0;
    bool self_vote = false;                // decided when the round started
    std::map<ReplicaId, uint64_t> fences;  // acker -> the fence index it reported
  };
  size_t majority() const { return voters_.size() / 2 + 1; }
  bool is_voter(ReplicaId id) const;
  // Counts every open round against the current applied index and voters; a round with a
  // majority extends the lease and closes, with every older round.
  void evaluate();

  ReplicaId self_;
  TimeMs lease_ms_;
  std::vector<ReplicaId> voters_;
  uint64_t applied_index_ = 0;
  uint64_t own_fence_index_ = 0;
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Round> rounds_;  // open rounds by seq
  TimeMs expires_at_ = 0;
  TimeMs last_round_at_ = 0;
};

}  // namespace lockstep::failover
