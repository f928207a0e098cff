// Changing the set of lock backends while Lockstep replicas keep serving locks, as a sans-I/O
// state machine (inputs: replies, failures, time; outputs: requests and a timer).
//
// WHY IT IS NEEDED
// Redlock's exclusion rests on any two majorities of ONE backend set intersecting, and the
// fence on every committed fence living on a majority of that set. Two sets need not
// intersect ({A,B,C} -> {C,D,E}), and replicas apply a change at different moments: one that
// has not applied it yet (slow, partitioned from its peers) would keep granting on the old set
// while the others grant on the new one.
//
// HOW (every replica runs this when it applies a change of `locks.backends`, epoch E)
//   1. Fence: on every backend of the old set(s) and the new one, raise __lockstep:lockcfg to E
//      and read every fence counter in the same atomic step (kLockEpochScript). Acquire,
//      fence-write and extend carry their replica's epoch and are refused by a backend that has
//      seen a newer one, so once a majority of an old set has E, no replica still on that set
//      can win a majority there: no new grant, no new fence, no extend on it. Needs a majority
//      of EACH old set (several if an earlier change was still in progress here) to answer.
//   2. Seed: the maximum of each counter over those majorities is at least every fence ever
//      committed on the old sets (a committed fence is on a majority, which meets the majority
//      read); it is written (raise-only fence-write) to every backend of the new set, done once
//      a majority of the new set acknowledged all of it. Any later grant's fence majority on the
//      new set meets that majority, so fences keep increasing across the change.
//   3. Drain: wait until every grant or extend an old set ever gave has ended, so the new set
//      starts with no valid hold anywhere else. At most drain_ms (the longest ttl an old grant
//      may have had, plus lock_delay) after the fence held. Usually much less: the fence
//      script also reads how long the longest hold key on its backend still lives, and every
//      valid old grant holds a key on each majority it was fenced through (two majorities of
//      one set meet), which lives at least as long as the grant's validity (validity is
//      counted from before the backend took the hold, and drift covers clock rates). Nothing
//      can add or prolong an old hold there after the fence. So the longest such key, read at
//      the fence, plus a clock-rate margin, bounds them all. That read is not trusted (the
//      whole drain_ms applies) when `bounded_by_holds` is false (old sets the driver has no
//      quarantine view of) or when a backend whose fence counted may have lost keys: named
//      `untrusted` at the start (restarted, unverified) or through distrust() later (its
//      connection broke).
// Then the driver switches to the new set with epoch E and marks the change completed on the
// new set; a replica that applies the change later (restarted, slow) and finds that mark in a
// fence reply switches at once. Steps 1-2 are idempotent, so replicas
// doing them at once (they all apply the change) do no harm; a replica that starts later finds
// the same counters. During the change the driver answers LOCK.ACQUIRE / EXTEND with a retryable
// error; failed requests are sent again every retry_ms until the step has what it needs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/lock/reply.h"

namespace lockstep::lock {

class Reconfig {
 public:
  enum class Phase { kFencing, kSeeding, kDraining, kDone };
  enum class Kind { kFence, kSeed };
  // Backends are the driver's ids (e.g. topology indices); a backend may be in several sets.
  struct Send {
    int backend = 0;
    Kind kind = Kind::kFence;
    std::string request;
  };
  struct Effects {
    std::vector<Send> sends;
    std::optional<int64_t> timer_ms;  // call on_timer after this long (replaces the last one)
    bool done = false;                // switch to the new set now
  };

  Reconfig(uint64_t epoch, std::vector<std::vector<int>> old_sets, std::vector<int> new_set,
           int64_t drain_ms, bool bounded_by_holds = true, std::set<int> untrusted = {},
           int64_t retry_ms = 1000);
  // `backend` may have lost its keys (restarted): its hold report no longer bounds the drain.
  void distrust(int backend) { untrusted_.insert(backend); }

  Effects start(int64_t now_ms);
  // A reply to a request of `kind` sent to `backend` (an error reply counts as a failure).
  Effects on_reply(int backend, Kind kind, const Reply& reply, int64_t now_ms);
  Effects on_failure(int backend, Kind kind, int64_t now_ms);
  Effects on_timer(int64_t now_ms);

  uint64_t epoch() const { return epoch_; }
  Phase phase() const { return phase_; }
  std::string_view phase_name() const;
  const std::vector<int>& new_set() const { return new_; }
  // When the drain ends (0 while the fence is not complete).
  int64_t drained_at() const;
  size_t fence_names() const { return max_.size(); }
  // Whether it ended because another replica had already completed the change.
  bool skipped() const { return skipped_; }
  // After done (not skipped): mark the change completed on the new set (replies not needed).
  std::vector<Send> completion_requests() const;

 private:
  void send_fences(const std::vector<int>& to, Kind kind, Effects& fx) const;
  void send_seeds(int backend, Effects& fx);
  void advance(int64_t now, Effects& fx);
  bool fenced() const;
  bool seeded() const;

  uint64_t epoch_;
  std::vector<std::vector<int>> old_;
  std::vector<int> new_;
  int64_t drain_ms_;
  bool bounded_by_holds_;
  std::set<int> untrusted_;
  bool fenced_ = false;
  int64_t live_ms_ = 0;  // the longest hold key on an old backend whose fence counted
  int64_t retry_ms_;
  Phase phase_ = Phase::kFencing;
  int64_t fenced_at_ = 0;
  bool skipped_ = false;
  std::set<int> fence_ok_;              // answered the fence (epoch raised, counters read)
  std::set<int> fence_waiting_;         // asked, no answer yet
  std::map<std::string, int64_t> max_;  // fence key -> highest counter read
  std::map<int, int> seed_pending_;     // new backend -> seed writes not yet acknowledged
  std::set<int> seed_ok_;               // new backends that acknowledged every write
  std::set<int> seed_failed_;           // to seed again at the next retry
};

}  // namespace lockstep::lock
