// Support for the LOCK.* integration tests: parsed replies, and a fixture of redis-servers that
// a new Lockstep trusts as lock backends at once.
//
// Why "warm" backends: Lockstep quarantines a lock backend it sees for the first time if the
// backend has been up for less than the quarantine window (it may just have lost its holds),
// so a fixture that starts redis-servers and Lockstep together has no lock quorum for a while.
// LockCluster takes its redis-servers from a process-wide pool and waits until each has been
// up for the window before it starts Lockstep, so each test starts with eligible backends.
// (What happens with freshly started backends is tested on its own in lock_test.cpp.)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/harness.h"

namespace lockstep::test {

// A LOCK.ACQUIRE grant: [token, fence, validity-ms].
struct Grant {
  std::string token;
  long long fence = 0;
  long long validity_ms = 0;
};
// The grant in `r`, or nullopt if `r` is not a 3-element [string, integer, integer] array.
std::optional<Grant> as_grant(const Reply& r);

// A LOCK.STATUS reply (RESP2 flat array or RESP3 map) as its four fields.
struct LockStatus {
  long long held = -1;
  long long fence = -1;
  long long ttl_ms = -1;
  long long waiters = -1;
};
std::optional<LockStatus> as_status(const Reply& r);

struct LockClusterOptions {
  size_t backends = 3;
  size_t proxies = 1;  // Lockstep processes over the same backends
  long long max_ttl_ms = 3000;
  long long lock_delay_ms = 0;
  std::optional<long long> quarantine_ms;  // unset: Lockstep's default (max_ttl + lock_delay)
  std::string extra_locks_yaml;            // more lines under `locks:`, each "  key: value\n"
  std::string extra_yaml;                  // appended to the config (other sections)
};

class LockCluster {
 public:
  explicit LockCluster(LockClusterOptions options = {});
  ~LockCluster();
  LockCluster(const LockCluster&) = delete;
  LockCluster& operator=(const LockCluster&) = delete;

  size_t size() const { return backends_.size(); }
  RedisServer& backend(size_t i) { return *backends_.at(i); }
  LockstepProcess& proxy(size_t i = 0) { return *proxies_.at(i); }
  uint16_t port(size_t i = 0) const { return proxies_.at(i)->port(); }
  Client client(size_t proxy = 0, Millis timeout = 10s) const {
    return proxies_.at(proxy)->client(timeout);
  }
  Client direct(size_t i, Millis timeout = 10s) const { return backends_.at(i)->client(timeout); }
  // The quarantine window Lockstep applies (quarantine_ms, or max_ttl + lock_delay).
  long long quarantine_ms() const { return window_ms_; }
  std::string key_on(size_t backend, std::string_view prefix, size_t index = 0) const {
    return test::key_on(backend, size(), prefix, index);
  }
  // Every __lockstep: key on every backend (read directly).
  std::vector<std::string> internal_keys() const;

 private:
  std::vector<RedisServer*> backends_;  // owned by the pool
  std::vector<std::unique_ptr<LockstepProcess>> proxies_;
  long long window_ms_ = 0;
};

// Runs `fn` on scope exit (e.g. resume paused backends when a REQUIRE throws).
template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F fn) : fn_(std::move(fn)) {}
  ~ScopeExit() { fn_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F fn_;
};

// LOCK.STATUS through `c`, parsed; nullopt (and the reply in `raw`) when it is not a status.
std::optional<LockStatus> lock_status(Client& c, const std::string& name, Reply* raw = nullptr);

// Seconds since a redis-server started (INFO server uptime_in_seconds), -1 if unknown.
long long uptime_s(const RedisServer& server);

}  // namespace lockstep::test
