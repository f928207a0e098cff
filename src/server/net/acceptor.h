// The acceptor, on the main thread: it owns the listening socket (watched with uv_poll so
// accepted descriptors can be handed to any worker's loop), enforces limits.max_clients before
// a worker ever sees a connection, hands connections to the workers round-robin, and turns
// SIGTERM/SIGINT into a drain of every worker (SIGHUP reopens the log file).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "lockstep/config/config.h"

namespace lockstep::server {

struct SharedState;
class Worker;

class Acceptor {
 public:
  Acceptor(SharedState& shared, std::vector<std::unique_ptr<Worker>>& workers)
      : shared_(shared), workers_(workers) {}
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // 0, or -1 with the reason logged.
  int listen_on(const config::HostPort& hp);
  // Runs the loop until the workers have drained after a signal (or the drain deadline).
  int run();
  // Runs on the drain thread after the workers were told to drain, before they are joined
  // (the cluster service stops there: it posts to the workers, so it must stop first).
  void set_before_join(std::function<void()> f) { before_join_ = std::move(f); }

 private:
  static void on_readable(uv_poll_t* p, int status, int events);
  static void on_hup(uv_signal_t*, int);
  static void on_signal(uv_signal_t* s, int signum);

  SharedState& shared_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  uv_loop_t loop_{};
  uv_poll_t poll_{};
  uv_async_t done_{};
  std::vector<std::unique_ptr<uv_signal_t>> signals_;
  int fd_ = -1;
  size_t next_ = 0;
  bool draining_ = false;
  std::thread joiner_;  // the drain thread
  std::function<void()> before_join_;
};

}  // namespace lockstep::server
