// Error replies by kind (their first word: ERR, WRONGTYPE, NOQUORUM ...), as Redis' INFO
// errorstats. One per worker: the worker counts, any thread may read (errors are not the fast
// path, and the lock is uncontended but for a reader's copy).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace lockstep::server {

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

}  // namespace lockstep::server
