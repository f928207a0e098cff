// SLOWLOG: requests slower than slowlog.slower_than_us through Lockstep. Shared by all workers;
// only slow requests (rare by definition) take the lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace lockstep::server {

struct SlowLogEntry {
  uint64_t id;
  int64_t unix_time;
  uint64_t duration_us;
  std::vector<std::string> args;
  std::string client_addr;
  std::string client_name;
};

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

}  // namespace lockstep::server
