// State visible to every thread of the process. Fields are set before the workers start and
// read-only after, except the atomics, the objects that guard themselves (registry, monitors,
// slow log, latency monitor) and the snapshots swapped with std::atomic_store.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/acl/acl.h"
#include "lockstep/config/config.h"
#include "lockstep/proxy/command_table.h"
#include "lockstep/resp/resp.h"
#include "server/commands/monitor_feed.h"
#include "server/net/client_pause.h"
#include "server/net/client_registry.h"
#include "server/net/topology.h"
#include "server/stats/latency_monitor.h"
#include "server/stats/process_stats.h"
#include "server/stats/slow_log.h"

namespace lockstep::server {

class Worker;
class ClusterService;

// transactions.isolation: what plain commands respect while a cross-backend commit is in flight.
enum class Isolation : uint8_t { kNone, kWrites, kAll };
Isolation isolation_from(const std::string& name);

struct SharedState {
  config::Config cfg;
  std::string config_path;
  std::optional<acl::Acl> acl;  // the users; set before the workers start
  // Swapped when the replicated configuration changes the slot map: read it from other threads
  // with std::atomic_load (workers route by their own copy, Worker::topology()).
  std::shared_ptr<const Topology> topology;
  // Live values of the replicated settings (cfg plus what LOCKSTEP CONFIG SET changed);
  // swapped with std::atomic_store by the ClusterService. Read through settings().
  std::shared_ptr<const config::Config> live_cfg;
  std::shared_ptr<const config::Config> settings() const { return std::atomic_load(&live_cfg); }
  // transactions.isolation of live_cfg: read per request, so an atomic, not a snapshot load.
  std::atomic<Isolation> isolation{Isolation::kNone};
  // Replica id -> replicated incarnation, swapped with std::atomic_store by the ClusterService;
  // null without `cluster` (no successor can ever declare a coordinator dead). The resolver
  // reads it once per scan to resolve a dead replica's transactions before their lease ends.
  std::shared_ptr<const std::map<uint64_t, uint64_t>> incarnations;
  ClusterService* cluster = nullptr;  // the LOCKSTEP admin commands go there
  const proxy::CommandTable* table = nullptr;
  resp::ParserLimits limits;
  Stats stats;
  std::unique_ptr<BackendStats[]> backend_stats;  // kMaxBackends entries
  LockStats lock_stats;
  ClientPause pause;
  MonitorFeed monitors;
  SlowLog slowlog;
  LatencyMonitor latency;
  ClientRegistry registry;
  std::atomic<uint64_t> next_client_id{1};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::vector<Worker*> workers;
  // The worker whose loop runs the lock engine (LockService) and the transaction resolver:
  // workers[0]. Clients on other workers hand their LOCK.* requests to it.
  Worker* home() const { return workers.front(); }
};

}  // namespace lockstep::server
