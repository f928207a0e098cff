// Per-worker transaction runtime and the resolver (see txn_service.h).
#include "server/txn/txn_service.h"

#include "server/net/blocking_redis.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>

namespace lockstep::server {

namespace {

constexpr uint64_t kScanCookie = 1ULL << 63;
constexpr uint64_t kAbandonedScan = 1ULL << 62;  // with kScanCookie: the abandoned scan's reply
constexpr size_t kScanLimit = 64;                // intents resolved per backend per scan
// Unexpired intents looked at per backend per scan for a dead coordinator (the script reads
// one hash field of each): bounds the cost of a scan however many transactions are in flight.
constexpr size_t kAbandonedScanLimit = 64;

txn::Failpoints g_failpoints;

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace

TxnStats& txn_stats() {
  static TxnStats stats;
  return stats;
}

txn::Failpoints& failpoints() {
  return g_failpoints;
}

std::optional<std::string> init_failpoints(const config::Config& cfg) {
  std::string spec = cfg.transactions.failpoints;
  if (const char* env = std::getenv("LOCKSTEP_FAILPOINTS"); env != nullptr && *env != '\0') {
    if (!spec.empty()) spec += ',';
    spec += env;
  }
  if (auto err = txn::Failpoints::parse(spec, g_failpoints)) return err;
  if (!g_failpoints.empty()) spdlog::warn("transaction failpoints enabled: {}", spec);
  return std::nullopt;
}

std::optional<txn::FailAction> fail_at(std::string_view point) {
  if (g_failpoints.empty()) return std::nullopt;
  auto action = g_failpoints.hit(point);
  if (action && action->kind == txn::FailAction::Kind::kCrash) {
    spdlog::critical("failpoint {}: crashing", point);
    spdlog::default_logger()->flush();
    // As kill -9: no destructors, no clean-up, nothing flushed to the backends.
    ::kill(::getpid(), SIGKILL);
    std::_Exit(137);
  }
  return action;
}

bool check_backend_durability(const config::Config& cfg) {
  const std::string& mode = cfg.transactions.backend_check;
  if (mode == "off") return true;
  // What all-or-nothing needs from a backend across its own crashes: every prepared intent
  // and commit record on disk before it is acknowledged (AOF + fsync always), and no eviction
  // (an evicted intent or lock is as bad as one lost in a crash).
  const std::pair<const char*, const char*> wanted[] = {
      {"appendonly", "yes"}, {"appendfsync", "always"}, {"maxmemory-policy", "noeviction"}};
  bool fit = true;
  for (const auto& b : cfg.backends) {
    BlockingRedis conn(b, 1000);
    if (!conn.ok()) {
      // With `refuse`, a backend that cannot be checked is not known fit.
      if (mode == "refuse") fit = false;
      spdlog::log(mode == "refuse" ? spdlog::level::critical : spdlog::level::warn,
                  "transactions.backend_check: cannot check backend {}: {}", b.name, conn.error());
      continue;
    }
    for (const auto& [key, value] : wanted) {
      auto r = conn.command({"CONFIG", "GET", key});
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (mode == "refuse") fit = false;
        spdlog::log(mode == "refuse" ? spdlog::level::critical : spdlog::level::warn,
                    "transactions.backend_check: CONFIG GET {} failed on backend {}", key, b.name);
        continue;
      }
      const std::string got(r->element[1]->str, r->element[1]->len);
      if (got != value) {
        fit = false;
        spdlog::log(mode == "refuse" ? spdlog::level::critical : spdlog::level::warn,
                    "backend {} has {} {} (transactions need {} {}: a backend crash could "
                    "otherwise lose a prepared or committed transaction's state)",
                    b.name, key, got, key, value);
      }
    }
  }
  return fit || mode != "refuse";
}

TxnService::TxnService(Worker& worker) : worker_(worker) {}

TxnService::~TxnService() = default;

std::string TxnService::new_txid() {
  // 64 random bits per process (read once) and a counter: unique across replicas and restarts
  // without a getrandom call per EXEC (it was a syscall per transaction on the fast path).
  static const std::string prefix = random_hex(8);
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  std::string id = prefix;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) id += kHex[(n >> shift) & 15];
  return id;
}

namespace {

// "<host>/<pid>/<random>": unique per process. A '/' in the host would make it look like a
// tagged identity to parse_coordinator(), so it is replaced.
const std::string& process_identity() {
  static const std::string id = [] {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    std::string h = host;
    std::replace(h.begin(), h.end(), '/', '_');
    return fmt::format("{}/{}/{}", h, getpid(), random_hex(4));
  }();
  return id;
}

// Every identity this process had (one, or two once tagged: rarely more). A deque never moves
// its elements, so a reference returned by coordinator_id() stays valid after a new tag; the
// current one is published through an atomic pointer so that EXEC takes no lock.
std::mutex g_coord_mu;
std::deque<std::string> g_coord_ids;
std::atomic<const std::string*> g_coord{nullptr};

}  // namespace

const std::string& TxnService::coordinator_id() {
  if (const std::string* id = g_coord.load(std::memory_order_acquire)) return *id;
  std::lock_guard lock(g_coord_mu);
  if (const std::string* id = g_coord.load(std::memory_order_acquire)) return *id;
  g_coord_ids.push_back(txn::coordinator_id(std::nullopt, process_identity()));
  g_coord.store(&g_coord_ids.back(), std::memory_order_release);
  return g_coord_ids.back();
}

void TxnService::set_coordinator_tag(uint64_t replica, uint64_t incarnation) {
  std::lock_guard lock(g_coord_mu);
  g_coord_ids.push_back(
      txn::coordinator_id(txn::CoordinatorTag{replica, incarnation}, process_identity()));
  g_coord.store(&g_coord_ids.back(), std::memory_order_release);
}

void TxnService::start() {
  uv_timer_init(worker_.loop(), &timer_);
  timer_.data = this;
  open_ = true;
  if (worker_.index() != 0) return;
  resolver_ = true;
  const Topology& topo = worker_.topology();
  for (size_t b = 0; b < topo.backends.size(); ++b) {
    conns_.push_back(
        std::make_unique<BackendConn>(worker_, static_cast<int>(b), topo.backends[b], 2));
    conns_.back()->start();
  }
  schedule(static_cast<uint64_t>(worker_.shared().settings()->transactions.resolver_interval_ms),
           [this] { scan(); });
}

void TxnService::shutdown() {
  for (auto& c : conns_) c->close_for_shutdown();
  if (open_) {
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }
  timers_.clear();
}

void TxnService::schedule(uint64_t delay_ms, std::function<void()> fn) {
  if (!open_) return;
  timers_.emplace(uv_now(worker_.loop()) + delay_ms, std::move(fn));
  arm();
}

void TxnService::arm() {
  if (!open_) return;
  if (timers_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  const uint64_t now = uv_now(worker_.loop());
  const uint64_t at = timers_.begin()->first;
  uv_timer_start(&timer_, on_timer, at > now ? at - now : 0, 0);
}

void TxnService::on_timer(uv_timer_t* t) {
  auto* self = static_cast<TxnService*>(t->data);
  const uint64_t now = uv_now(self->worker_.loop());
  while (self->open_ && !self->timers_.empty() && self->timers_.begin()->first <= now) {
    auto fn = std::move(self->timers_.begin()->second);
    self->timers_.erase(self->timers_.begin());
    fn();
  }
  self->arm();
}

int TxnService::backend_index(const std::string& name) const {
  const Topology& topo = worker_.topology();
  for (size_t i = 0; i < topo.backends.size(); ++i)
    if (topo.backends[i].name == name) return static_cast<int>(i);
  return -1;
}

void TxnService::scan() {
  // Backends added at runtime (replicated configuration) are scanned too.
  const Topology& topo = worker_.topology();
  for (size_t b = conns_.size(); b < topo.backends.size(); ++b) {
    conns_.push_back(
        std::make_unique<BackendConn>(worker_, static_cast<int>(b), topo.backends[b], 2));
    conns_.back()->start();
  }
  // One scan at a time: the next starts one interval after the last reply of this one.
  scans_pending_ = conns_.size();
  const std::string req = txn::scan_request(kScanLimit);
  for (size_t b = 0; b < conns_.size(); ++b)
    if (!conns_[b]->send(this, kScanCookie | b, req)) --scans_pending_;
  // Cluster mode: also look among the intents still under lease for those a dead incarnation
  // left, so that a replica's crash does not hold keys for the whole lease.
  scan_incarnations_ = std::atomic_load(&worker_.shared().incarnations);
  const std::string abandoned =
      scan_incarnations_ ? txn::scan_abandoned_request(kAbandonedScanLimit, *scan_incarnations_)
                         : std::string();
  if (!abandoned.empty())
    for (size_t b = 0; b < conns_.size(); ++b)
      if (conns_[b]->send(this, kScanCookie | kAbandonedScan | b, abandoned)) ++scans_pending_;
  if (scans_pending_ == 0)
    schedule(static_cast<uint64_t>(worker_.shared().settings()->transactions.resolver_interval_ms),
             [this] { scan(); });
}

void TxnService::send(uint64_t res_id, std::vector<txn::Resolution::Request>& reqs) {
  for (auto& r : reqs) {
    const int b = backend_index(r.backend);
    const uint64_t cookie = (res_id << 24) | r.tag;
    if (b < 0) {
      on_backend_reply(cookie, "-ERR unknown backend " + r.backend + "\r\n");
      continue;
    }
    BackendConn& conn = *conns_[static_cast<size_t>(b)];
    if (!conn.send(this, cookie, r.request)) on_backend_reply(cookie, conn.unavailable_error());
  }
  reqs.clear();
}

void TxnService::on_backend_reply(uint64_t cookie, std::string_view reply) {
  if (!open_) return;
  if (cookie & kScanCookie) {
    const size_t b = cookie & 0xffff;
    const bool abandoned_scan = (cookie & kAbandonedScan) != 0;
    std::vector<txn::ScannedIntent> found;
    if (!resp::is_error_reply(reply) && (abandoned_scan ? txn::parse_abandoned_scan(reply, found)
                                                        : txn::parse_scan(reply, found))) {
      for (auto& it : found) {
        if (by_txid_.contains(it.txid)) continue;
        if (abandoned_scan) {
          // The script's filter is only a pre-filter: the decision is is_abandoned()'s.
          if (!scan_incarnations_ || !txn::is_abandoned(it.coord, *scan_incarnations_)) continue;
          it.abandoned = true;
        }
        const uint64_t id = next_id_++;
        by_txid_[it.txid] = id;
        if (!error_logged_ms_.contains(it.txid))  // not again for every retry of a stuck one
          spdlog::info("txn resolver: found transaction {} ({} on {}, state {}) {}", it.txid,
                       it.role == 'p' ? "primary" : "secondary",
                       worker_.topology().backends[b].name, it.state,
                       abandoned_scan ? "left by a dead coordinator " + it.coord
                                      : std::string("with an expired lease"));
        auto res =
            std::make_unique<txn::Resolution>(worker_.topology().backends[b].name, std::move(it));
        Active& a = active_[id];
        a.id = id;
        a.resolution = std::move(res);
        std::vector<txn::Resolution::Request> reqs;
        a.resolution->start(reqs);
        send(id, reqs);
      }
    } else if (resp::is_error_reply(reply) && !reply.starts_with("-ERR backend")) {
      spdlog::warn("txn resolver: scan of {} failed: {}", worker_.topology().backends[b].name,
                   reply.substr(0, reply.size() - 2));
    }
    if (scans_pending_ > 0 && --scans_pending_ == 0)
      schedule(
          static_cast<uint64_t>(worker_.shared().settings()->transactions.resolver_interval_ms),
          [this] { scan(); });
    return;
  }
  const uint64_t id = cookie >> 24;
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::vector<txn::Resolution::Request> reqs;
  it->second.resolution->on_reply(static_cast<uint32_t>(cookie & 0xffffff), reply, reqs);
  if (!reqs.empty()) {
    if (auto fa = fail_at("txn.resolver.before_apply");
        fa && fa->kind == txn::FailAction::Kind::kDrop)
      reqs.clear();
    send(id, reqs);
  }
  if (it->second.resolution->done()) settle(id);
}

void TxnService::settle(uint64_t id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  const txn::Resolution& r = *it->second.resolution;
  TxnStats& st = txn_stats();
  switch (r.verdict()) {
    case txn::Verdict::kRolledForward:
      st.rolled_forward.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn(
          "txn resolver: transaction {} rolled forward (its coordinator died after the "
          "commit point)",
          r.intent().txid);
      break;
    case txn::Verdict::kRolledBack:
      st.rolled_back.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn(
          "txn resolver: transaction {} rolled back (its coordinator died before the "
          "commit point)",
          r.intent().txid);
      break;
    case txn::Verdict::kError: {
      st.resolver_errors.fetch_add(1, std::memory_order_relaxed);
      const uint64_t now = worker_.now_ms();
      auto [at, first] = error_logged_ms_.try_emplace(r.intent().txid, now);
      if (first || now - at->second >= kErrorLogEveryMs) {
        at->second = now;
        spdlog::error(
            "txn resolver: transaction {}: {} (tried again at every scan; logged once a minute; "
            "lockstep_transaction_resolver_errors_total counts every try)",
            r.intent().txid, r.error());
      }
      // Forget transactions settled elsewhere (another replica's resolver) now and then.
      if (first && error_logged_ms_.size() > 1024)
        std::erase_if(error_logged_ms_,
                      [&](const auto& e) { return now - e.second > 10 * kErrorLogEveryMs; });
      break;
    }
    default:
      break;
  }
  if (r.verdict() != txn::Verdict::kError && error_logged_ms_.erase(r.intent().txid) > 0)
    spdlog::info("txn resolver: transaction {} got through after earlier errors", r.intent().txid);
  by_txid_.erase(r.intent().txid);
  active_.erase(it);
}

}  // namespace lockstep::server
