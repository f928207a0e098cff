// The Redlock rounds. See include/lockstep/lock/redlock.h for the protocol and the argument
// for the fence; this file is the bookkeeping: which backend answered what, when a phase is
// decided (as soon as the outcome can no longer change, not when the last reply arrives), and
// what clean-up to send so that no attempt leaves a partial hold behind.
#include "lockstep/lock/redlock.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace lockstep::lock {
namespace {

// Errors a backend gives while it is loading, busy or short of memory: they pass by
// themselves, so they count like a timeout. Anything else (READONLY, NOPERM, WRONGTYPE on a
// reserved key, unknown command, a script error) means the backend is not usable as
// configured.
bool is_transient(std::string_view code) {
  return code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN" ||
         code == "OOM" || code == "NOREPLICAS" || code == "CLUSTERDOWN";
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::string num(int64_t v) {
  return fmt::format("{}", v);
}

ScriptMode mode_of(const LockSettings& s) {
  return s.use_evalsha ? ScriptMode::kEvalSha : ScriptMode::kEval;
}

// The backend list is the driver's; a malformed one is a programming error reported as a
// LOCKCONFIG error rather than undefined behaviour.
bool valid_backends(const Backends& b) {
  if (b.total <= 0) return false;
  std::vector<bool> seen(static_cast<size_t>(b.total), false);
  for (BackendId id : b.eligible) {
    if (id < 0 || id >= b.total || seen[static_cast<size_t>(id)]) return false;
    seen[static_cast<size_t>(id)] = true;
  }
  return true;
}

// Requests nobody waits for: always EVAL, since nobody would see -NOSCRIPT.
void broadcast_cleanup(const Script& script, std::span<const std::string_view> keys,
                       std::span<const std::string_view> args, const Backends& backends,
                       RequestId& next_id, std::vector<Send>& out) {
  const std::string request = script_request(script, ScriptMode::kEval, keys, args);
  for (BackendId b : backends.eligible) out.push_back(Send{b, next_id++, request, false});
}

// Votes of every configured backend in the deciding phase. `classify` turns a usable reply into
// yes/no and an optional detail.
template <class Classify>
std::vector<Vote> collect_votes(const Backends& backends, const detail::Fanout& phase,
                                Classify classify) {
  std::vector<Vote> votes;
  std::vector<bool> asked(static_cast<size_t>(std::max(backends.total, 0)), false);
  for (const auto& slot : phase.slots()) {
    Vote v;
    v.backend = slot.backend;
    switch (slot.state) {
      case detail::Fanout::State::kAnswered:
        v.kind = classify(slot.reply, v.detail);
        break;
      case detail::Fanout::State::kFailed:
        v.kind = slot.failure;
        v.detail = slot.detail;
        break;
      case detail::Fanout::State::kPending:
        v.kind = Vote::Kind::kTimeout;
        v.detail = "no reply yet";
        break;
    }
    if (slot.backend >= 0 && slot.backend < backends.total)
      asked[static_cast<size_t>(slot.backend)] = true;
    votes.push_back(std::move(v));
  }
  for (BackendId b = 0; b < backends.total; ++b)
    if (!asked[static_cast<size_t>(b)])
      votes.push_back(Vote{b, Vote::Kind::kExcluded, "quarantined or not verified"});
  std::sort(votes.begin(), votes.end(),
            [](const Vote& a, const Vote& b) { return a.backend < b.backend; });
  return votes;
}

// Votes when nothing was sent (too few eligible backends).
std::vector<Vote> excluded_votes(const Backends& backends) {
  detail::Fanout none;
  auto votes =
      collect_votes(backends, none, [](const Reply&, std::string&) { return Vote::Kind::kYes; });
  for (Vote& v : votes)
    if (std::find(backends.eligible.begin(), backends.eligible.end(), v.backend) !=
        backends.eligible.end())
      v.detail = "not asked (too few eligible backends)";
  return votes;
}

Vote::Kind yes_if_one(const Reply& r, std::string& detail) {
  if (r.integer == 1) return Vote::Kind::kYes;
  detail = "not held with this token";
  return Vote::Kind::kNo;
}

// The lock configuration epoch the requests carry (reconfig.h).
std::string epoch(const LockSettings& s) {
  return fmt::format("{}", s.config_epoch);
}

bool is_zero_or_one(const Reply& r) {
  return r.type == Reply::Type::kInteger && (r.integer == 0 || r.integer == 1);
}

// Whether the pending replies could still give a quorum of answers, i.e. turn "no quorum
// answered" into a definite "not held": until then the round waits rather than say NOQUORUM.
bool may_still_refuse(const detail::Fanout& phase, int q) {
  const int answered = phase.count(detail::Fanout::State::kAnswered);
  return answered < q && answered + phase.count(detail::Fanout::State::kPending) >= q;
}

// The release script's {2, generation}: held with this token, but adopted since.
bool is_generation(const Reply& r) {
  return r.type == Reply::Type::kArray && r.elements.size() == 2 &&
         r.elements[0].type == Reply::Type::kInteger && r.elements[0].integer == 2 &&
         r.elements[1].as_int().has_value();
}

// The common prologue of every round: a configured cluster, and enough eligible backends that
// a quorum is possible at all.
template <class Outcome>
bool precheck(const Backends& backends, Effects<Outcome>& fx) {
  if (!valid_backends(backends)) {
    fx.done = LockError{backends.total <= 0
                            ? "LOCKCONFIG no lock backends are configured (locks.backends)"
                            : "LOCKCONFIG invalid lock backend list",
                        {}};
    return false;
  }
  const int q = quorum(backends.total);
  if (static_cast<int>(backends.eligible.size()) < q) {
    fx.done = NoQuorum{0, q, backends.total, excluded_votes(backends)};
    return false;
  }
  return true;
}

// After a phase that did not reach its quorum: misconfiguration if error replies are what kept
// the answers under the quorum, otherwise no quorum.
template <class Outcome, class Classify>
void no_quorum_or_error(const Backends& backends, const detail::Fanout& phase, Classify classify,
                        Effects<Outcome>& fx) {
  const int answered = phase.count(detail::Fanout::State::kAnswered);
  auto votes = collect_votes(backends, phase, classify);
  if (phase.count_failed(Vote::Kind::kError) > 0) {
    fx.done = LockError{"LOCKCONFIG lock backends refused the lock script", std::move(votes)};
  } else {
    fx.done = NoQuorum{answered, quorum(backends.total), backends.total, std::move(votes)};
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Settings and formulas

int quorum(int total_backends) {
  return total_backends / 2 + 1;
}

int64_t effective_quarantine_ms(const LockSettings& s) {
  return s.quarantine_ms.value_or(s.max_ttl_ms + s.lock_delay_ms);
}

int64_t drift_ms(const LockSettings& s, int64_t ttl_ms) {
  // The epsilon keeps products such as 300 * 0.01 = 2.9999999999999996 from rounding down.
  return static_cast<int64_t>(std::floor(static_cast<double>(ttl_ms) * s.drift_factor + 1e-9)) + 2;
}

int64_t validity_ms(const LockSettings& s, int64_t ttl_ms, int64_t elapsed_ms) {
  return ttl_ms - elapsed_ms - drift_ms(s, ttl_ms);
}

int64_t retry_delay_ms(const LockSettings& s, uint64_t seed, int retry) {
  if (s.retry_delay_ms <= 0) return 0;
  const uint64_t low = static_cast<uint64_t>(s.retry_delay_ms / 2);
  const uint64_t span = static_cast<uint64_t>(s.retry_delay_ms) + 1;
  const uint64_t r = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(retry)));
  return static_cast<int64_t>(low + r % span);
}

int64_t min_ttl_ms(const LockSettings& s) {
  for (int64_t ttl = 1; ttl < 1000000; ++ttl)
    if (validity_ms(s, ttl, 0) > 0) return ttl;
  return std::numeric_limits<int64_t>::max();
}

std::optional<std::string> validate(const LockSettings& s, int lock_backends) {
  if (lock_backends < 1) return "locks.backends: at least one lock backend is needed";
  if (!(s.drift_factor >= 0 && s.drift_factor < 0.5))
    return "locks.drift_factor: must be at least 0 and below 0.5";
  if (s.retry_count < 0 || s.retry_count > 1000) return "locks.retry_count: must be from 0 to 1000";
  if (s.retry_delay_ms < 0) return "locks.retry_delay_ms: must not be negative";
  if (s.backend_timeout_ms < 1) return "locks.backend_timeout_ms: must be at least 1";
  if (s.max_ttl_ms < min_ttl_ms(s))
    return fmt::format("locks.max_ttl_ms: must be at least {}", min_ttl_ms(s));
  if (s.backend_timeout_ms >= s.max_ttl_ms)
    return "locks.backend_timeout_ms: must be much smaller than locks.max_ttl_ms";
  if (s.lock_delay_ms < 0) return "locks.lock_delay_ms: must not be negative";
  if (s.quarantine_ms && *s.quarantine_ms < s.max_ttl_ms + s.lock_delay_ms)
    return "locks.quarantine_ms: must be at least locks.max_ttl_ms + locks.lock_delay_ms, so "
           "every hold a restarted backend forgot has expired before it votes again";
  if (s.clock_jump_tolerance_ms < 1) return "locks.clock_jump_tolerance_ms: must be at least 1";
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Fanout

namespace detail {

std::string Fanout::request(ScriptMode mode, const Slot* slot) const {
  const auto& source = slot != nullptr && !slot->args.empty() ? slot->args : args_;
  std::vector<std::string_view> keys(keys_.begin(), keys_.end());
  std::vector<std::string_view> args(source.begin(), source.end());
  return script_request(*script_, mode, keys, args);
}

void Fanout::resend(Slot& slot, std::vector<std::string> args, ScriptMode mode, RequestId& next_id,
                    std::vector<Send>& out) {
  slot.args = std::move(args);
  slot.state = State::kPending;
  slot.id = next_id++;
  out.push_back(Send{slot.backend, slot.id,
                     request(slot.resent_as_eval ? ScriptMode::kEval : mode, &slot), true});
}

void Fanout::begin(const Script& script, std::vector<std::string> keys,
                   std::vector<std::string> args, std::span<const BackendId> backends,
                   ScriptMode mode, RequestId& next_id, std::vector<Send>& out) {
  script_ = &script;
  keys_ = std::move(keys);
  args_ = std::move(args);
  slots_.clear();
  const std::string req = request(mode);
  for (BackendId b : backends) {
    Slot s;
    s.backend = b;
    s.id = next_id++;
    s.resent_as_eval = mode == ScriptMode::kEval;  // nothing to fall back to
    out.push_back(Send{b, s.id, req, true});
    slots_.push_back(std::move(s));
  }
}

Fanout::Slot* Fanout::on_reply(RequestId id, const Reply& reply, RequestId& next_id,
                               std::vector<Send>& out) {
  auto it = std::find_if(slots_.begin(), slots_.end(),
                         [id](const Slot& s) { return s.id == id && s.state == State::kPending; });
  if (it == slots_.end()) return nullptr;
  if (reply.is_error()) {
    if (reply.error_code() == "NOSCRIPT" && !it->resent_as_eval) {
      it->resent_as_eval = true;
      it->id = next_id++;
      out.push_back(Send{it->backend, it->id, request(ScriptMode::kEval, &*it), true});
      return nullptr;
    }
    it->state = State::kFailed;
    it->failure = is_transient(reply.error_code()) ? Vote::Kind::kTransient : Vote::Kind::kError;
    it->detail = reply.text;
    return &*it;
  }
  it->state = State::kAnswered;
  it->reply = reply;
  return &*it;
}

Fanout::Slot* Fanout::on_failure(RequestId id, std::string_view why) {
  for (Slot& s : slots_) {
    if (s.id == id && s.state == State::kPending) {
      s.state = State::kFailed;
      s.failure = Vote::Kind::kTimeout;
      s.detail.assign(why);
      return &s;
    }
  }
  return nullptr;
}

void Fanout::reject(Slot& slot, std::string_view why) {
  slot.state = State::kFailed;
  slot.failure = Vote::Kind::kError;
  slot.detail.assign(why);
}

void Fanout::fail_pending(std::string_view why) {
  for (Slot& s : slots_) {
    if (s.state != State::kPending) continue;
    s.state = State::kFailed;
    s.failure = Vote::Kind::kTimeout;
    s.detail.assign(why);
  }
}

int Fanout::count(State state) const {
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(),
                                        [state](const Slot& s) { return s.state == state; }));
}

int Fanout::count_failed(Vote::Kind kind) const {
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [kind](const Slot& s) {
    return s.state == State::kFailed && s.failure == kind;
  }));
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// AcquireRound

namespace {

enum AcquireKind : int64_t { kAcqBusy = 0, kAcqFresh = 1, kAcqOurs = 2 };

Vote::Kind classify_fence(const Reply& r, std::string& detail) {
  if (r.elements[0].integer == 1) return Vote::Kind::kYes;
  detail = fmt::format("refused, counter at {}", r.elements[1].as_int().value_or(0));
  return Vote::Kind::kNo;
}

bool check_fence_reply(const Reply& r) {
  return r.type == Reply::Type::kArray && r.elements.size() == 2 && is_zero_or_one(r.elements[0]) &&
         r.elements[1].as_int().value_or(-1) >= 0;
}

}  // namespace

AcquireRound::AcquireRound(const LockSettings& settings, Backends backends, AcquireRequest request)
    : settings_(settings), backends_(std::move(backends)), req_(std::move(request)) {}

bool AcquireRound::check_acquire_reply(const Reply& r) const {
  if (r.type != Reply::Type::kArray || r.elements.size() < 2) return false;
  const Reply& kind = r.elements[0];
  if (kind.type != Reply::Type::kInteger || r.elements[1].as_int().value_or(-1) < 0) return false;
  switch (kind.integer) {
    case kAcqFresh:
      return r.elements.size() == 2;
    case kAcqOurs:
      return r.elements.size() == 4 && r.elements[2].type == Reply::Type::kString &&
             r.elements[3].as_int().value_or(-1) >= 0;
    case kAcqBusy:
      return r.elements.size() == 3 && r.elements[2].type == Reply::Type::kInteger;
    default:
      return false;
  }
}

Effects<AcquireOutcome> AcquireRound::start(int64_t now) {
  Effects<AcquireOutcome> fx;
  if (stage_ != Stage::kIdle) return fx;
  if (!precheck(backends_, fx)) {
    stage_ = Stage::kDone;
    return fx;
  }
  if (req_.ttl_ms < min_ttl_ms(settings_) || req_.ttl_ms > settings_.max_ttl_ms ||
      req_.token.empty()) {
    stage_ = Stage::kDone;
    fx.done = LockError{"ERR invalid lock request (ttl out of range or empty token)", {}};
    return fx;
  }
  begin_attempt(now, fx);
  return fx;
}

void AcquireRound::begin_attempt(int64_t now, Effects<AcquireOutcome>& fx) {
  ++attempt_;
  attempt_start_ = now;
  stage_ = Stage::kAcquiring;
  grant_token_.clear();
  grant_is_previous_ = false;
  phase_.begin(kAcquireScript, {lock_key(req_.name), fence_key(req_.name), lockcfg_key()},
               {req_.token, num(req_.ttl_ms), req_.owner, num(attempt_),
                num(req_.ttl_ms + settings_.lock_delay_ms), epoch(settings_)},
               backends_.eligible, mode_of(settings_), next_id_, fx.sends);
  deadline_ = now + settings_.backend_timeout_ms;
  fx.timer_ms = settings_.backend_timeout_ms;
}

Effects<AcquireOutcome> AcquireRound::on_reply(RequestId id, std::string_view raw, int64_t now) {
  auto parsed = parse_reply(raw);
  return on_reply(id, parsed ? *parsed : Reply::of_error("ERR malformed reply from backend"), now);
}

Effects<AcquireOutcome> AcquireRound::on_reply(RequestId id, const Reply& reply, int64_t now) {
  Effects<AcquireOutcome> fx;
  if (stage_ != Stage::kAcquiring && stage_ != Stage::kFencing) return fx;
  auto* slot = phase_.on_reply(id, reply, next_id_, fx.sends);
  if (slot == nullptr) return fx;
  if (slot->state == detail::Fanout::State::kAnswered) {
    const bool ok = stage_ == Stage::kAcquiring ? check_acquire_reply(slot->reply)
                                                : check_fence_reply(slot->reply);
    if (!ok)
      phase_.reject(*slot, stage_ == Stage::kAcquiring ? "unexpected reply to the acquire script"
                                                       : "unexpected reply to the fence script");
  }
  advance(now, fx);
  return fx;
}

Effects<AcquireOutcome> AcquireRound::on_timeout(RequestId id, int64_t now) {
  Effects<AcquireOutcome> fx;
  if (stage_ != Stage::kAcquiring && stage_ != Stage::kFencing) return fx;
  if (phase_.on_failure(id, "request lost") != nullptr) advance(now, fx);
  return fx;
}

Effects<AcquireOutcome> AcquireRound::on_timer(int64_t now) {
  Effects<AcquireOutcome> fx;
  switch (stage_) {
    case Stage::kAcquiring:
    case Stage::kFencing:
      if (now < deadline_) {
        fx.timer_ms = deadline_ - now;  // an early or stale timer: keep waiting
        return fx;
      }
      phase_.fail_pending(fmt::format("timeout ({} ms)", settings_.backend_timeout_ms));
      advance(now, fx);
      return fx;
    case Stage::kBackoff:
      if (now < deadline_) {
        fx.timer_ms = deadline_ - now;
        return fx;
      }
      begin_attempt(now, fx);
      return fx;
    default:
      return fx;
  }
}

Effects<AcquireOutcome> AcquireRound::abandon(int64_t) {
  Effects<AcquireOutcome> fx;
  if (stage_ == Stage::kDone) return fx;
  if (stage_ != Stage::kIdle) abort_everywhere(/*round_over=*/true, fx);
  stage_ = Stage::kDone;
  fx.done = Cancelled{};
  return fx;
}

void AcquireRound::advance(int64_t now, Effects<AcquireOutcome>& fx) {
  if (stage_ == Stage::kAcquiring)
    advance_acquiring(now, fx);
  else if (stage_ == Stage::kFencing)
    advance_fencing(now, fx);
}

void AcquireRound::advance_acquiring(int64_t now, Effects<AcquireOutcome>& fx) {
  const int q = quorum(backends_.total);
  int mine = 0, busy = 0;
  int64_t max_counter = 0;
  struct Group {
    std::string token;
    int count = 0;
    int64_t recorded_fence = 0;
  };
  std::vector<Group> previous;  // the OWNER's other holds, by token (normally one)
  for (const auto& slot : phase_.slots()) {
    if (slot.state != detail::Fanout::State::kAnswered) continue;
    const auto& e = slot.reply.elements;
    max_counter = std::max(max_counter, *e[1].as_int());
    if (e[0].integer == kAcqFresh || (e[0].integer == kAcqOurs && e[2].text == req_.token)) {
      ++mine;
    } else if (e[0].integer == kAcqOurs && *e[3].as_int() > 0) {
      // The OWNER's hold from a granted round (it has a recorded fence): adoptable.
      auto g = std::find_if(previous.begin(), previous.end(),
                            [&](const Group& x) { return x.token == e[2].text; });
      if (g == previous.end()) g = previous.insert(previous.end(), Group{e[2].text, 0, 0});
      ++g->count;
      g->recorded_fence = std::max(g->recorded_fence, *e[3].as_int());
    } else {
      // Held by someone else, or by this OWNER's round that was never granted (its clean-up
      // may still be on its way, so adopting that hold could lose it from under the grant).
      ++busy;
    }
  }
  const Group* best = nullptr;
  for (const auto& g : previous)
    if (best == nullptr || g.count > best->count) best = &g;
  const int best_prev = best ? best->count : 0;
  const int pending = phase_.count(detail::Fanout::State::kPending);

  const bool mine_wins = mine >= q;
  const bool prev_wins = !mine_wins && best_prev >= q;
  if (!mine_wins && !prev_wins && pending + std::max(mine, best_prev) >= q) return;  // not yet
  // Nor while the pending votes could still show the lock held by others: "held" (nil) is the
  // answer a client can act on, NOQUORUM only says too few lock backends answered.
  if (!mine_wins && !prev_wins && busy < q && busy + pending >= q) return;

  // Decided: remember how everyone voted and when the lock would free up by itself.
  acquire_votes_ = collect_votes(backends_, phase_, [&](const Reply& r, std::string& detail) {
    if (r.elements[0].integer == kAcqBusy) {
      detail = fmt::format("held by another holder ({} ms left)", r.elements[2].integer);
      return Vote::Kind::kNo;
    }
    if (r.elements[0].integer == kAcqOurs && r.elements[2].text != req_.token) {
      if (*r.elements[3].as_int() == 0) {
        detail = "held by an unfinished acquire of this owner";
        return Vote::Kind::kNo;
      }
      detail = "held by this owner";
    }
    return Vote::Kind::kYes;
  });
  hint_ms_ = free_in_hint();

  if (!mine_wins && !prev_wins) {
    const int answered = phase_.count(detail::Fanout::State::kAnswered);
    Failure why = Failure::kContended;
    if (busy >= q) {
      why = Failure::kHeld;
    } else if (answered < q) {
      why = phase_.count_failed(Vote::Kind::kError) > 0 ? Failure::kConfig : Failure::kNoQuorum;
    }
    fail_attempt(now, why, fx);
    return;
  }

  const int64_t validity = validity_ms(settings_, req_.ttl_ms, now - attempt_start_);
  if (validity <= 0) {
    fail_attempt(now, Failure::kExpired, fx);
    return;
  }
  grant_is_previous_ = prev_wins;
  grant_token_ = prev_wins ? best->token : req_.token;
  // Phase 2. A fresh grant proposes M+1, M the highest counter among the (at least quorum)
  // replies. An OWNER re-acquire whose hold recorded a fence F >= M asks for F to be confirmed
  // instead (accepted where the counter is <= F): that fails if a newer fence was committed
  // since, whatever delays the network had, so a stale F is never handed out again.
  const bool confirm = prev_wins && best->recorded_fence > 0 && best->recorded_fence >= max_counter;
  stage_ = Stage::kFencing;
  fence_ = confirm ? best->recorded_fence : max_counter + 1;
  phase_.begin(kFenceWriteScript, {fence_key(req_.name), lockcfg_key()},
               {num(fence_), confirm ? "1" : "0", epoch(settings_)}, backends_.eligible,
               mode_of(settings_), next_id_, fx.sends);
  deadline_ = now + settings_.backend_timeout_ms;
  fx.timer_ms = settings_.backend_timeout_ms;
}

void AcquireRound::advance_fencing(int64_t now, Effects<AcquireOutcome>& fx) {
  const int q = quorum(backends_.total);
  int accepted = 0;
  for (const auto& slot : phase_.slots())
    if (slot.state == detail::Fanout::State::kAnswered && slot.reply.elements[0].integer == 1)
      ++accepted;
  const int pending = phase_.count(detail::Fanout::State::kPending);
  if (accepted >= q) {
    // Validity counts from the attempt's first request, phase 2 included.
    const int64_t validity = validity_ms(settings_, req_.ttl_ms, now - attempt_start_);
    if (validity <= 0) {
      fail_attempt(now, Failure::kExpired, fx);
    } else {
      grant(now, validity, fx);
    }
    return;
  }
  if (accepted + pending >= q) return;  // not yet
  const int answered = phase_.count(detail::Fanout::State::kAnswered);
  Failure why = Failure::kContended;  // another writer got there first
  if (answered < q)
    why = phase_.count_failed(Vote::Kind::kError) > 0 ? Failure::kConfig : Failure::kNoQuorum;
  fail_attempt(now, why, fx);
}

void AcquireRound::grant(int64_t now, int64_t validity, Effects<AcquireOutcome>& fx) {
  (void)now;
  const std::string lock = lock_key(req_.name);
  const std::string_view keys[] = {lock};
  {
    // Recorded only now that it is committed, so a recorded fence is always a committed one;
    // on our holds only where stamped with this attempt (see scripts.h), on adopted holds
    // only where a fence was recorded before.
    const std::string fence = num(fence_);
    const std::string attempt = grant_is_previous_ ? "" : num(attempt_);
    const std::string_view args[] = {grant_token_, fence, attempt};
    broadcast_cleanup(kRecordFenceScript, keys, args, backends_, next_id_, fx.sends);
  }
  if (grant_is_previous_) {
    // The OWNER's earlier hold won: this round's own fresh holds are not part of the grant.
    const std::string_view args[] = {req_.token, ""};
    broadcast_cleanup(kAbortScript, keys, args, backends_, next_id_, fx.sends);
  }
  stage_ = Stage::kDone;
  fx.done = Granted{grant_token_, fence_, validity, grant_is_previous_};
}

void AcquireRound::abort_everywhere(bool round_over, Effects<AcquireOutcome>& fx) {
  // Every eligible backend, also those that said no or did not answer: a late or lost reply
  // may hide a hold. While retries remain, only this attempt's holds (a delayed abort must not
  // delete the next attempt's); once the round is over, every attempt's. Never another
  // token's hold: an OWNER's earlier hold this round refreshed stays as it was.
  const std::string lock = lock_key(req_.name);
  const std::string attempt = round_over ? "" : num(attempt_);
  const std::string_view keys[] = {lock};
  const std::string_view args[] = {req_.token, attempt};
  broadcast_cleanup(kAbortScript, keys, args, backends_, next_id_, fx.sends);
}

void AcquireRound::fail_attempt(int64_t now, Failure why, Effects<AcquireOutcome>& fx) {
  const bool final_attempt =
      why == Failure::kHeld || why == Failure::kConfig || attempt_ > settings_.retry_count;
  if (!final_attempt) {
    stage_ = Stage::kBackoff;
    abort_everywhere(/*round_over=*/false, fx);
    const int64_t delay = retry_delay_ms(settings_, req_.jitter_seed, attempt_);
    deadline_ = now + delay;
    fx.timer_ms = delay;
    return;
  }
  const bool fencing = stage_ == Stage::kFencing;
  stage_ = Stage::kDone;
  abort_everywhere(/*round_over=*/true, fx);
  // Votes of the phase that decided: the fence phase's if it failed there.
  std::vector<Vote> votes =
      fencing ? collect_votes(backends_, phase_, classify_fence) : acquire_votes_;
  const int answered = phase_.count(detail::Fanout::State::kAnswered);
  switch (why) {
    case Failure::kHeld:
    case Failure::kContended:
      fx.done = Busy{hint_ms_};
      break;
    case Failure::kNoQuorum:
      fx.done = NoQuorum{answered, quorum(backends_.total), backends_.total, std::move(votes)};
      break;
    case Failure::kConfig:
      fx.done = LockError{"LOCKCONFIG lock backends refused the lock script", std::move(votes)};
      break;
    case Failure::kExpired:
      fx.done = LockError{
          fmt::format("LOCKTIMEOUT the lock backends took {} ms, leaving no "
                      "validity of the {} ms ttl (drift {} ms)",
                      now - attempt_start_, req_.ttl_ms, drift_ms(settings_, req_.ttl_ms)),
          std::move(votes)};
      break;
  }
}

int64_t AcquireRound::free_in_hint() const {
  // Each backend is free after its hold's remaining life (0 if free, ours, or unknown); a
  // quorum is free after the quorum-th smallest of those.
  std::vector<int64_t> free_in;
  for (const auto& slot : phase_.slots()) {
    int64_t t = 0;
    if (slot.state == detail::Fanout::State::kAnswered &&
        slot.reply.elements[0].integer == kAcqBusy) {
      t = slot.reply.elements[2].integer;
      if (t < 0) t = t == -1 ? settings_.max_ttl_ms + settings_.lock_delay_ms : 0;
    }
    free_in.push_back(t);
  }
  std::sort(free_in.begin(), free_in.end());
  const size_t q = static_cast<size_t>(quorum(backends_.total));
  if (free_in.size() < q) return 0;
  return free_in[q - 1];
}

// ---------------------------------------------------------------------------------------------
// OnePhaseRound

namespace detail {

template <class Derived, class Outcome>
Effects<Outcome> OnePhaseRound<Derived, Outcome>::on_reply(RequestId id, std::string_view raw,
                                                           int64_t now) {
  auto parsed = parse_reply(raw);
  return on_reply(id, parsed ? *parsed : Reply::of_error("ERR malformed reply from backend"), now);
}

template <class Derived, class Outcome>
Effects<Outcome> OnePhaseRound<Derived, Outcome>::on_reply(RequestId id, const Reply& reply,
                                                           int64_t now) {
  Effects<Outcome> fx;
  if (done_) return fx;
  auto* slot = phase_.on_reply(id, reply, next_id_, fx.sends);
  if (slot == nullptr) return fx;
  if (slot->state == Fanout::State::kAnswered && !static_cast<Derived*>(this)->accept(*slot, fx))
    return fx;
  static_cast<Derived*>(this)->advance(now, fx);
  return fx;
}

template <class Derived, class Outcome>
Effects<Outcome> OnePhaseRound<Derived, Outcome>::on_timeout(RequestId id, int64_t now) {
  Effects<Outcome> fx;
  if (!done_ && phase_.on_failure(id, "request lost") != nullptr)
    static_cast<Derived*>(this)->advance(now, fx);
  return fx;
}

template <class Derived, class Outcome>
Effects<Outcome> OnePhaseRound<Derived, Outcome>::on_timer(int64_t now) {
  Effects<Outcome> fx;
  if (done_ || deadline_ == 0) return fx;
  if (now < deadline_) {
    fx.timer_ms = deadline_ - now;
    return fx;
  }
  phase_.fail_pending(fmt::format("timeout ({} ms)", settings_.backend_timeout_ms));
  static_cast<Derived*>(this)->advance(now, fx);
  return fx;
}

template <class Derived, class Outcome>
bool OnePhaseRound<Derived, Outcome>::may_start(Effects<Outcome>& fx) {
  if (done_ || deadline_ != 0) return false;
  if (!precheck(backends_, fx)) {
    done_ = true;
    return false;
  }
  return true;
}

template <class Derived, class Outcome>
void OnePhaseRound<Derived, Outcome>::send_all(int64_t now, const Script& script,
                                               std::vector<std::string> keys,
                                               std::vector<std::string> args, ScriptMode mode,
                                               Effects<Outcome>& fx) {
  phase_.begin(script, std::move(keys), std::move(args), backends_.eligible, mode, next_id_,
               fx.sends);
  deadline_ = now + settings_.backend_timeout_ms;
  fx.timer_ms = settings_.backend_timeout_ms;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// ReleaseRound

ReleaseRound::ReleaseRound(const LockSettings& settings, Backends backends, std::string name,
                           std::string token)
    : OnePhaseRound(settings, std::move(backends)),
      name_(std::move(name)),
      token_(std::move(token)) {}

Effects<ReleaseOutcome> ReleaseRound::start(int64_t now) {
  Effects<ReleaseOutcome> fx;
  // Always EVAL: a release is the one request whose late effect matters after its round has
  // decided (it frees the lock on a slow backend), and a late -NOSCRIPT to EVALSHA would be
  // dropped with the round, leaving the hold there until its TTL.
  if (may_start(fx))
    send_all(now, kReleaseScript, {lock_key(name_)}, {token_, "0"}, ScriptMode::kEval, fx);
  return fx;
}

bool ReleaseRound::accept(detail::Fanout::Slot& slot, Effects<ReleaseOutcome>& fx) {
  if (is_generation(slot.reply)) {
    // The hold was adopted by an OWNER re-acquire since it was granted: release exactly the
    // generation this round found. A release request that is still in flight when a later
    // re-acquire adopts the hold carries an older generation, so it can no longer delete it.
    if (slot.args.empty()) {
      phase_.resend(slot, {token_, slot.reply.elements[1].text}, ScriptMode::kEval, next_id_,
                    fx.sends);
      return false;
    }
    slot.reply = Reply::of_integer(0);  // adopted again while we released: not ours to delete
  }
  if (!is_zero_or_one(slot.reply)) phase_.reject(slot, "unexpected reply to the release script");
  return true;
}

void ReleaseRound::advance(int64_t, Effects<ReleaseOutcome>& fx) {
  const int q = quorum(backends_.total);
  int yes = 0;
  for (const auto& slot : phase_.slots())
    if (slot.state == detail::Fanout::State::kAnswered && slot.reply.integer == 1) ++yes;
  const int pending = phase_.count(detail::Fanout::State::kPending);
  if (yes >= q) {
    done_ = true;
    fx.done = Released{};
    return;
  }
  if (yes + pending >= q || may_still_refuse(phase_, q)) return;
  done_ = true;
  if (phase_.count(detail::Fanout::State::kAnswered) >= q) {
    fx.done = NotHeld{};
    return;
  }
  no_quorum_or_error(backends_, phase_, yes_if_one, fx);
}

// ---------------------------------------------------------------------------------------------
// ExtendRound

ExtendRound::ExtendRound(const LockSettings& settings, Backends backends, std::string name,
                         std::string token, int64_t ttl_ms)
    : OnePhaseRound(settings, std::move(backends)),
      name_(std::move(name)),
      token_(std::move(token)),
      ttl_ms_(ttl_ms) {}

Effects<ExtendOutcome> ExtendRound::start(int64_t now) {
  Effects<ExtendOutcome> fx;
  if (!may_start(fx)) return fx;
  if (ttl_ms_ < min_ttl_ms(settings_) || ttl_ms_ > settings_.max_ttl_ms) {
    done_ = true;
    fx.done = LockError{"ERR invalid lock request (ttl out of range)", {}};
    return fx;
  }
  start_ = now;
  send_all(now, kExtendScript, {lock_key(name_), lockcfg_key()},
           {token_, num(ttl_ms_), num(ttl_ms_ + settings_.lock_delay_ms), epoch(settings_)},
           mode_of(settings_), fx);
  return fx;
}

bool ExtendRound::accept(detail::Fanout::Slot& slot, Effects<ExtendOutcome>&) {
  if (!is_zero_or_one(slot.reply)) phase_.reject(slot, "unexpected reply to the extend script");
  return true;
}

void ExtendRound::advance(int64_t now, Effects<ExtendOutcome>& fx) {
  // No clean-up on failure: what remains extended is at most a minority (which blocks no one)
  // or, if validity ran out, holds that expire by themselves; a release sent now could land
  // after the same OWNER re-acquired the hold and delete it from under the new grant.
  const int q = quorum(backends_.total);
  int yes = 0;
  for (const auto& slot : phase_.slots())
    if (slot.state == detail::Fanout::State::kAnswered && slot.reply.integer == 1) ++yes;
  const int pending = phase_.count(detail::Fanout::State::kPending);
  if (yes >= q) {
    done_ = true;
    const int64_t validity = validity_ms(settings_, ttl_ms_, now - start_);
    if (validity > 0) {
      fx.done = Extended{validity};
    } else {
      fx.done = NotHeld{};
    }
    return;
  }
  if (yes + pending >= q || may_still_refuse(phase_, q)) return;
  done_ = true;
  if (phase_.count(detail::Fanout::State::kAnswered) >= q) {
    fx.done = NotHeld{};
    return;
  }
  no_quorum_or_error(backends_, phase_, yes_if_one, fx);
}

// ---------------------------------------------------------------------------------------------
// StatusRound

StatusRound::StatusRound(const LockSettings& settings, Backends backends, std::string name)
    : OnePhaseRound(settings, std::move(backends)), name_(std::move(name)) {}

Effects<StatusOutcome> StatusRound::start(int64_t now) {
  Effects<StatusOutcome> fx;
  if (may_start(fx))
    send_all(now, kStatusScript, {lock_key(name_), fence_key(name_)}, {}, mode_of(settings_), fx);
  return fx;
}

bool StatusRound::accept(detail::Fanout::Slot& slot, Effects<StatusOutcome>&) {
  const Reply& r = slot.reply;
  if (!(r.type == Reply::Type::kArray && r.elements.size() == 4 && is_zero_or_one(r.elements[0]) &&
        r.elements[1].as_int().value_or(-1) >= 0 && r.elements[2].type == Reply::Type::kInteger &&
        r.elements[3].as_int().value_or(-1) >= 0))
    phase_.reject(slot, "unexpected reply to the status script");
  return true;
}

void StatusRound::advance(int64_t, Effects<StatusOutcome>& fx) {
  // Status is advisory and cheap: it waits for every backend (or the deadline) so that the
  // counter maximum covers as many backends as possible.
  if (phase_.count(detail::Fanout::State::kPending) > 0) return;
  done_ = true;
  const int q = quorum(backends_.total);
  const int answered = phase_.count(detail::Fanout::State::kAnswered);
  if (answered < q) {
    no_quorum_or_error(
        backends_, phase_, [](const Reply&, std::string&) { return Vote::Kind::kYes; }, fx);
    return;
  }
  LockStatus st;
  st.answered = answered;
  int64_t max_counter = 0, max_recorded = 0;
  std::vector<int64_t> remaining;
  for (const auto& slot : phase_.slots()) {
    if (slot.state != detail::Fanout::State::kAnswered) continue;
    const auto& e = slot.reply.elements;
    max_counter = std::max(max_counter, *e[1].as_int());
    if (e[0].integer == 1) {
      remaining.push_back(e[2].integer);
      max_recorded = std::max(max_recorded, *e[3].as_int());
    }
  }
  st.held = static_cast<int>(remaining.size()) >= q;
  if (st.held) {
    // Held for as long as a quorum still holds it: the quorum-th largest remaining time.
    std::sort(remaining.begin(), remaining.end(), std::greater<>());
    st.ttl_ms = remaining[static_cast<size_t>(q - 1)];
  }
  st.fence = st.held && max_recorded > 0 ? max_recorded : max_counter;
  fx.done = st;
}

// ---------------------------------------------------------------------------------------------
// KeepAlive

KeepAlive::KeepAlive(int64_t ttl_ms, int64_t now_ms, int64_t validity_ms) : ttl_ms_(ttl_ms) {
  on_extended(now_ms, validity_ms);
}

void KeepAlive::on_extended(int64_t now_ms, int64_t validity_ms) {
  if (state_ != State::kActive) return;  // a late success does not bring a lost lock back
  valid_until_ = now_ms + validity_ms;
  next_at_ = now_ms + std::max<int64_t>(1, validity_ms / 3);
}

// ---------------------------------------------------------------------------------------------
// Error texts

std::string describe_votes(std::span<const Vote> votes, std::span<const std::string> names) {
  std::string out;
  for (const Vote& v : votes) {
    if (!out.empty()) out.append("; ");
    if (v.backend >= 0 && static_cast<size_t>(v.backend) < names.size())
      out.append(names[static_cast<size_t>(v.backend)]);
    else
      fmt::format_to(std::back_inserter(out), "#{}", v.backend);
    out.append(": ");
    switch (v.kind) {
      case Vote::Kind::kYes:
        out.append(v.detail.empty() ? "yes" : v.detail);
        break;
      case Vote::Kind::kNo:
        out.append(v.detail.empty() ? "no" : v.detail);
        break;
      case Vote::Kind::kTimeout:
        out.append(v.detail.empty() ? "timeout" : v.detail);
        break;
      case Vote::Kind::kTransient:
      case Vote::Kind::kError:
        out.append("error ").append(v.detail);
        break;
      case Vote::Kind::kExcluded:
        out.append(v.detail.empty() ? "quarantined" : v.detail);
        break;
    }
  }
  return out;
}

std::string error_text(const NoQuorum& o, std::span<const std::string> names) {
  std::string out = fmt::format("NOQUORUM {} of {} lock backends answered, {} needed", o.answered,
                                o.total, o.needed);
  if (!o.votes.empty()) out.append(" (").append(describe_votes(o.votes, names)).append(")");
  return out;
}

std::string error_text(const LockError& e, std::span<const std::string> names) {
  std::string out = e.text;
  if (!e.votes.empty()) out.append(" (").append(describe_votes(e.votes, names)).append(")");
  return out;
}

template class detail::OnePhaseRound<ReleaseRound, ReleaseOutcome>;
template class detail::OnePhaseRound<ExtendRound, ExtendOutcome>;
template class detail::OnePhaseRound<StatusRound, StatusOutcome>;

}  // namespace lockstep::lock
