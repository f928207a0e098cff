// Process-wide counters that any thread writes with relaxed atomics and INFO and /metrics read
// from any thread: connections and traffic (Stats), per backend (BackendStats, shared by every
// worker's connections to it), and the lock engine's outcomes (LockStats).
#pragma once

#include <atomic>
#include <cstdint>

namespace lockstep::server {

struct Stats {
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> auth_failures{0};
  std::atomic<uint64_t> acl_denied{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::atomic<int64_t> connected_clients{0};
  std::atomic<int64_t> blocked_clients{0};
  std::atomic<int64_t> watch_connections{0};  // connections carrying clients' WATCHes

  // CONFIG RESETSTAT: the totals (not the gauges) start again from zero.
  void reset_totals() {
    for (auto* a :
         {&connections_received, &rejected_connections, &commands_processed, &auth_failures,
          &acl_denied, &protocol_errors, &net_input_bytes, &net_output_bytes})
      a->store(0);
  }
};

struct BackendStats {
  std::atomic<int> connections_up{0};  // every connection Lockstep has to this backend
  std::atomic<int> pool_up{0};         // of the shared request pools: what "state" reports
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> timeouts{0};
};

// Written by the LockService (on the lock worker), read anywhere.
struct LockStats {
  std::atomic<uint64_t> acquired{0};
  std::atomic<uint64_t> failed_busy{0};
  std::atomic<uint64_t> failed_noquorum{0};
  std::atomic<uint64_t> failed_error{0};
  std::atomic<uint64_t> waits{0};
  std::atomic<uint64_t> quorum_losses{0};
  std::atomic<uint64_t> keepalive_lost{0};
};

}  // namespace lockstep::server
