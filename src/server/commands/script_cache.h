// Script bodies by SHA-1, learned from EVAL and SCRIPT LOAD through any client, so an EVALSHA
// that a backend answers with -NOSCRIPT can be retried there as EVAL.
//
// Why: a client library keeps one script cache per connection (ioredis' defineCommand sends
// EVALSHA once it saw the script loaded), but behind Lockstep one connection reaches several
// backends, and a backend that never ran the script, or restarted, answers -NOSCRIPT where a
// single Redis would not. Bounded (kMaxBytes); beyond it nothing new is learned and -NOSCRIPT
// reaches the client, which then sends EVAL itself, as it would against a flushed Redis.
#pragma once

#include <atomic>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace lockstep::server {

class ScriptCache {
 public:
  static constexpr size_t kMaxBytes = 64 << 20;
  static ScriptCache& instance();
  void learn(std::string_view body);
  // SCRIPT FLUSH through Lockstep: as on one Redis, EVALSHA of an earlier script fails again.
  void clear();
  std::optional<std::string> body(std::string_view sha) const;
  // Nothing learned yet: an EVALSHA can skip the retry machinery (no allocation).
  bool empty() const { return bytes_learned_.load(std::memory_order_relaxed) == 0; }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_set<size_t> seen_;  // std::hash of bodies already learned: no SHA-1 again
  std::unordered_map<std::string, std::string> by_sha_;
  size_t bytes_ = 0;
  std::atomic<size_t> bytes_learned_{0};
};

}  // namespace lockstep::server
