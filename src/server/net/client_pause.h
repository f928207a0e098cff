// CLIENT PAUSE [WRITE|ALL] across every worker: until a steady-clock deadline, the affected
// requests wait (in order) instead of running. As Redis: a new pause never shortens one in
// progress, ALL wins over WRITE while both last, and a pause that has ended leaves nothing
// behind. Plain atomics: read on every request while a pause is set, from any worker.
#pragma once

#include <atomic>
#include <cstdint>

namespace lockstep::server {

class ClientPause {
 public:
  // Milliseconds of the steady clock (the same clock everywhere in the process).
  static uint64_t now_ms();

  void pause(uint64_t now, uint64_t ms, bool all) {
    const uint64_t until = now + ms;
    if (until_ms_.load() <= now) {
      until_ms_.store(until);
      all_.store(all);
      return;
    }
    if (until > until_ms_.load()) until_ms_.store(until);
    if (all) all_.store(true);
  }
  void unpause() {
    until_ms_.store(0);
    all_.store(false);
  }
  // Cheap test for the request path: is any pause set at all?
  bool set() const { return until_ms_.load(std::memory_order_relaxed) > 0; }
  // Does the pause hold back a request now? `writes` = it may write or replicate.
  bool holds(uint64_t now, bool writes) const {
    return (writes || all_.load(std::memory_order_relaxed)) &&
           now < until_ms_.load(std::memory_order_relaxed);
  }
  uint64_t until_ms() const { return until_ms_.load(); }
  // The deadline passed: clear it (only if nobody extended it meanwhile).
  void expire(uint64_t until) {
    uint64_t expected = until;
    if (until_ms_.compare_exchange_strong(expected, 0)) all_.store(false);
  }

 private:
  std::atomic<uint64_t> until_ms_{0};
  std::atomic<bool> all_{false};
};

}  // namespace lockstep::server
