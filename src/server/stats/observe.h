// What Lockstep knows about the requests going through it: per-command call counts, latencies
// (with log2 histograms, as Redis 7's LATENCY HISTOGRAM) and errors, the slow log, and the
// latency monitor's "command" event. Latency here is Lockstep's own: from the moment a request
// is parsed to the moment its reply is complete, backend round trip included.
//
// Counters are per worker (one writer thread, relaxed atomics) and summed when read, so the
// request path never shares a cache line between threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::server {

constexpr int kLatencyBuckets = 32;  // bucket i counts latencies in [2^i, 2^(i+1)) microseconds

struct CommandCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> usec{0};
  std::atomic<uint64_t> failed{0};    // replied with an error
  std::atomic<uint64_t> rejected{0};  // refused before it ran (arity, ACL, CROSSSLOT ...)
  std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets{};
};

// Error replies by kind (their first word: ERR, WRONGTYPE, NOQUORUM ...), as Redis' INFO
// errorstats. One per worker: the worker counts, any thread may read (errors are not the fast
// path, and the lock is uncontended but for a reader's copy).
class ErrorCounters {
 public:
  static constexpr size_t kMaxKinds = 128;   // more distinct kinds are counted as "OTHER"
  void count(std::string_view error_reply);  // the reply bytes ("-ERR ...\r\n") or the text
  void add_to(std::map<std::string, uint64_t>& totals) const;
  void reset();

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t, std::less<>> counts_;
};

// "WRONGTYPE" of "-WRONGTYPE Operation ...\r\n"; "ERR" when the first word is not an upper-case
// code (so the kind is always a safe INFO field and metric label).
std::string_view error_kind(std::string_view error_reply);

struct SlowLogEntry {
  uint64_t id;
  int64_t unix_time;
  uint64_t duration_us;
  std::vector<std::string> args;
  std::string client_addr;
  std::string client_name;
};

// Shared by all workers; only slow requests (rare by definition) take the lock.
class SlowLog {
 public:
  void add(SlowLogEntry entry, size_t max_len);
  std::vector<SlowLogEntry> get(size_t count) const;  // newest first
  size_t size() const;
  void reset();

 private:
  mutable std::mutex mu_;
  std::vector<SlowLogEntry> entries_;  // oldest first
  uint64_t next_id_ = 0;
};

// LATENCY's "command" event: requests slower than the threshold, one sample per second (the
// worst of that second), the last 160 kept, as Redis keeps them.
class LatencyMonitor {
 public:
  struct Sample {
    int64_t unix_time;
    uint64_t ms;
  };
  void add(int64_t unix_time, uint64_t ms);
  bool latest(Sample& last, uint64_t& max) const;
  std::vector<Sample> history() const;
  void reset();

 private:
  mutable std::mutex mu_;
  std::vector<Sample> samples_;
  uint64_t max_ = 0;
};

inline int latency_bucket(uint64_t usec) {
  int b = 0;
  while (usec > 1 && b < kLatencyBuckets - 1) {
    usec >>= 1;
    ++b;
  }
  return b;
}

}  // namespace lockstep::server
