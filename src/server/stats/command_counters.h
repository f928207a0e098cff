// Per-command figures of the requests through Lockstep: calls, time, failures, refusals and a
// log2 latency histogram (as Redis 7's LATENCY HISTOGRAM). Latency is Lockstep's own: from the
// moment a request is parsed to the moment its reply is complete, backend round trip included.
//
// One array per worker (one writer thread, relaxed atomics), summed when read, so the request
// path never shares a cache line between threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace lockstep::server {

constexpr int kLatencyBuckets = 32;  // bucket i counts latencies in [2^i, 2^(i+1)) microseconds

struct CommandCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> usec{0};
  std::atomic<uint64_t> failed{0};    // replied with an error
  std::atomic<uint64_t> rejected{0};  // refused before it ran (arity, ACL, CROSSSLOT ...)
  std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets{};

  // One latency sample; only the owning worker writes, so a plain load+store is enough (no
  // locked instruction on the request path).
  void add_call(uint64_t usec_taken, bool error) {
    bump(calls, 1);
    bump(usec, usec_taken);
    bump(buckets[static_cast<size_t>(bucket_of(usec_taken))], 1);
    if (error) bump(failed, 1);
  }
  void add_rejected() { bump(rejected, 1); }
  void reset() {
    calls = 0;
    usec = 0;
    failed = 0;
    rejected = 0;
    for (auto& b : buckets) b = 0;
  }
  static int bucket_of(uint64_t usec_taken) {
    int b = 0;
    while (usec_taken > 1 && b < kLatencyBuckets - 1) {
      usec_taken >>= 1;
      ++b;
    }
    return b;
  }

 private:
  static void bump(std::atomic<uint64_t>& a, uint64_t d) {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
};

}  // namespace lockstep::server
