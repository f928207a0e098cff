#include "support/lock_support.h"

#include <fmt/format.h>

#include <stdexcept>

namespace lockstep::test {

std::optional<Grant> as_grant(const Reply& r) {
  if (!r.is_array() || r.elements.size() != 3) return std::nullopt;
  const Reply& t = r.elements[0];
  const Reply& f = r.elements[1];
  const Reply& v = r.elements[2];
  if (!t.is_string() || !f.is_integer() || !v.is_integer()) return std::nullopt;
  return Grant{t.str, f.integer, v.integer};
}

std::optional<LockStatus> as_status(const Reply& r) {
  if ((r.type != Reply::Type::kArray && r.type != Reply::Type::kMap) || r.elements.size() != 8)
    return std::nullopt;
  LockStatus s;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const Reply& k = r.elements[i];
    const Reply& v = r.elements[i + 1];
    if (!v.is_integer()) return std::nullopt;
    if (k.str == "held") {
      s.held = v.integer;
    } else if (k.str == "fence") {
      s.fence = v.integer;
    } else if (k.str == "ttl-ms") {
      s.ttl_ms = v.integer;
    } else if (k.str == "waiters") {
      s.waiters = v.integer;
    } else {
      return std::nullopt;
    }
  }
  if (s.held < 0 || s.fence < 0 || s.ttl_ms < 0 || s.waiters < 0) return std::nullopt;
  return s;
}

std::optional<LockStatus> lock_status(Client& c, const std::string& name, Reply* raw) {
  Reply r = c("LOCK.STATUS", name);
  if (raw != nullptr) *raw = r;
  return as_status(r);
}

long long uptime_s(const RedisServer& server) {
  Client c = server.client(2s);
  Reply r = c("INFO", "server");
  if (!r.is_string()) return -1;
  const std::string field = "uptime_in_seconds:";
  size_t p = r.str.find(field);
  if (p == std::string::npos) return -1;
  return std::stoll(r.str.substr(p + field.size()));
}

namespace {

// Redis-servers shared by every LockCluster of this test binary, so each test does not wait
// for new servers to age past the quarantine window. A test may kill, restart or pause them;
// the next LockCluster brings them back (and waits again if they restarted).
std::vector<std::unique_ptr<RedisServer>>& pool() {
  static std::vector<std::unique_ptr<RedisServer>> servers;
  return servers;
}

}  // namespace

LockCluster::LockCluster(LockClusterOptions o) {
  window_ms_ = o.quarantine_ms.value_or(o.max_ttl_ms + o.lock_delay_ms);
  auto& servers = pool();
  while (servers.size() < o.backends) servers.push_back(std::make_unique<RedisServer>());
  for (size_t i = 0; i < o.backends; ++i) {
    RedisServer& s = *servers[i];
    s.resume();  // harmless if it was not paused
    if (!s.running()) s.restart();
    Client c = s.client(5s);
    Reply r = c("FLUSHALL");
    if (!r.is_ok()) throw std::runtime_error("FLUSHALL on a pooled backend: " + r.to_string());
    backends_.push_back(&s);
  }
  // Lockstep quarantines a backend whose uptime is below the window at first sight.
  for (RedisServer* s : backends_) {
    const bool aged = wait_until([&] { return uptime_s(*s) * 1000 >= window_ms_; },
                                 Millis(window_ms_ + 5000), 50ms);
    if (!aged) throw std::runtime_error("a pooled redis-server did not age past the window");
  }
  std::vector<std::string> addresses;
  for (RedisServer* s : backends_) addresses.push_back(s->address());
  std::string yaml =
      fmt::format("locks:\n  max_ttl_ms: {}\n  lock_delay_ms: {}\n", o.max_ttl_ms, o.lock_delay_ms);
  if (o.quarantine_ms) yaml += fmt::format("  quarantine_ms: {}\n", *o.quarantine_ms);
  yaml += o.extra_locks_yaml;
  // Reconnect to a restarted backend quickly (the default backoff cap is 5 s).
  yaml += "timeouts:\n  connect_ms: 300\n  backend_retry_max_ms: 100\n";
  yaml += o.extra_yaml;
  for (size_t p = 0; p < o.proxies; ++p) {
    LockstepOptions lo;
    lo.extra_yaml = yaml;
    proxies_.push_back(std::make_unique<LockstepProcess>(addresses, lo));
  }
  // Lock connections are verified (INFO server) before they vote: wait for a quorum.
  for (auto& p : proxies_) {
    Client c = p->client(2s);
    Reply last;
    const bool ready =
        wait_until([&] { return lock_status(c, "__ready_probe", &last).has_value(); }, 10s, 20ms);
    if (!ready)
      throw std::runtime_error("lockstep locks never became ready: " + last.to_string() + "\n" +
                               p->stderr_text());
  }
}

LockCluster::~LockCluster() {
  proxies_.clear();  // stop Lockstep before anything else
  for (RedisServer* s : backends_) s->resume();
}

std::vector<std::string> LockCluster::internal_keys() const {
  std::vector<std::string> out;
  for (RedisServer* s : backends_) {
    Client c = s->client(2s);
    Reply r = c("KEYS", "__lockstep:*");
    for (const auto& k : r.as_strings()) out.push_back(k);
  }
  return out;
}

}  // namespace lockstep::test
