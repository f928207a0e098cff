#include "server/lock/lock_service.h"

#include "server/lock/client_locks.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <chrono>
#include <utility>

namespace lockstep::server {
namespace {

// Cookies with the top bit set are the service's own probes, not a round's requests.
constexpr uint64_t kProbeBit = uint64_t{1} << 63;
enum class Probe : uint64_t {
  kInfo = 1,
  kTime = 2,
  kReseedDump = 3,
  kReseedWrite = 4,
  kIgnore = 5,
  kReconfig = 6,  // backend = topology index; seq = epoch << 1 | Reconfig::Kind
};
uint64_t probe_cookie(Probe p, int backend, uint64_t seq = 0) {
  return kProbeBit | (static_cast<uint64_t>(p) << 56) | (static_cast<uint64_t>(backend) << 40) |
         (seq & 0xffffffffffULL);
}
Probe probe_kind(uint64_t c) {
  return static_cast<Probe>((c >> 56) & 0x7f);
}
int probe_backend(uint64_t c) {
  return static_cast<int>((c >> 40) & 0xffff);
}
uint64_t probe_seq(uint64_t c) {
  return c & 0xffffffffffULL;
}

// Our own "backend unavailable" replies (BackendConn): for a round, the request is lost.
bool is_unavailable(std::string_view reply) {
  return reply.starts_with("-ERR backend ") &&
         reply.find(" unavailable: ") != std::string_view::npos;
}

// One channel for every release (the payload names the lock): one SUBSCRIBE per connection,
// and nothing that shows in PUBSUB NUMPAT (PUBSUB CHANNELS hides reserved names).
constexpr std::string_view kReleasedChannel = "__lockstep:released";

// All fence counters of a backend as [key, value, key, value, ...], for re-seeding another.
constexpr std::string_view kDumpFencesLua =
    "local r = {} local c = '0' repeat "
    "local x = redis.call('SCAN', c, 'MATCH', '__lockstep:fence:*', 'COUNT', 1000) c = x[1] "
    "for _, k in ipairs(x[2]) do r[#r+1] = k r[#r+1] = redis.call('GET', k) end "
    "until c == '0' return r";

std::string info_field(std::string_view text, std::string_view name) {
  size_t p = text.find(std::string(name) + ":");
  if (p == std::string_view::npos) return {};
  p += name.size() + 1;
  size_t e = text.find('\r', p);
  return std::string(text.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p));
}

}  // namespace

lock::LockSettings lock_settings(const config::Config& cfg) {
  lock::LockSettings s;
  s.drift_factor = cfg.locks.drift_factor;
  s.retry_count = cfg.locks.retry_count;
  s.retry_delay_ms = cfg.locks.retry_delay_ms;
  s.backend_timeout_ms = cfg.locks.backend_timeout_ms;
  s.max_ttl_ms = cfg.locks.max_ttl_ms;
  s.lock_delay_ms = cfg.locks.lock_delay_ms;
  if (cfg.locks.quarantine_ms > 0) s.quarantine_ms = cfg.locks.quarantine_ms;
  // Rounds send EVALSHA: every lock connection SCRIPT LOADs all lock scripts before it is
  // verified (on_conn_ready), so a NOSCRIPT (and its resend as EVAL, one more round trip) only
  // follows a SCRIPT FLUSH on a live connection. EVAL carried up to 1 KB of script per request
  // and made the backend hash it, for each of the 12 script runs of an acquire+release pair:
  // scripts/bench locks, 50 clients, went from 14.0k to 17.1k pairs/s (acquire p50 0.225 ->
  // 0.200 ms) with EVALSHA. Releases and clean-up requests stay EVAL (redlock.cpp): a late
  // -NOSCRIPT to them would be dropped with their finished round.
  s.use_evalsha = true;
  return s;
}

std::optional<std::string> validate_locks(const config::Config& cfg) {
  const size_t n = cfg.locks.backends.empty() ? cfg.backends.size() : cfg.locks.backends.size();
  return lock::validate(lock_settings(cfg), static_cast<int>(n));
}

struct LockService::Op {
  enum class Kind { kAcquire, kRelease, kExtend, kStatus, kRenew, kLinger };
  uint64_t id = 0;
  Kind kind = Kind::kAcquire;
  std::optional<LockOrigin> origin;  // none for renewals and lingering releases
  std::unique_ptr<lock::AcquireRound> acquire;
  std::unique_ptr<lock::ReleaseRound> release;
  std::unique_ptr<lock::ExtendRound> extend;
  std::unique_ptr<lock::StatusRound> status;
  lock::AcquireArgs args;
  std::string name, token;
  bool waiter = false;  // in waits_ under its id
  bool waited = false;  // counted in LockStats::waits
  int64_t wait_deadline = lock::WaitQueue::kNever;
  uint64_t timer_gen = 0;
  uint64_t ka_id = 0;
  // Identifies the op's current round in cookies. A waiter runs several rounds under one op,
  // and every round numbers its requests from 1: without a fresh key per round, a late reply
  // to an earlier round could be taken for a vote in the current one (a double grant).
  uint64_t round_key = 0;
};

struct LockService::KeepAliveEntry {
  uint64_t client_id = 0;
  LockOrigin origin;
  std::string name, token;
  lock::KeepAlive ka;
  bool renewing = false;
};

// A change of the lock backend set in progress (lock/reconfig.h), on connections of its own
// to every backend of the old and new sets.
struct LockService::Transition {
  lock::Reconfig rc;
  std::vector<std::vector<int>> old_sets;
  std::map<int, std::unique_ptr<BackendConn>> conns;  // by topology index
  uint64_t timer_gen = 0;
};

// Release notifications from other replicas, on a subscriber connection per lock backend.
class LockService::Subscriber final : public ConnObserver {
 public:
  explicit Subscriber(LockService& s) : s_(s) {}
  void on_conn_ready(int backend) override {
    std::string_view args[] = {"SUBSCRIBE", kReleasedChannel};
    std::string req;
    resp::append_command(req, args);
    s_.sub_conns_[static_cast<size_t>(backend_index(backend))]->send(
        &s_, probe_cookie(Probe::kIgnore, 0), req);
  }
  void on_push(int, std::string_view message) override {
    std::vector<std::string_view> e;
    int64_t n = 0;
    if (!resp::split_array(message, e, n) || n != 3) return;
    auto text = [](std::string_view bulk) {
      size_t nl = bulk.find("\r\n");
      return bulk.substr(nl + 2, bulk.size() - nl - 4);
    };
    if (text(e[1]) == kReleasedChannel) s_.on_released(std::string(text(e[2])));
  }

 private:
  int backend_index(int topology_backend) const {
    for (size_t i = 0; i < s_.backends_.size(); ++i)
      if (s_.backends_[i] == topology_backend) return static_cast<int>(i);
    return 0;
  }
  LockService& s_;
};

LockService::LockService(Worker& worker)
    : worker_(worker), settings_(lock_settings(worker.shared().cfg)), quarantine_(settings_, 1) {
  const auto& cfg = worker_.shared().cfg;
  const auto& topo = worker_.topology();
  std::vector<int> set;
  if (cfg.locks.backends.empty()) {
    for (size_t b = 0; b < topo.backends.size(); ++b) set.push_back(static_cast<int>(b));
  } else {
    for (const auto& name : cfg.locks.backends)
      for (size_t b = 0; b < topo.backends.size(); ++b)
        if (topo.backends[b].name == name) set.push_back(static_cast<int>(b));
  }
  subscriber_ = std::make_unique<Subscriber>(*this);
  uv_timer_init(worker_.loop(), &timer_);
  timer_.data = this;
  timer_open_ = true;
  set_backends(std::move(set));
  schedule(now_ms() + 1000, [this] { probe(); });
  if (config_error_) spdlog::error("locks: {}", *config_error_);
}

void LockService::set_backends(std::vector<int> set) {
  for (auto* list : {&conns_, &sub_conns_}) {
    for (auto& c : *list) {
      worker_.retire(std::move(c), "the lock backends changed");
    }
    list->clear();
  }
  const auto& topo = worker_.topology();
  backends_ = std::move(set);
  names_.clear();
  for (int b : backends_) names_.push_back(topo.backends[static_cast<size_t>(b)].name);
  const int n = static_cast<int>(backends_.size());
  quarantine_ = lock::Quarantine(settings_, n);
  config_error_ = lock::validate(settings_, n);
  time_sent_.assign(backends_.size(), 0);
  uptime_s_.assign(backends_.size(), -1);
  reseed_.reset();
  reseed_target_ = -1;
  reseed_writes_pending_ = 0;
  reseed_sources_pending_ = 0;
  for (int b : backends_) {
    auto& info = topo.backends[static_cast<size_t>(b)];
    conns_.push_back(std::make_unique<BackendConn>(worker_, b, info, 2));
    conns_.back()->set_observer(this, false);
    sub_conns_.push_back(std::make_unique<BackendConn>(worker_, b, info, 2));
    sub_conns_.back()->set_observer(subscriber_.get(), true);
  }
  for (auto& c : conns_) c->start();
  for (auto& c : sub_conns_) c->start();
}

LockService::~LockService() = default;

void LockService::shutdown() {
  stopped_ = true;
  for (auto& c : conns_) c->close_for_shutdown();
  for (auto& c : sub_conns_) c->close_for_shutdown();
  if (transition_)
    for (auto& [b, c] : transition_->conns) c->close_for_shutdown();
  if (timer_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    timer_open_ = false;
  }
}

int64_t LockService::now_ms() const {
  // Validity is computed from this clock: it must be monotonic and read fresh, not the loop's
  // cached time.
  return static_cast<int64_t>(uv_hrtime() / 1000000);
}

std::string LockService::new_token() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;  // 128 bits from the kernel's CSPRNG
}

void LockService::reply_to(const LockOrigin& o, std::string bytes) {
  const uint64_t id = o.client_id, seq = o.seq;
  o.worker->post_task([w = o.worker, id, seq, bytes = std::move(bytes)] {
    if (Client* c = w->find_client(id)) c->deliver_external(seq, bytes);
  });
}

void LockService::send(int lb, uint64_t ck, std::string_view request) {
  BackendConn& conn = *conns_[static_cast<size_t>(lb)];
  if (!conn.send(this, ck, request)) worker_.defer_reply(this, ck, conn.unavailable_error());
}

void LockService::schedule(int64_t at_ms, std::function<void()> fn) {
  timers_.emplace(at_ms, std::move(fn));
  arm_timer();
}

void LockService::arm_timer() {
  if (!timer_open_) return;
  int64_t next = timers_.empty() ? lock::WaitQueue::kNever : timers_.begin()->first;
  next = std::min(next, waits_.next_deadline());
  if (next == lock::WaitQueue::kNever) {
    uv_timer_stop(&timer_);
    return;
  }
  const int64_t now = now_ms();
  uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(std::max<int64_t>(0, next - now)), 0);
}

void LockService::on_timer(uv_timer_t* t) {
  static_cast<LockService*>(t->data)->run_due();
}

void LockService::run_due() {
  if (stopped_) return;
  const int64_t now = now_ms();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto fn = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    fn();
  }
  if (waits_.next_deadline() <= now) {
    auto due = waits_.expire(now);
    for (uint64_t id : due.timed_out) {
      auto it = ops_.find(id);
      if (it == ops_.end()) continue;
      Op& op = *it->second;
      op.waiter = false;
      std::string out;
      resp::append_null(out, op.origin ? op.origin->protocol : 2);
      if (op.origin) reply_to(*op.origin, std::move(out));
      op.origin.reset();
      if (op.acquire && !op.acquire->finished())
        apply(op, op.acquire->abandon(now));  // Cancelled: ends the op
      else
        finish(op);
    }
    for (uint64_t id : due.try_now) try_waiter(id);
  }
  arm_timer();
}

template <class Outcome>
void LockService::apply(Op& op, lock::Effects<Outcome> fx) {
  const int64_t now = now_ms();
  for (auto& s : fx.sends) {
    // A round keeps the backend list it started with, but a backend may have restarted (or
    // lost its connection and not been verified again) since: it must not vote in this round
    // either, or a retry could count a fresh, empty backend towards a second majority. Its
    // requests fail as if unanswered. Clean-up requests (no reply expected) still go out.
    if (s.expects_reply && !quarantine_.eligible(s.backend, now)) {
      worker_.defer_reply(this, cookie(op.round_key, s.id),
                          "-ERR backend lock backend unavailable: quarantined or not verified\r\n");
      continue;
    }
    send(s.backend, s.expects_reply ? cookie(op.round_key, s.id) : 0, s.request);
  }
  if (fx.timer_ms) {
    const uint64_t gen = ++op.timer_gen;
    const uint64_t id = op.id;
    schedule(now_ms() + *fx.timer_ms, [this, id, gen] {
      auto it = ops_.find(id);
      if (it == ops_.end() || it->second->timer_gen != gen) return;
      Op& o = *it->second;
      const int64_t now = now_ms();
      if (o.acquire)
        apply(o, o.acquire->on_timer(now));
      else if (o.release)
        apply(o, o.release->on_timer(now));
      else if (o.extend)
        apply(o, o.extend->on_timer(now));
      else if (o.status)
        apply(o, o.status->on_timer(now));
    });
  }
  if (!fx.done) return;
  const Outcome& outcome = *fx.done;
  if (std::holds_alternative<lock::NoQuorum>(outcome))
    worker_.shared().lock_stats.quorum_losses.fetch_add(1, std::memory_order_relaxed);
  std::string out;
  const int protocol = op.origin ? op.origin->protocol : 2;
  if constexpr (std::is_same_v<Outcome, lock::AcquireOutcome>) {
    on_acquire_done(op, outcome);  // decides about replying, waiting and finishing
    return;
  } else if constexpr (std::is_same_v<Outcome, lock::ReleaseOutcome>) {
    if (std::holds_alternative<lock::Released>(outcome)) {
      announce_release(op.name);
      // A released lock needs no renewals, whoever holds them.
      for (auto& [id, ka] : keepalives_)
        if (ka->name == op.name && ka->token == op.token) ka->ka.stop();
      on_released(op.name);
    }
    lock::append_release_reply(out, outcome, names_, protocol);
  } else if constexpr (std::is_same_v<Outcome, lock::ExtendOutcome>) {
    if (op.kind == Op::Kind::kRenew) {
      auto it = keepalives_.find(op.ka_id);
      if (it != keepalives_.end()) {
        KeepAliveEntry& e = *it->second;
        e.renewing = false;
        if (const auto* x = std::get_if<lock::Extended>(&outcome)) {
          e.ka.on_extended(now_ms(), x->validity_ms);
          if (e.ka.active()) {
            const uint64_t ka_id = op.ka_id;
            schedule(e.ka.next_renewal_at(), [this, ka_id] { renew(ka_id); });
          }
        } else {
          lose_keepalive(op.ka_id);
        }
      }
    } else {
      lock::append_extend_reply(out, outcome, names_, protocol);
    }
  } else if constexpr (std::is_same_v<Outcome, lock::StatusOutcome>) {
    lock::append_status_reply(out, outcome, waits_.waiters(op.name), names_, protocol);
  }
  if (op.origin && !out.empty()) reply_to(*op.origin, std::move(out));
  finish(op);
}

LockService::Op& LockService::add_op(int kind, std::optional<LockOrigin> origin, std::string name) {
  auto op = std::make_unique<Op>();
  op->id = next_id_++;
  op->kind = static_cast<Op::Kind>(kind);
  op->origin = origin;
  op->name = std::move(name);
  Op& ref = *op;
  ops_.emplace(ref.id, std::move(op));
  return ref;
}

void LockService::start_round(Op& op) {
  new_round(op);
  const int64_t now = now_ms();
  if (op.acquire)
    apply(op, op.acquire->start(now));
  else if (op.release)
    apply(op, op.release->start(now));
  else if (op.extend)
    apply(op, op.extend->start(now));
  else if (op.status)
    apply(op, op.status->start(now));
}

void LockService::new_round(Op& op) {
  if (op.round_key != 0) rounds_.erase(op.round_key);
  op.round_key = next_id_++;
  rounds_[op.round_key] = op.id;
}

void LockService::finish(Op& op) {
  if (op.round_key != 0) rounds_.erase(op.round_key);
  ops_.erase(op.id);
}

void LockService::on_acquire_done(Op& op, const lock::AcquireOutcome& outcome) {
  const int64_t now = now_ms();
  const int protocol = op.origin ? op.origin->protocol : 2;
  LockStats& stats = worker_.shared().lock_stats;
  if (const auto* g = std::get_if<lock::Granted>(&outcome)) {
    stats.acquired.fetch_add(1, std::memory_order_relaxed);
    if (op.waiter) {
      waits_.on_granted(op.id, now + g->validity_ms + settings_.lock_delay_ms);
      op.waiter = false;
    }
    if (op.args.keepalive && op.origin) {
      auto e = std::make_unique<KeepAliveEntry>(
          KeepAliveEntry{op.origin->client_id, *op.origin, op.args.name, g->token,
                         lock::KeepAlive(op.args.ttl_ms, now, g->validity_ms), false});
      const uint64_t ka_id = next_id_++;
      schedule(e->ka.next_renewal_at(), [this, ka_id] { renew(ka_id); });
      keepalives_.emplace(ka_id, std::move(e));
    }
  } else if (const auto* b = std::get_if<lock::Busy>(&outcome)) {
    if (op.waiter && op.origin) {
      // Keep waiting: for a release, or until the holder's TTL runs out.
      if (!std::exchange(op.waited, true)) stats.waits.fetch_add(1, std::memory_order_relaxed);
      if (waits_.on_busy(op.id, now + std::max<int64_t>(1, b->retry_after_ms)))
        start_acquire_round(op);
      arm_timer();
      return;
    }
  } else if (std::holds_alternative<lock::Cancelled>(outcome)) {
    if (op.waiter) {
      if (auto next = waits_.remove(op.id)) try_waiter(*next);
    }
    finish(op);
    return;
  } else if (op.waiter) {  // an error ends the wait
    op.waiter = false;
    if (auto next = waits_.remove(op.id)) try_waiter(*next);
  }
  if (std::holds_alternative<lock::Busy>(outcome))
    stats.failed_busy.fetch_add(1, std::memory_order_relaxed);
  else if (std::holds_alternative<lock::NoQuorum>(outcome))
    stats.failed_noquorum.fetch_add(1, std::memory_order_relaxed);
  else if (std::holds_alternative<lock::LockError>(outcome))
    stats.failed_error.fetch_add(1, std::memory_order_relaxed);
  std::string out;
  lock::append_acquire_reply(out, outcome, names_, protocol);
  if (op.origin && !out.empty()) reply_to(*op.origin, std::move(out));
  finish(op);
  arm_timer();
}

void LockService::lose_keepalive(uint64_t ka_id) {
  auto it = keepalives_.find(ka_id);
  if (it == keepalives_.end()) return;
  // Renewal stops for good; the client hears about it (RESP3 push now, or an error on its
  // next LOCK command).
  KeepAliveEntry& e = *it->second;
  e.ka.on_failed();
  worker_.shared().lock_stats.keepalive_lost.fetch_add(1, std::memory_order_relaxed);
  const LockOrigin o = e.origin;
  const std::string name = e.name;
  o.worker->post_task([w = o.worker, id = o.client_id, name] {
    if (Client* c = w->find_client(id)) ClientLocks::lost(*c, name);
  });
  keepalives_.erase(it);
}

void LockService::start_acquire_round(Op& op) {
  if (transition_ || settling_until_ != 0) {  // a waiter: its next round runs on the new set
    parked_.push_back(op.id);
    return;
  }
  lock::AcquireRequest req;
  req.name = op.args.name;
  req.ttl_ms = op.args.ttl_ms;
  req.token = new_token();
  req.owner = op.args.owner;
  req.jitter_seed = worker_.random();
  op.acquire = std::make_unique<lock::AcquireRound>(settings_, quarantine_.backends(now_ms()),
                                                    std::move(req));
  start_round(op);
}

void LockService::try_waiter(uint64_t waiter_id) {
  auto it = ops_.find(waiter_id);
  if (it == ops_.end()) return;
  start_acquire_round(*it->second);
}

void LockService::on_released(const std::string& name) {
  if (auto next = waits_.on_released(name)) try_waiter(*next);
  arm_timer();
}

void LockService::announce_release(const std::string& name) {
  std::string_view args[] = {"PUBLISH", kReleasedChannel, name};
  std::string req;
  resp::append_command(req, args);
  for (size_t i = 0; i < conns_.size(); ++i)
    send(static_cast<int>(i), probe_cookie(Probe::kIgnore, 0), req);
}

void LockService::acquire(LockOrigin origin, lock::AcquireArgs args) {
  if (config_error_) {
    std::string out;
    resp::append_error(out, "LOCKCONFIG " + *config_error_);
    reply_to(origin, std::move(out));
    return;
  }
  if (!args.wait_ms && refuse_while_changing(origin)) return;
  Op& ref = add_op(static_cast<int>(Op::Kind::kAcquire), origin, args.name);
  ref.args = std::move(args);
  if (ref.args.wait_ms) {
    ref.waiter = true;
    ref.wait_deadline =
        *ref.args.wait_ms == 0 ? lock::WaitQueue::kNever : now_ms() + *ref.args.wait_ms;
    if (waits_.enqueue(ref.name, ref.id, ref.wait_deadline)) {
      start_acquire_round(ref);
    } else {  // queued behind earlier waiters
      ref.waited = true;
      worker_.shared().lock_stats.waits.fetch_add(1, std::memory_order_relaxed);
    }
    arm_timer();
  } else {
    start_acquire_round(ref);
  }
}

void LockService::release(LockOrigin origin, lock::ReleaseArgs args) {
  Op& op = add_op(static_cast<int>(Op::Kind::kRelease), origin, args.name);
  op.token = args.token;
  op.release = std::make_unique<lock::ReleaseRound>(settings_, quarantine_.backends(now_ms()),
                                                    args.name, args.token);
  start_round(op);
}

void LockService::extend(LockOrigin origin, lock::ExtendArgs args) {
  if (refuse_while_changing(origin)) return;
  Op& op = add_op(static_cast<int>(Op::Kind::kExtend), origin, args.name);
  op.extend = std::make_unique<lock::ExtendRound>(settings_, quarantine_.backends(now_ms()),
                                                  args.name, args.token, args.ttl_ms);
  start_round(op);
}

void LockService::status(LockOrigin origin, lock::StatusArgs args) {
  Op& op = add_op(static_cast<int>(Op::Kind::kStatus), origin, args.name);
  op.status =
      std::make_unique<lock::StatusRound>(settings_, quarantine_.backends(now_ms()), args.name);
  start_round(op);
}

void LockService::renew(uint64_t ka_id) {
  auto it = keepalives_.find(ka_id);
  if (it == keepalives_.end()) return;
  if (transition_) {  // the new set does not have the hold
    lose_keepalive(ka_id);
    return;
  }
  KeepAliveEntry& e = *it->second;
  if (!e.ka.active()) {
    keepalives_.erase(it);
    return;
  }
  e.renewing = true;
  Op& op = add_op(static_cast<int>(Op::Kind::kRenew), std::nullopt, e.name);
  op.ka_id = ka_id;
  op.extend = std::make_unique<lock::ExtendRound>(settings_, quarantine_.backends(now_ms()), e.name,
                                                  e.token, e.ka.ttl_ms());
  start_round(op);
}

void LockService::client_closed(uint64_t client_id) {
  const int64_t now = now_ms();
  std::vector<uint64_t> ids;
  for (auto& [id, op] : ops_)
    if (op->origin && op->origin->client_id == client_id) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = ops_.find(id);
    if (it == ops_.end()) continue;
    Op& op = *it->second;
    op.origin.reset();                            // nobody to answer
    if (op.kind != Op::Kind::kAcquire) continue;  // release/extend/status finish on their own
    if (op.acquire && !op.acquire->finished()) {
      apply(op, op.acquire->abandon(now));  // a waiter leaves the queue at once
    } else {
      if (op.waiter)
        if (auto next = waits_.remove(op.id)) try_waiter(*next);
      finish(op);
    }
  }
  // KEEPALIVE locks of a closed connection: renewals stop now; the lock is released after
  // locks.lock_delay_ms (Chubby's lock-delay), so a quick successor cannot overlap a holder
  // whose last writes are still in flight.
  std::vector<uint64_t> kas;
  for (auto& [id, ka] : keepalives_)
    if (ka->client_id == client_id) kas.push_back(id);
  for (uint64_t ka_id : kas) {
    auto it = keepalives_.find(ka_id);
    std::string name = it->second->name, token = it->second->token;
    it->second->ka.stop();
    keepalives_.erase(it);
    schedule(now + settings_.lock_delay_ms, [this, name, token] {
      Op& op = add_op(static_cast<int>(Op::Kind::kLinger), std::nullopt, name);
      op.token = token;
      op.release = std::make_unique<lock::ReleaseRound>(settings_, quarantine_.backends(now_ms()),
                                                        name, token);
      start_round(op);
    });
  }
  arm_timer();
}

void LockService::on_backend_reply(uint64_t ck, std::string_view reply) {
  if (stopped_ || ck == 0) return;
  const int64_t now = now_ms();
  if (ck & kProbeBit) {
    const int lb = probe_backend(ck);
    switch (probe_kind(ck)) {
      case Probe::kInfo: {
        if (resp::is_error_reply(reply)) return;
        const std::string run_id = info_field(reply, "run_id");
        const std::string uptime = info_field(reply, "uptime_in_seconds");
        int64_t up = 0;
        std::optional<int64_t> up_s;
        if (resp::parse_int64(uptime, up)) {
          uptime_s_[static_cast<size_t>(lb)] = up;
          // A backend seen for the first time with a short uptime may have lost its lock state
          // just before Lockstep started; that is worth a quarantine only while a majority of
          // the others are known to have been up longer (then it is one restart in a healthy
          // set, and they can re-seed it). When most backends are new, this is a new
          // deployment: nothing older exists to protect, and waiting would only block locks.
          const int64_t window_s = lock::effective_quarantine_ms(settings_) / 1000;
          int old = 0;
          for (size_t i = 0; i < uptime_s_.size(); ++i)
            if (static_cast<int>(i) != lb && uptime_s_[i] >= window_s) ++old;
          if (old >= lock::quorum(static_cast<int>(backends_.size()))) up_s = up;
        }
        if (!run_id.empty()) quarantine_.observe_run_id(lb, run_id, now, up_s);
        if (quarantine_.needs_reseed(lb)) start_reseed(lb);
        if (settling_until_ != 0) settle(false);
        break;
      }
      case Probe::kTime: {
        std::vector<std::string_view> e;
        int64_t n = 0;
        if (probe_seq(ck) != static_cast<uint64_t>(time_sent_[static_cast<size_t>(lb)])) return;
        if (!resp::split_array(reply, e, n) || n != 2) return;
        auto num = [](std::string_view bulk) {
          size_t nl = bulk.find("\r\n");
          int64_t v = 0;
          resp::parse_int64(bulk.substr(nl + 2, bulk.size() - nl - 4), v);
          return v;
        };
        quarantine_.observe_time(lb, num(e[0]) * 1000000 + num(e[1]),
                                 time_sent_[static_cast<size_t>(lb)], now);
        break;
      }
      case Probe::kReseedDump: {
        if (!reseed_ || resp::is_error_reply(reply)) return;
        std::vector<std::string_view> e;
        int64_t n = 0;
        if (!resp::split_array(reply, e, n)) return;
        auto text = [](std::string_view bulk) {
          size_t nl = bulk.find("\r\n");
          return bulk.substr(nl + 2, bulk.size() - nl - 4);
        };
        for (size_t i = 0; i + 1 < e.size(); i += 2) {
          int64_t v = 0;
          if (resp::parse_int64(text(e[i + 1]), v)) reseed_->add(lb, text(e[i]), v);
        }
        reseed_->source_complete(lb);
        if (reseed_->ready() || (reseed_best_effort_ && --reseed_sources_pending_ == 0)) {
          auto reqs = reseed_->requests(settings_.config_epoch);
          reseed_writes_pending_ = static_cast<int>(reqs.size());
          for (auto& r : reqs)
            send(reseed_target_, probe_cookie(Probe::kReseedWrite, reseed_target_), r);
          if (reqs.empty()) {
            quarantine_.mark_reseeded(reseed_target_);
            reseed_.reset();
          }
        }
        break;
      }
      case Probe::kReseedWrite:
        if (reseed_ && lb == reseed_target_ && !is_unavailable(reply) &&
            --reseed_writes_pending_ == 0) {
          spdlog::info("lock backend {} re-seeded with {} fence counter(s)", names_[lb],
                       reseed_->names());
          quarantine_.mark_reseeded(reseed_target_);
          reseed_.reset();
        }
        break;
      case Probe::kReconfig: {
        if (!transition_ || (probe_seq(ck) >> 1) != (transition_->rc.epoch() & 0x7fffffffffULL))
          return;  // for a change that was replaced since
        const auto kind =
            (probe_seq(ck) & 1) ? lock::Reconfig::Kind::kSeed : lock::Reconfig::Kind::kFence;
        const auto parsed = lock::parse_reply(reply);
        if (is_unavailable(reply) || !parsed)
          drive_transition(transition_->rc.on_failure(lb, kind, now));
        else
          drive_transition(transition_->rc.on_reply(lb, kind, *parsed, now));
        return;
      }
      default:
        break;
    }
    return;
  }
  auto rk = rounds_.find(ck >> 24);
  if (rk == rounds_.end()) return;  // a late reply to a finished or replaced round
  auto it = ops_.find(rk->second);
  if (it == ops_.end() || it->second->round_key != (ck >> 24)) return;
  Op& op = *it->second;
  const lock::RequestId rid = ck & 0xffffff;
  const bool lost = is_unavailable(reply);
  if (op.acquire)
    apply(op, lost ? op.acquire->on_timeout(rid, now) : op.acquire->on_reply(rid, reply, now));
  else if (op.release)
    apply(op, lost ? op.release->on_timeout(rid, now) : op.release->on_reply(rid, reply, now));
  else if (op.extend)
    apply(op, lost ? op.extend->on_timeout(rid, now) : op.extend->on_reply(rid, reply, now));
  else if (op.status)
    apply(op, lost ? op.status->on_timeout(rid, now) : op.status->on_reply(rid, reply, now));
}

void LockService::update_settings(const lock::LockSettings& s,
                                  const std::vector<std::string>& backend_names,
                                  uint64_t lock_epoch) {
  const int64_t now = now_ms();
  // The longest hold a grant under the old settings may still have (for the drain below).
  const int64_t old_window =
      std::max(settings_.max_ttl_ms + settings_.lock_delay_ms, quarantine_.window(now));
  const uint64_t epoch = settings_.config_epoch;  // changes only with the backend set
  settings_ = s;
  settings_.config_epoch = epoch;
  quarantine_.update(settings_, now);
  if (transition_ == nullptr) config_error_ = lock::validate(settings_, backends_.size());

  if (backend_names.empty()) return;  // the default: the backends at start, for good
  const auto& topo = worker_.topology();
  std::vector<int> next;
  for (const auto& name : backend_names) {
    auto it = std::find_if(topo.backends.begin(), topo.backends.end(),
                           [&](const BackendInfo& b) { return b.name == name; });
    if (it == topo.backends.end()) {
      spdlog::error(
          "locks.backends: backend '{}' is not in this replica's data plane; the lock "
          "backends stay as they are",
          name);
      return;
    }
    next.push_back(static_cast<int>(it - topo.backends.begin()));
  }
  const std::vector<int>& target = transition_ ? transition_->rc.new_set() : backends_;
  const uint64_t target_epoch = transition_ ? transition_->rc.epoch() : epoch;
  if (lock_epoch <= target_epoch) {
    // Same change (or the seed, epoch 0): nothing to do. A different set under an epoch that
    // is not newer cannot come from the log; keep what is in use rather than guess.
    if (next != target)
      spdlog::warn(
          "locks.backends changed without a newer lock configuration epoch ({} <= {}); "
          "ignored",
          lock_epoch, target_epoch);
    return;
  }
  start_transition(std::move(next), lock_epoch,
                   std::max(old_window, s.max_ttl_ms + s.lock_delay_ms));
}

bool LockService::refuse_while_changing(const LockOrigin& origin) {
  if (!transition_ && settling_until_ == 0) return false;
  const int64_t now = now_ms();
  std::string out;
  if (transition_) {
    const auto& rc = transition_->rc;
    std::string when = "when it is done";
    if (rc.drained_at() > 0)
      when = fmt::format("in about {} ms", std::max<int64_t>(0, rc.drained_at() - now));
    resp::append_error(out, fmt::format("TRYAGAIN the lock backends are changing (lock "
                                        "configuration epoch {}: {}); retry {}",
                                        rc.epoch(), rc.phase_name(), when));
  } else {
    resp::append_error(
        out, fmt::format("TRYAGAIN the lock backends are changing (lock "
                         "configuration epoch {}: verifying the new lock "
                         "backends); retry in about {} ms",
                         settings_.config_epoch, std::max<int64_t>(0, settling_until_ - now)));
  }
  reply_to(origin, std::move(out));
  return true;
}

void LockService::start_transition(std::vector<int> next, uint64_t epoch, int64_t drain_ms) {
  std::vector<std::vector<int>> old_sets{backends_};
  settling_until_ = 0;
  if (transition_) {
    // A change that had not completed here: its target may have been used by replicas that
    // completed it, so it is an old set too, as are the sets it was fencing.
    // (Moved out first: closing answers its pending requests, and those replies must not
    // drive it any more.)
    std::unique_ptr<Transition> replaced = std::move(transition_);
    old_sets = replaced->old_sets;
    old_sets.push_back(replaced->rc.new_set());
    for (auto& [b, c] : replaced->conns) {
      worker_.retire(std::move(c), "the lock backends changed");
    }
  }
  std::sort(old_sets.begin(), old_sets.end());
  old_sets.erase(std::unique(old_sets.begin(), old_sets.end()), old_sets.end());
  spdlog::warn(
      "locks: changing the lock backends to [{}] (lock configuration epoch {}); "
      "LOCK.ACQUIRE and EXTEND answer TRYAGAIN for up to {} ms, KEEPALIVE locks are "
      "reported lost",
      fmt::join(next, ","), epoch, drain_ms);
  // Hold keys bound the drain only on backends whose keys this replica can vouch for: the
  // current set's verified, unquarantined ones (reconfig.h).
  std::set<int> untrusted;
  const int64_t now = now_ms();
  for (size_t i = 0; i < backends_.size(); ++i)
    if (!quarantine_.eligible(static_cast<int>(i), now)) untrusted.insert(backends_[i]);
  const bool bounded = old_sets.size() == 1 && old_sets[0] == backends_;
  auto t = std::make_unique<Transition>(
      Transition{lock::Reconfig(epoch, old_sets, next, drain_ms, bounded, std::move(untrusted)),
                 old_sets,
                 {},
                 0});
  const auto& topo = worker_.topology();
  std::vector<int> all = next;
  for (const auto& set : old_sets) all.insert(all.end(), set.begin(), set.end());
  for (int b : all) {
    if (t->conns.count(b)) continue;
    auto conn = std::make_unique<BackendConn>(worker_, b, topo.backends[static_cast<size_t>(b)], 2);
    conn->start();
    t->conns.emplace(b, std::move(conn));
  }
  transition_ = std::move(t);
  std::vector<uint64_t> kas;
  for (auto& [id, ka] : keepalives_) kas.push_back(id);
  for (uint64_t id : kas) lose_keepalive(id);
  drive_transition(transition_->rc.start(now_ms()));
}

void LockService::drive_transition(lock::Reconfig::Effects fx) {
  while (transition_) {
    std::vector<std::pair<int, lock::Reconfig::Kind>> failed;
    const uint64_t epoch = transition_->rc.epoch();
    for (const auto& send : fx.sends) {
      const uint64_t ck =
          probe_cookie(Probe::kReconfig, send.backend,
                       (epoch << 1) | (send.kind == lock::Reconfig::Kind::kSeed ? 1 : 0));
      if (!transition_->conns.at(send.backend)->send(this, ck, send.request))
        failed.emplace_back(send.backend, send.kind);
    }
    if (fx.timer_ms) {
      const uint64_t gen = ++transition_->timer_gen;
      schedule(now_ms() + *fx.timer_ms, [this, gen] {
        if (transition_ && transition_->timer_gen == gen)
          drive_transition(transition_->rc.on_timer(now_ms()));
      });
    }
    if (fx.done) {
      finish_transition();
      return;
    }
    if (failed.empty()) return;
    lock::Reconfig::Effects more;
    for (const auto& [b, kind] : failed) {
      auto f = transition_->rc.on_failure(b, kind, now_ms());
      more.sends.insert(more.sends.end(), f.sends.begin(), f.sends.end());
      if (f.timer_ms) more.timer_ms = f.timer_ms;
      more.done = more.done || f.done;
    }
    fx = std::move(more);
  }
}

void LockService::finish_transition() {
  if (!transition_ || stopped_) return;
  // Rounds still running index the old connections: let them end first (they are short:
  // nothing new starts on the old set once the change began, except releases and status).
  for (const auto& [id, op] : ops_) {
    if ((op->acquire && !op->acquire->finished()) || (op->release && !op->release->finished()) ||
        (op->extend && !op->extend->finished()) || (op->status && !op->status->finished())) {
      const uint64_t epoch = transition_->rc.epoch();
      schedule(now_ms() + 10, [this, epoch] {
        if (transition_ && transition_->rc.epoch() == epoch) finish_transition();
      });
      return;
    }
  }
  std::unique_ptr<Transition> t = std::move(transition_);
  for (auto& [b, c] : t->conns) {
    worker_.retire(std::move(c), "the lock backends changed");
  }
  settings_.config_epoch = t->rc.epoch();
  set_backends(t->rc.new_set());
  if (!t->rc.skipped()) {
    // Lets replicas that apply the change later (restarted, slow) switch without waiting.
    const auto marks = t->rc.completion_requests();
    for (const auto& m : marks)
      for (size_t i = 0; i < backends_.size(); ++i)
        if (backends_[i] == m.backend)
          send(static_cast<int>(i), probe_cookie(Probe::kIgnore, 0), m.request);
  }
  spdlog::warn("locks: now using lock backends [{}] (lock configuration epoch {}{})",
               fmt::join(names_, ", "), settings_.config_epoch,
               t->rc.skipped() ? ", completed earlier by another replica" : "");
  // The new connections are verified (INFO server) before they vote: until a quorum is, or
  // for at most a few seconds, keep answering TRYAGAIN and keep the waiters parked.
  settling_until_ = now_ms() + kSettleMs;
  schedule(settling_until_, [this, until = settling_until_] {
    if (settling_until_ == until) settle(true);  // not a later change's settling
  });
  settle(false);
}

void LockService::settle(bool deadline) {
  if (settling_until_ == 0 || transition_) return;
  const int64_t now = now_ms();
  const auto b = quarantine_.backends(now);
  if (!deadline && static_cast<int>(b.eligible.size()) < lock::quorum(b.total)) return;
  settling_until_ = 0;
  std::vector<uint64_t> parked = std::move(parked_);
  parked_.clear();
  for (uint64_t id : parked) try_waiter(id);
  arm_timer();
}

void LockService::on_conn_ready(int topology_backend) {
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (backends_[i] != topology_backend) continue;
    // Scripts first (rounds send EVALSHA); pipelined ahead of the verification below, so they
    // are cached before the connection carries a single lock request.
    for (const lock::Script* script : lock::kAllScripts) {
      std::string_view args[] = {"SCRIPT", "LOAD", script->body};
      std::string req;
      resp::append_command(req, args);
      send(static_cast<int>(i), probe_cookie(Probe::kIgnore, 0), req);
    }
    // Verify before it votes: a new run_id means a restart (quarantine, re-seed).
    send(static_cast<int>(i), probe_cookie(Probe::kInfo, static_cast<int>(i)),
         "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n");
  }
}

void LockService::on_conn_lost(int topology_backend) {
  if (transition_) transition_->rc.distrust(topology_backend);  // it may have restarted
  for (size_t i = 0; i < backends_.size(); ++i)
    if (backends_[i] == topology_backend) quarantine_.on_disconnected(static_cast<int>(i));
}

void LockService::probe() {
  if (stopped_) return;
  const int64_t now = now_ms();
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (!conns_[i]->ready()) continue;
    time_sent_[i] = now;
    send(static_cast<int>(i),
         probe_cookie(Probe::kTime, static_cast<int>(i), static_cast<uint64_t>(now)),
         "*1\r\n$4\r\nTIME\r\n");
    if (quarantine_.needs_reseed(static_cast<int>(i)) && !reseed_)
      start_reseed(static_cast<int>(i));
  }
  schedule(now + 1000, [this] { probe(); });
}

void LockService::start_reseed(int target) {
  if (reseed_ || conns_.size() < 3) {
    if (conns_.size() < 3 &&
        quarantine_.status(target, now_ms()) == lock::Quarantine::Status::kNeedsReseed)
      quarantine_.mark_reseeded(target);  // with 1 or 2 backends there is nobody to copy from
    return;
  }
  const int64_t now = now_ms();
  std::vector<int> sources;
  for (size_t i = 0; i < conns_.size(); ++i)
    if (static_cast<int>(i) != target && quarantine_.eligible(static_cast<int>(i), now))
      sources.push_back(static_cast<int>(i));
  const int needed = lock::quorum(static_cast<int>(conns_.size()));
  reseed_best_effort_ = false;
  if (static_cast<int>(sources.size()) < needed) {
    // A majority lost its data (restarted together): no majority holds every committed fence
    // any more, so the guarantee is void (README: safety model). Once the quarantine is over,
    // copy what the surviving backends still have rather than keep locks down for good.
    if (quarantine_.status(target, now) != lock::Quarantine::Status::kNeedsReseed) return;
    spdlog::warn(
        "lock backend {}: only {} of the {} needed backends can re-seed its fences; "
        "re-seeding from those (fences may repeat after losing a majority)",
        names_[static_cast<size_t>(target)], sources.size(), needed);
    if (sources.empty()) {
      quarantine_.mark_reseeded(target);
      return;
    }
    reseed_best_effort_ = true;
  }
  reseed_.emplace(target, static_cast<int>(conns_.size()));
  reseed_target_ = target;
  reseed_sources_pending_ = static_cast<int>(sources.size());
  std::string_view args[] = {"EVAL", kDumpFencesLua, "0"};
  std::string req;
  resp::append_command(req, args);
  for (int src : sources) send(src, probe_cookie(Probe::kReseedDump, src), req);
}

}  // namespace lockstep::server
