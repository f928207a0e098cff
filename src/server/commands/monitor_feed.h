// MONITOR: who watches (clients on any worker), and the fan-out of one line to all of them. A
// request is formatted only while someone monitors (active() is one relaxed load).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockstep::server {

class Worker;

class MonitorFeed {
 public:
  bool active() const { return count_.load(std::memory_order_relaxed) > 0; }
  void add(Worker* w, uint64_t client_id);
  void remove(Worker* w, uint64_t client_id);
  // One request as Redis prints it for MONITOR: +<unix>.<usec> [0 <addr>] "arg" ..., arguments
  // quoted like sdscatrepr, AUTH and HELLO AUTH credentials redacted.
  static std::string format(std::span<const std::string_view> args, std::string_view peer);
  // Posts `line` to every monitoring client's worker.
  void publish(const std::string& line);

 private:
  std::atomic<int> count_{0};
  std::mutex mu_;
  std::vector<std::pair<Worker*, uint64_t>> watchers_;
};

}  // namespace lockstep::server
