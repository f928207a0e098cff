// Lockstep's process: configuration in, threads started, drained on a signal.
//
// Threads (who runs what, who owns which state, how they hand work over):
//
//   main (acceptor)      net/acceptor.h   accepts, enforces limits.max_clients, hands each socket
//                                         to a worker (Worker::post_connection); signals: SIGTERM
//                                         and SIGINT start the drain, SIGHUP reopens the log.
//   worker 0..N-1        net/worker.h     one libuv loop each: its clients, its backend
//                                         connections (shared pools, dedicated ones, the pub/sub
//                                         hub's subscribers). Owns everything it touches; others
//                                         reach it only through post_*() (a locked inbox and a
//                                         uv_async). Worker 0 is the home worker: it also runs the
//                                         lock engine (lock/lock_service.h; LOCK.* from other
//                                         workers arrive by post_task, replies go back the same
//                                         way) and the transaction resolver (txn/txn_service.h).
//   cluster              consensus/cluster_service.h   the replicated configuration: PaxosCore,
//                                         its log on disk (fsync never stalls a worker), the peer
//                                         transport, the LOCKSTEP admin commands. Publishes new
//                                         topologies and settings as immutable snapshots
//                                         (std::atomic_store + post_task to every worker).
//   cluster checkers     consensus/cluster_service.cpp  short-lived: LOCKSTEP SLOTS ASSIGN scans a
//                                         backend for keys in the slots (blocking hiredis) off the
//                                         cluster loop.
//   metrics              admin/metrics_http.h          GET /metrics: reads the atomics and
//                                         per-worker counters (one writer each) from its own loop.
//   drain joiner         net/acceptor.cpp              after a signal: tells the workers to drain,
//                                         stops the cluster service, joins the workers.
//
// Shared between threads: SharedState (net/shared_state.h): read-only after start but for
// atomics, self-locking objects (client registry, monitor feed, slow log) and snapshots.
//
// "Cluster" in Lockstep's code and configuration (cluster.*, LOCKSTEP CLUSTER INFO,
// ClusterService) means the group of Lockstep replicas that agree on the configuration through
// Paxos. Redis Cluster (the hash-slot mode of redis-server, CLUSTER commands) is another thing:
// Lockstep's backends are standalone servers, and CLUSTER commands are refused.
#include "lockstep/server/server.h"

#include <spdlog/spdlog.h>

#include <csignal>

#include "admin/metrics_http.h"
#include "server/consensus/cluster_service.h"
#include "server/lock/lock_service.h"
#include "server/net/acceptor.h"
#include "server/net/worker.h"
#include "server/stats/introspect.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {

std::string check(const config::Config& cfg) {
  if (auto e = validate_locks(cfg)) return "locks: " + *e;
  txn::Failpoints fp;
  if (auto e = txn::Failpoints::parse(cfg.transactions.failpoints, fp))
    return "transactions.failpoints: " + *e;
  return {};
}

namespace {

// The topology of the YAML's backends and slot map (before the replicated state may replace
// it); nullptr with the reason logged.
std::shared_ptr<Topology> yaml_topology(const config::Config& cfg) {
  auto topo = std::make_shared<Topology>();
  for (const auto& b : cfg.backends) {
    BackendInfo info;
    info.name = b.name;
    info.address = b.address.str();
    info.cfg = b;
    std::string err;
    if (!resolve_address(b.address, info.sockaddr, err)) {
      spdlog::critical("cannot resolve backend {} ({}): {}", b.name, info.address, err);
      return nullptr;
    }
    topo->backends.push_back(std::move(info));
  }
  if (topo->backends.size() > kMaxBackends) {
    spdlog::critical("at most {} backends", kMaxBackends);
    return nullptr;
  }
  const int n = static_cast<int>(topo->backends.size());
  if (cfg.slots.empty()) {
    topo->slots = proxy::SlotMap::even(n);
    return topo;
  }
  std::vector<proxy::SlotRangeIdx> ranges;
  for (const auto& r : cfg.slots) {
    int idx = -1;
    for (int i = 0; i < n; ++i)
      if (topo->backends[static_cast<size_t>(i)].name == r.backend) idx = i;
    ranges.push_back({r.from, r.to, idx});
  }
  std::string err;
  auto map = proxy::SlotMap::from_ranges(ranges, n, err);
  if (!map) {
    spdlog::critical("slot map: {}", err);
    return nullptr;
  }
  topo->slots = *map;
  return topo;
}

// Replica groups are configured and validated (src/config) and their decisions are made by the
// sans-I/O cores of src/failover, but the data plane does not drive them yet: refuse such a
// configuration rather than silently route to the first address only.
bool replica_groups_unsupported(const config::Config& cfg) {
  for (const auto& b : cfg.backends) {
    if (!b.replicas.empty() || !b.sentinel.master.empty() || b.durability != "async" ||
        (b.read_from != "default" && b.read_from != "primary")) {
      spdlog::critical(
          "backend {}: replica groups (replicas, sentinel, durability, read_from) are not "
          "served by this build yet",
          b.name);
      return true;
    }
  }
  if (cfg.read_from != "primary") {
    spdlog::critical("read_from {}: replica reads are not served by this build yet",
                     cfg.read_from);
    return true;
  }
  return false;
}

// Everything SharedState takes from the configuration alone; false with the reason logged.
bool init_shared(SharedState& shared, const config::Config& cfg, const std::string& config_path) {
  shared.cfg = cfg;
  config::ConfigError error;
  shared.acl = acl::Acl::from_config(cfg, error, config_path);
  if (!shared.acl) {
    spdlog::critical("invalid configuration: {}", error.format());
    return false;
  }
  shared.config_path = config_path;
  shared.table = &proxy::CommandTable::builtin();
  shared.limits.max_bulk_bytes = cfg.limits.max_bulk_bytes;
  shared.limits.max_request_bytes = cfg.limits.max_request_bytes;
  shared.limits.max_args = cfg.limits.max_args;
  shared.limits.max_inline_bytes = cfg.limits.max_inline_bytes;
  shared.live_cfg = std::make_shared<const config::Config>(cfg);
  shared.isolation = isolation_from(cfg.transactions.isolation);
  shared.backend_stats = std::make_unique<BackendStats[]>(kMaxBackends);
  return true;
}

}  // namespace

int run(const config::Config& cfg, const std::string& config_path) {
  signal(SIGPIPE, SIG_IGN);
  SharedState shared;
  if (replica_groups_unsupported(cfg)) return 1;
  if (!init_shared(shared, cfg, config_path)) return 1;
  auto topo = yaml_topology(cfg);
  if (!topo) return 1;
  shared.topology = topo;
  // The replicated configuration (a cluster of one, in memory, without `cluster`): what the
  // data dir holds is applied before the data plane starts, and may replace the YAML's map.
  auto cluster = std::make_unique<ClusterService>(shared, cfg);
  if (std::string e = cluster->open(); !e.empty()) {
    spdlog::critical("{}", e);
    return 1;
  }
  shared.topology = cluster->initial_topology(topo);
  if (auto e = init_failpoints(cfg)) {
    spdlog::critical("failpoints: {}", *e);
    return 1;
  }
  if (!check_backend_durability(cfg)) return 1;

  std::vector<std::unique_ptr<Worker>> workers;
  const int nworkers = cfg.effective_workers();
  for (int i = 0; i < nworkers; ++i) workers.push_back(std::make_unique<Worker>(shared, i));
  for (auto& w : workers) shared.workers.push_back(w.get());

  Acceptor acceptor(shared, workers);
  if (acceptor.listen_on(cfg.listen) != 0) return 1;
  shared.cluster = cluster.get();
  acceptor.set_before_join([&cluster] { cluster->stop(); });
  // Declared after the workers, so it stops (and stops reading their counters) before they go.
  std::unique_ptr<admin::MetricsHttpServer> metrics;
  if (cfg.metrics.enabled()) {
    metrics = std::make_unique<admin::MetricsHttpServer>(
        [&shared] { return admin::render_metrics(gather_metrics(shared)); });
    std::string err;
    if (!metrics->start(cfg.metrics.listen.host, cfg.metrics.listen.port, err)) {
      spdlog::critical("metrics: {}", err);
      return 1;
    }
    spdlog::info("metrics on http://{}/metrics", cfg.metrics.listen.str());
  }
  cluster->start();
  for (auto& w : workers) w->start();
  spdlog::info("lockstep {} listening on {} with {} worker(s) over {} backend(s)", LOCKSTEP_VERSION,
               cfg.listen.str(), nworkers, topo->backends.size());
  const int rc = acceptor.run();
  spdlog::info("drained; exiting");
  return rc;
}

}  // namespace lockstep::server
