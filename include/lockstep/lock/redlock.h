// Redlock with fencing tokens, as sans-I/O state machines.
//
// WHAT IT GUARANTEES
// A lock is held when a majority (quorum = N/2+1 of ALL configured lock backends, quarantined
// ones included in N) of independent redis-servers hold it with our token, and only for
// validity = ttl - elapsed - drift, drift = ttl * drift_factor + 2 ms, elapsed measured on the
// driver's monotonic clock from the moment the attempt's requests were sent until the decision
// (both protocol phases included). A decision with validity <= 0 is not a grant. Every grant
// carries a fence that strictly increases from one grant of the lock to the next, across
// Lockstep replicas and restarts, as long as fewer than a majority of lock backends lose their
// data at any time (a backend that restarted is quarantined and re-seeded, quarantine.h).
//
// HOW DATA FLOWS
// The driver constructs a round, calls start(now) and then feeds it every reply, every failed
// request and the expiry of the round's single timer; each call returns Effects: requests to
// send, a timer to (re)arm, and finally `done`. A round never reads a clock, never draws a
// random number (the retry jitter comes in as a seed) and never touches a socket.
//
//   AcquireRound:  [acquire script on all] --quorum--> [fence write on all] --quorum--> Granted
//                        |  no quorum / busy / validity <= 0         | no quorum
//                        v                                           v
//                  abort this attempt's holds on ALL eligible backends, then retry after a
//                  randomized delay, or stop
//   ExtendRound:   compare-and-pexpire on all; counts only with a quorum; never revives
//   ReleaseRound:  compare-and-delete on all; counts only with a quorum
//   StatusRound:   read-only status script on all
//
// THE FENCE (why it is monotonic, and why independent INCRs are not)
// Each lock backend keeps a counter __lockstep:fence:<name> that never expires and never
// decreases. A grant picks its fence in two phases: phase 1 reads the counter on a majority
// (it rides in the acquire script, so it costs no extra round trip) and takes the maximum M;
// phase 2 asks every backend to set the counter to M+1 only if its current value is strictly
// below M+1, and the fence M+1 is committed only if a majority accepted. Claim: if grant G1
// (fence F1) is decided before grant G2 (fence F2), then F1 < F2.
//   1. G1 was decided at time d1, when a majority W1 had accepted F1, so from d1 on every
//      backend in W1 has counter >= F1 (counters only grow).
//   2. G1 held the lock on a majority L1, and G2 on a majority L2; some backend b is in both.
//      G2's acquire script could take b only after G1's hold on b was gone. That hold lasts
//      until after d1: it expires no earlier than t0 + ttl (minus clock-rate error, which
//      `drift` covers) while d1 < t0 + ttl - drift because G1's validity was > 0 at d1, and
//      nothing but a RELEASE with G1's token (sent after the grant) deletes it: clean-up only
//      deletes holds of its own round's token and attempt, and never the granted attempt's
//      (see the rules in scripts.h). If instead G1 took b after G2's hold was gone, the same
//      reasoning puts d2 first.
//   3. G2 sends phase 2 only after its acquire replies, including b's, so all of G2's phase-2
//      writes land after d1. G2's accepting majority W2 meets W1 in some backend w, where the
//      counter is already >= F1 when G2's write arrives; w accepted, so F2 > counter >= F1.
// Phase 1 is not needed for safety, only for liveness: it proposes a value that a majority
// will accept. The strict compare is what makes two writers unable to both commit one value.
// Why max-of-INCR fails: counters A=10 B=3 C=2; G1 wins {A,B} and INCRs: A=11 B=4, fence 11;
// G2 later wins {B,C}: B=5 C=3, fence 5 < 11. No majority ever agreed on a value, so there is
// nothing for later grants to intersect (tests/unit/lock/fence_model_test.cpp shows both).
//
// OWNER RE-ACQUIRE keeps the token and, normally, the fence. A granted hold records its fence
// once committed (kRecordFenceScript, only on holds stamped with the granted attempt); the
// re-acquire adopts the OWNER's hold only where it carries such a record, because the hold of
// a round that was never granted may still be deleted by that round's late clean-up. With the
// adopted hold on a quorum, phase 2 asks a majority to CONFIRM the recorded F (accepted where
// the counter is <= F) instead of writing M+1. By steps 2-3, any grant decided before the
// re-acquire shares a backend b with the re-acquire's quorum whose reply came after that
// grant's decision, so the confirm writes land after its fence was committed, and a majority
// confirming F meets that grant's majority: F is newer than every earlier grant's fence. If a
// counter is already above F the re-acquire writes a fresh M+1 for the same token. Unrecorded
// holds of the OWNER count as held by someone else (Busy); a failed re-acquire leaves the
// OWNER's existing hold as it was (refreshed, never shortened). Every adoption bumps the
// hold's generation and a release deletes only a generation it read in its own round, so a
// RELEASE that did not return 1 and is still in flight cannot delete the hold a later
// re-acquire of that token was granted (a release of an adopted hold costs a second round
// trip to the backends that answer with their generation).
//
// LATE AND REORDERED REQUESTS are safe: requests may reach a backend long after their round
// ended or in another order than sent (an OWNER's retry usually comes through another
// connection, worker or replica). The scripts' rules (scripts.h) make such a request unable to
// shorten, delete or hijack a hold it does not own; fence_model_test.cpp replays random
// schedules with loss, reordering and deliveries after every ttl, and the hand-made
// interleavings that made each rule necessary.
//
// WHAT IT DELIBERATELY DOES NOT DO
// No per-request timers (one round timer enforces backend_timeout_ms per phase); no waiting
// queue or keep-alive scheduling (wait_queue.h and KeepAlive below are separate values); no
// choice of backends (the caller passes the eligible ones, see Quarantine); no sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lockstep/lock/reply.h"
#include "lockstep/lock/scripts.h"

namespace lockstep::lock {

// Index of a lock backend in the configured list (0..N-1).
using BackendId = int;
// Identifies one request of one round (unique within the round, never reused).
using RequestId = uint64_t;

// The `locks:` configuration section.
struct LockSettings {
  double drift_factor = 0.01;            // clock-rate error allowance, fraction of the ttl
  int retry_count = 3;                   // retries after the first attempt (4 attempts in all)
  int64_t retry_delay_ms = 200;          // mean retry delay; actual: uniform in [d/2, 3d/2]
  int64_t backend_timeout_ms = 50;       // per phase; must be much smaller than the ttls used
  int64_t max_ttl_ms = 60000;            // largest ttl-ms LOCK.ACQUIRE / EXTEND accept
  int64_t lock_delay_ms = 0;             // an expired (not released) lock stays blocked this long
  std::optional<int64_t> quarantine_ms;  // unset: max_ttl_ms + lock_delay_ms
  int64_t clock_jump_tolerance_ms = 50;  // TIME vs monotonic change that counts as a jump
  bool use_evalsha = true;               // EVALSHA with EVAL fallback on -NOSCRIPT; or EVAL
  // The lock configuration epoch of the backend set in use (reconfig.h): backends that have
  // seen a newer one refuse this replica's grants and extends with -LOCKEPOCH.
  uint64_t config_epoch = 0;
};

// A configuration error text, or nullopt if the settings are usable.
std::optional<std::string> validate(const LockSettings& settings, int lock_backends);

int quorum(int total_backends);
int64_t effective_quarantine_ms(const LockSettings& settings);
// drift = floor(ttl * drift_factor) + 2.
int64_t drift_ms(const LockSettings& settings, int64_t ttl_ms);
// ttl - elapsed - drift (may be <= 0: then it is no grant).
int64_t validity_ms(const LockSettings& settings, int64_t ttl_ms, int64_t elapsed_ms);
// The delay before retry number `retry` (1-based), uniform in [d/2, 3d/2] by `seed`.
int64_t retry_delay_ms(const LockSettings& settings, uint64_t seed, int retry);
// Smallest ttl with a positive validity at zero elapsed time.
int64_t min_ttl_ms(const LockSettings& settings);

// A request to send. Safety does not depend on the order in which requests reach a backend,
// but sending them in the order emitted (one pipelined connection per backend) lets clean-up
// arrive before a retry and keeps contention low. If expects_reply is false nobody waits for
// the reply (clean-up after the round's decision): read and drop it.
struct Send {
  BackendId backend = 0;
  RequestId id = 0;
  std::string request;  // complete RESP command
  bool expects_reply = true;
};

// How one backend took part in the deciding phase (for error texts: which nodes voted how).
struct Vote {
  enum class Kind {
    kYes,        // granted / accepted / released / extended / answered
    kNo,         // held by someone else / refused / not held
    kTimeout,    // no reply in time, or the driver reported the request lost
    kTransient,  // error reply that should pass (LOADING, BUSY, OOM, ...)
    kError,      // error reply that will not pass by itself (misconfiguration)
    kExcluded,   // not asked: quarantined or not verified
  };
  BackendId backend = 0;
  Kind kind = Kind::kTimeout;
  std::string detail;  // the error text, or what "no" meant
};

struct Granted {
  std::string token;
  int64_t fence = 0;
  int64_t validity_ms = 0;  // from the moment the round returned this outcome
  bool reacquired = false;  // the OWNER's granted hold: same token, ttl refreshed, same fence
                            // (a fresh one if a newer fence was written since)
};
struct Busy {
  int64_t retry_after_ms = 0;  // when a quorum of backends would free it without a release
};
struct NotHeld {};
struct Released {};
struct Extended {
  int64_t validity_ms = 0;
};
struct LockStatus {
  bool held = false;
  int64_t fence = 0;   // recorded fence of the current hold, else the highest counter seen
  int64_t ttl_ms = 0;  // time until fewer than a quorum hold it (0 if not held)
  int answered = 0;
};
struct NoQuorum {
  int answered = 0;  // backends that gave a usable reply in the deciding phase
  int needed = 0;
  int total = 0;
  std::vector<Vote> votes;
};
struct LockError {
  std::string text;  // a Redis error line without '-', code first (LOCKCONFIG, LOCKTIMEOUT)
  std::vector<Vote> votes;
};
struct Cancelled {};

using AcquireOutcome = std::variant<Granted, Busy, NoQuorum, LockError, Cancelled>;
using ReleaseOutcome = std::variant<Released, NotHeld, NoQuorum, LockError>;
using ExtendOutcome = std::variant<Extended, NotHeld, NoQuorum, LockError>;
using StatusOutcome = std::variant<LockStatus, NoQuorum, LockError>;

// What a round asks of the driver after one input.
template <class Outcome>
struct Effects {
  std::vector<Send> sends;
  // (Re)arm the round's one timer to call on_timer after this many ms; replaces any earlier.
  std::optional<int64_t> timer_ms;
  // The round is over: answer the client, stop the timer. `sends` may still hold clean-up.
  std::optional<Outcome> done;
};

// The lock backends a round may use: all configured (N, for the quorum) and those eligible now.
struct Backends {
  int total = 0;
  std::vector<BackendId> eligible;
};

namespace detail {

// One script request to every eligible backend and the replies to it. Resends a request as
// EVAL once when a backend answers -NOSCRIPT to EVALSHA.
class Fanout {
 public:
  enum class State { kPending, kAnswered, kFailed };
  struct Slot {
    BackendId backend = 0;
    RequestId id = 0;
    State state = State::kPending;
    Vote::Kind failure = Vote::Kind::kTimeout;  // when kFailed
    Reply reply;                                // when kAnswered
    std::string detail;                         // when kFailed
    bool resent_as_eval = false;
    std::vector<std::string> args;  // this slot's arguments after a resend(); empty: the fanout's
  };

  void begin(const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
             std::span<const BackendId> backends, ScriptMode mode, RequestId& next_id,
             std::vector<Send>& out);
  // The slot now answered (a usable reply) or failed (error reply), or nullptr if `id` is not
  // pending here (late, unknown) or was resent as EVAL.
  Slot* on_reply(RequestId id, const Reply& reply, RequestId& next_id, std::vector<Send>& out);
  Slot* on_failure(RequestId id, std::string_view why);
  // Asks the slot's backend again with other arguments (the slot is pending again).
  void resend(Slot& slot, std::vector<std::string> args, ScriptMode mode, RequestId& next_id,
              std::vector<Send>& out);
  // Marks a usable-looking reply as malformed for this script.
  void reject(Slot& slot, std::string_view why);
  void fail_pending(std::string_view why);
  int count(State state) const;
  int count_failed(Vote::Kind kind) const;
  const std::vector<Slot>& slots() const { return slots_; }

 private:
  std::string request(ScriptMode mode, const Slot* slot = nullptr) const;

  const Script* script_ = nullptr;
  std::vector<std::string> keys_;
  std::vector<std::string> args_;
  std::vector<Slot> slots_;
};

// What the one-phase rounds (release, extend, status) share: one script request to every
// eligible backend under one deadline. The round itself (Derived) checks each answered slot
// in accept() (false: it asked that backend again) and decides in advance().
template <class Derived, class Outcome>
class OnePhaseRound {
 public:
  Effects<Outcome> on_reply(RequestId id, std::string_view raw_reply, int64_t now_ms);
  Effects<Outcome> on_reply(RequestId id, const Reply& reply, int64_t now_ms);
  Effects<Outcome> on_timeout(RequestId id, int64_t now_ms);
  Effects<Outcome> on_timer(int64_t now_ms);
  bool finished() const { return done_; }

 protected:
  OnePhaseRound(const LockSettings& settings, Backends backends)
      : settings_(settings), backends_(std::move(backends)) {}
  // The start of start(): false if the round must not (or can no longer) send anything; then
  // fx.done may hold the error.
  bool may_start(Effects<Outcome>& fx);
  void send_all(int64_t now, const Script& script, std::vector<std::string> keys,
                std::vector<std::string> args, ScriptMode mode, Effects<Outcome>& fx);

  LockSettings settings_;
  Backends backends_;
  RequestId next_id_ = 1;
  int64_t deadline_ = 0;
  bool done_ = false;
  Fanout phase_;
};

}  // namespace detail

struct AcquireRequest {
  std::string name;
  int64_t ttl_ms = 0;
  std::string token;  // >= 16 random bytes, fresh for every LOCK.ACQUIRE
  std::string owner;  // "" = no OWNER
  uint64_t jitter_seed = 0;
};

// One LOCK.ACQUIRE try: up to 1 + retry_count Redlock attempts, no waiting for the holder
// (WAIT is the driver's loop over rounds, driven by WaitQueue). Busy is final at once when a
// majority is held by others; split votes, lost fence races and missing answers retry after
// retry_delay_ms (randomized by jitter_seed); error replies that mean misconfiguration do not.
// Outcomes: Granted; Busy (held or contended: reply nil); NoQuorum; LockError (LOCKCONFIG, or
// LOCKTIMEOUT when the backends were too slow for the ttl); Cancelled (abandon()).
class AcquireRound {
 public:
  AcquireRound(const LockSettings& settings, Backends backends, AcquireRequest request);

  Effects<AcquireOutcome> start(int64_t now_ms);
  Effects<AcquireOutcome> on_reply(RequestId id, std::string_view raw_reply, int64_t now_ms);
  Effects<AcquireOutcome> on_reply(RequestId id, const Reply& reply, int64_t now_ms);
  // No reply will come for this request (connection lost, could not be sent).
  Effects<AcquireOutcome> on_timeout(RequestId id, int64_t now_ms);
  Effects<AcquireOutcome> on_timer(int64_t now_ms);
  // The client went away: undo whatever this round may hold; done = Cancelled.
  Effects<AcquireOutcome> abandon(int64_t now_ms);

  bool finished() const { return stage_ == Stage::kDone; }
  int attempts() const { return attempt_; }

 private:
  enum class Stage { kIdle, kAcquiring, kFencing, kBackoff, kDone };
  enum class Failure { kHeld, kContended, kNoQuorum, kConfig, kExpired };

  void begin_attempt(int64_t now, Effects<AcquireOutcome>& fx);
  void advance(int64_t now, Effects<AcquireOutcome>& fx);
  void advance_acquiring(int64_t now, Effects<AcquireOutcome>& fx);
  void advance_fencing(int64_t now, Effects<AcquireOutcome>& fx);
  void grant(int64_t now, int64_t validity, Effects<AcquireOutcome>& fx);
  void fail_attempt(int64_t now, Failure why, Effects<AcquireOutcome>& fx);
  void abort_everywhere(bool round_over, Effects<AcquireOutcome>& fx);
  bool check_acquire_reply(const Reply& reply) const;
  int64_t free_in_hint() const;

  LockSettings settings_;
  Backends backends_;
  AcquireRequest req_;
  Stage stage_ = Stage::kIdle;
  int attempt_ = 0;
  int64_t attempt_start_ = 0;
  int64_t deadline_ = 0;  // end of the current phase, or of the backoff
  RequestId next_id_ = 1;
  detail::Fanout phase_;
  // Decided in the acquire phase of the current attempt:
  std::string grant_token_;          // ours, or the OWNER's previous token
  bool grant_is_previous_ = false;   // the OWNER's earlier hold won the vote
  int64_t fence_ = 0;                // being written or confirmed in phase 2
  int64_t hint_ms_ = 0;              // Busy retry_after from the last acquire phase
  std::vector<Vote> acquire_votes_;  // of the last acquire phase (for errors)
};

// LOCK.RELEASE: 1 (Released) only if a quorum deleted the hold with this token.
class ReleaseRound : public detail::OnePhaseRound<ReleaseRound, ReleaseOutcome> {
 public:
  ReleaseRound(const LockSettings& settings, Backends backends, std::string name,
               std::string token);
  Effects<ReleaseOutcome> start(int64_t now_ms);

 private:
  friend class detail::OnePhaseRound<ReleaseRound, ReleaseOutcome>;
  bool accept(detail::Fanout::Slot& slot, Effects<ReleaseOutcome>& fx);
  void advance(int64_t now, Effects<ReleaseOutcome>& fx);

  std::string name_;
  std::string token_;
};

// LOCK.EXTEND and KEEPALIVE renewals. Extended only if a quorum extended the hold and the
// new validity (from this round's start) is > 0; otherwise NotHeld (or NoQuorum / LockError)
// and the holder must consider the lock lost. Holds are never shortened (the script keeps the
// later deadline) and nothing is released on failure (see advance()).
class ExtendRound : public detail::OnePhaseRound<ExtendRound, ExtendOutcome> {
 public:
  ExtendRound(const LockSettings& settings, Backends backends, std::string name, std::string token,
              int64_t ttl_ms);
  Effects<ExtendOutcome> start(int64_t now_ms);

 private:
  friend class detail::OnePhaseRound<ExtendRound, ExtendOutcome>;
  bool accept(detail::Fanout::Slot& slot, Effects<ExtendOutcome>& fx);
  void advance(int64_t now, Effects<ExtendOutcome>& fx);

  std::string name_;
  std::string token_;
  int64_t ttl_ms_;
  int64_t start_ = 0;
};

// LOCK.STATUS (the waiter count comes from WaitQueue, not from the backends).
class StatusRound : public detail::OnePhaseRound<StatusRound, StatusOutcome> {
 public:
  StatusRound(const LockSettings& settings, Backends backends, std::string name);
  Effects<StatusOutcome> start(int64_t now_ms);

 private:
  friend class detail::OnePhaseRound<StatusRound, StatusOutcome>;
  bool accept(detail::Fanout::Slot& slot, Effects<StatusOutcome>& fx);
  void advance(int64_t now, Effects<StatusOutcome>& fx);

  std::string name_;
};

// KEEPALIVE bookkeeping for one granted lock: when to start the next ExtendRound, and the
// rule that renewal ends for good at the first failure or when the connection closes.
class KeepAlive {
 public:
  enum class State { kActive, kLost, kStopped };

  // `now_ms`: when the grant (or the last extend) was returned, with its validity.
  KeepAlive(int64_t ttl_ms, int64_t now_ms, int64_t validity_ms);
  // Renew once a third of the validity has passed, leaving two thirds for the renewal.
  int64_t next_renewal_at() const { return next_at_; }
  void on_extended(int64_t now_ms, int64_t validity_ms);
  void on_failed() { state_ = State::kLost; }  // NotHeld / NoQuorum / LockError: lock lost
  void stop() { state_ = State::kStopped; }    // connection closed or lock released
  State state() const { return state_; }
  bool active() const { return state_ == State::kActive; }
  int64_t ttl_ms() const { return ttl_ms_; }
  int64_t valid_until() const { return valid_until_; }

 private:
  int64_t ttl_ms_;
  int64_t next_at_ = 0;
  int64_t valid_until_ = 0;
  State state_ = State::kActive;
};

// Error texts naming each backend's vote, e.g.
// "NOQUORUM 1 of 3 lock backends answered, 2 needed (b1: yes; b2: timeout; b3: quarantined)".
// `names[i]` names backend i; missing names print as "#i".
std::string error_text(const NoQuorum& outcome, std::span<const std::string> names);
// The error's text followed by the votes, if any.
std::string error_text(const LockError& error, std::span<const std::string> names);
std::string describe_votes(std::span<const Vote> votes, std::span<const std::string> names);

}  // namespace lockstep::lock
