// Which lock backends may vote, and restoring the fence counters of one that lost its data.
//
// Redlock's safety needs every backend to remember its holds for their whole ttl, and the
// fence needs every backend to remember its counters forever. A backend that restarted
// (run_id changed) may have forgotten both; a backend whose wall clock jumped (its TIME moved
// against our monotonic clock) expires holds early or late. Such a backend is kept out of
// every quorum (it does not vote, but it still counts in N) until:
//   - quarantine_ms has passed (default max_ttl_ms + lock_delay_ms): every hold it may have
//     forgotten has expired on the others, the "delayed restart" of the Redlock paper; and
//   - after a restart, its fence counters were re-seeded from a quorum of the other backends
//     (FenceReseed), so that every committed fence is again on a majority. Without that, one
//     restarted backend in the intersection of two majorities lets a later grant reuse a fence.
// Unverified backends (never seen, or reconnected and not yet checked) do not vote either: a
// connection must be checked (INFO server -> observe_run_id) before it carries lock requests.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/lock/redlock.h"

namespace lockstep::lock {

class Quarantine {
 public:
  enum class Status { kEligible, kUnverified, kQuarantined, kNeedsReseed };

  Quarantine(const LockSettings& settings, int total_backends);

  // run_id (and, if known, uptime_in_seconds) from INFO server, on every (re)connect. A
  // changed run_id quarantines and requires a re-seed. On first sight, an uptime below the
  // quarantine window does the same (the backend may have restarted just before we started);
  // without an uptime the first sight is trusted.
  void observe_run_id(BackendId backend, std::string_view run_id, int64_t now_ms,
                      std::optional<int64_t> uptime_s = std::nullopt);
  // A TIME reply (µs since the epoch) to a request sent at sent_ms and answered at received_ms
  // on our monotonic clock. The backend's offset against our clock is known within half the
  // round trip; samples with a round trip above the tolerance are ignored as too imprecise. A
  // change of offset beyond tolerance + measurement error + drift_factor * time since the last
  // sample is a clock jump.
  void observe_time(BackendId backend, int64_t backend_time_us, int64_t sent_ms,
                    int64_t received_ms);
  // The lock connection broke: unverified until observe_run_id on the new connection.
  void on_disconnected(BackendId backend);
  // The fence counters were restored (FenceReseed complete and its writes acknowledged).
  void mark_reseeded(BackendId backend);

  Status status(BackendId backend, int64_t now_ms) const;
  bool eligible(BackendId backend, int64_t now_ms) const {
    return status(backend, now_ms) == Status::kEligible;
  }
  // What a round needs: all backends (for the quorum) and the eligible ones.
  Backends backends(int64_t now_ms) const;
  std::string_view reason(BackendId backend) const;  // why it was last quarantined
  int64_t quarantined_until(BackendId backend) const;
  bool needs_reseed(BackendId backend) const;
  // The earliest end of a quarantine still running at now_ms (to re-check eligibility then).
  std::optional<int64_t> next_change(int64_t now_ms) const;
  // The replicated settings changed (max_ttl_ms, lock_delay_ms, quarantine_ms...). A shorter
  // window only applies once every hold granted under the longer one has expired: for the old
  // window's length from now, restarts are still quarantined for the old window.
  void update(const LockSettings& settings, int64_t now_ms);
  // The quarantine a restart observed at now_ms gets.
  int64_t window(int64_t now_ms) const;

 private:
  struct State {
    bool verified = false;
    std::string run_id;
    int64_t until_ms = 0;
    bool needs_reseed = false;
    std::string reason;
    bool has_offset = false;
    int64_t offset_us = 0;
    int64_t rtt_ms = 0;
    int64_t sampled_ms = 0;
  };
  void quarantine(State& s, int64_t until_ms, std::string reason);
  const State* get(BackendId backend) const;

  LockSettings settings_;
  std::vector<State> states_;
  int64_t floor_ms_ = 0;     // an earlier, longer window still in force ...
  int64_t floor_until_ = 0;  // ... until then
};

// Restores the fence counters of `target` (restarted, so possibly empty) from a quorum of the
// other backends. Any majority that committed a fence still has at least quorum-1 members
// besides the target, and quorum other backends always include one of them (2*quorum > N), so
// the maximum read over quorum others is at least every committed fence. Needs N >= 3.
// Driver: on `quorum` other backends, SCAN MATCH __lockstep:fence:* + GET each key, add() them,
// source_complete(); when ready(), send requests() to the target (any reply is fine: the write
// only raises), then Quarantine::mark_reseeded(target).
class FenceReseed {
 public:
  FenceReseed(BackendId target, int total_backends);

  // One fence key as SCAN returned it, and its counter. False (ignored) if it is not a fence
  // key or comes from the target.
  bool add(BackendId source, std::string_view key, int64_t counter);
  void source_complete(BackendId source);
  bool ready() const;
  // Fence writes (EVAL) raising each counter on the target to the maximum seen, under the
  // lock configuration epoch in use.
  std::vector<std::string> requests(uint64_t config_epoch) const;
  size_t names() const { return max_.size(); }

 private:
  BackendId target_;
  int total_;
  std::map<std::string, int64_t, std::less<>> max_;
  std::vector<BackendId> complete_;
};

}  // namespace lockstep::lock
