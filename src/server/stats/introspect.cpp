// The figures of INFO and /metrics, gathered from any thread (introspect.h).
#include "server/stats/introspect.h"

#include <chrono>
#include <map>

#include "server/consensus/cluster_service.h"
#include "server/net/worker.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {

namespace {

// Sum of one counter over every worker (each worker writes its own).
template <typename F>
uint64_t sum_workers(const SharedState& sh, uint16_t id, F field) {
  uint64_t total = 0;
  for (const Worker* w : sh.workers)
    total += field(w->counters(id)).load(std::memory_order_relaxed);
  return total;
}

template <typename F>
void for_each_command(const proxy::CommandTable& table, F&& f) {
  for (const proxy::CommandInfo& c : table.all()) {
    f(c);
    for (const proxy::CommandInfo& s : c.subcommands) f(s);
  }
}

}  // namespace

std::array<uint64_t, kLatencyBuckets> command_histogram(const SharedState& sh, uint16_t id) {
  std::array<uint64_t, kLatencyBuckets> h{};
  for (const Worker* w : sh.workers)
    for (int b = 0; b < kLatencyBuckets; ++b)
      h[static_cast<size_t>(b)] +=
          w->counters(id).buckets[static_cast<size_t>(b)].load(std::memory_order_relaxed);
  return h;
}

uint64_t command_calls(const SharedState& sh, uint16_t id) {
  return sum_workers(
      sh, id, [](const CommandCounters& k) -> auto& { return k.calls; });
}

uint64_t percentile(const std::array<uint64_t, kLatencyBuckets>& h, uint64_t total, double p) {
  const double want = p / 100.0 * static_cast<double>(total);
  uint64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += h[static_cast<size_t>(b)];
    if (static_cast<double>(seen) >= want) return uint64_t{1} << (b + 1);
  }
  return uint64_t{1} << kLatencyBuckets;
}

static_assert(admin::kLog2Buckets == kLatencyBuckets);

// The gathering INFO and /metrics share: every figure is a relaxed atomic (or guarded by its
// own lock), summed over the workers from whatever thread asks.
std::vector<admin::CommandFigures> gather_commands(const SharedState& sh) {
  std::vector<admin::CommandFigures> out;
  for_each_command(*sh.table, [&](const proxy::CommandInfo& c) {
    admin::CommandFigures f;
    f.calls = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.calls; });
    f.rejected = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.rejected; });
    if (f.calls == 0 && f.rejected == 0) return;
    f.name = c.name;
    f.usec = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.usec; });
    f.failed = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.failed; });
    f.latency = command_histogram(sh, c.id);
    out.push_back(std::move(f));
  });
  return out;
}

std::vector<std::pair<std::string, uint64_t>> gather_errors(const SharedState& sh) {
  std::map<std::string, uint64_t> totals;
  for (const Worker* w : sh.workers) w->errors().add_to(totals);
  return {totals.begin(), totals.end()};
}

std::vector<admin::BackendFigures> gather_backends(const SharedState& sh) {
  std::vector<admin::BackendFigures> out;
  const auto topology = std::atomic_load(&sh.topology);
  const Topology& topo = *topology;
  const int expected = static_cast<int>(sh.workers.size()) * sh.cfg.backend_connections;
  for (size_t b = 0; b < topo.backends.size(); ++b) {
    const BackendStats& bs = sh.backend_stats[b];
    admin::BackendFigures f;
    f.name = topo.backends[b].name;
    f.address = topo.backends[b].address;
    f.up = bs.pool_up.load(std::memory_order_relaxed) == expected;
    f.connections = bs.connections_up.load(std::memory_order_relaxed);
    f.requests = bs.requests.load(std::memory_order_relaxed);
    f.failures = bs.failures.load(std::memory_order_relaxed);
    f.reconnects = bs.reconnects.load(std::memory_order_relaxed);
    f.timeouts = bs.timeouts.load(std::memory_order_relaxed);
    for (const Worker* w : sh.workers) {
      const int i = static_cast<int>(b);
      const CommandCounters& c = w->backend_counters(i);
      f.inflight += w->inflight_sample(i);
      f.replies += c.calls.load(std::memory_order_relaxed);
      f.latency_usec += c.usec.load(std::memory_order_relaxed);
      for (size_t k = 0; k < f.latency.size(); ++k)
        f.latency[k] += c.buckets[k].load(std::memory_order_relaxed);
    }
    out.push_back(std::move(f));
  }
  return out;
}

admin::LockFigures gather_locks(const SharedState& sh) {
  const LockStats& l = sh.lock_stats;
  admin::LockFigures f;
  f.acquired = l.acquired.load(std::memory_order_relaxed);
  f.failed_busy = l.failed_busy.load(std::memory_order_relaxed);
  f.failed_noquorum = l.failed_noquorum.load(std::memory_order_relaxed);
  f.failed_error = l.failed_error.load(std::memory_order_relaxed);
  f.waits = l.waits.load(std::memory_order_relaxed);
  f.quorum_losses = l.quorum_losses.load(std::memory_order_relaxed);
  f.keepalive_lost = l.keepalive_lost.load(std::memory_order_relaxed);
  return f;
}

admin::TxnFigures gather_txns() {
  const TxnStats& t = txn_stats();
  admin::TxnFigures f;
  f.single = t.single.load(std::memory_order_relaxed);
  f.cross = t.cross.load(std::memory_order_relaxed);
  f.committed = t.committed.load(std::memory_order_relaxed);
  f.watch_failed = t.watch_failed.load(std::memory_order_relaxed);
  f.conflicts = t.conflicts.load(std::memory_order_relaxed);
  f.gave_up = t.gave_up.load(std::memory_order_relaxed);
  f.aborted = t.aborted.load(std::memory_order_relaxed);
  f.unknown = t.unknown.load(std::memory_order_relaxed);
  f.rolled_forward = t.rolled_forward.load(std::memory_order_relaxed);
  f.rolled_back = t.rolled_back.load(std::memory_order_relaxed);
  f.resolver_errors = t.resolver_errors.load(std::memory_order_relaxed);
  return f;
}

std::optional<admin::ConsensusFigures> gather_consensus() {
  const ConsensusStats& cs = consensus_stats();
  if (!cs.running.load(std::memory_order_relaxed)) return std::nullopt;
  admin::ConsensusFigures f;
  f.id = cs.id.load(std::memory_order_relaxed);
  f.leader = cs.leader.load(std::memory_order_relaxed);
  f.is_leader = cs.is_leader.load(std::memory_order_relaxed);
  f.epoch = cs.epoch.load(std::memory_order_relaxed);
  f.chosen_index = cs.chosen.load(std::memory_order_relaxed);
  f.applied_index = cs.applied.load(std::memory_order_relaxed);
  f.members = cs.members.load(std::memory_order_relaxed);
  f.commits = cs.commits.load(std::memory_order_relaxed);
  f.commit_usec = cs.commit_usec.load(std::memory_order_relaxed);
  for (size_t i = 0; i < f.commit_latency.size(); ++i)
    f.commit_latency[i] = cs.commit_latency[i].load(std::memory_order_relaxed);
  f.peer_dropped = cs.peer_dropped.load(std::memory_order_relaxed);
  return f;
}

admin::MetricsSnapshot gather_metrics(const SharedState& sh) {
  admin::MetricsSnapshot s;
  s.version = LOCKSTEP_VERSION;
  s.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sh.started).count();
  s.workers = static_cast<int64_t>(sh.workers.size());
  const Stats& st = sh.stats;
  s.clients.connected = st.connected_clients.load(std::memory_order_relaxed);
  s.clients.blocked = st.blocked_clients.load(std::memory_order_relaxed);
  s.clients.received = st.connections_received.load(std::memory_order_relaxed);
  s.clients.rejected = st.rejected_connections.load(std::memory_order_relaxed);
  s.clients.commands = st.commands_processed.load(std::memory_order_relaxed);
  s.clients.auth_failures = st.auth_failures.load(std::memory_order_relaxed);
  s.clients.acl_denied = st.acl_denied.load(std::memory_order_relaxed);
  s.clients.protocol_errors = st.protocol_errors.load(std::memory_order_relaxed);
  s.clients.net_input_bytes = st.net_input_bytes.load(std::memory_order_relaxed);
  s.clients.net_output_bytes = st.net_output_bytes.load(std::memory_order_relaxed);
  s.commands = gather_commands(sh);
  s.errors = gather_errors(sh);
  s.backends = gather_backends(sh);
  s.locks = gather_locks(sh);
  s.txns = gather_txns();
  s.consensus = gather_consensus();
  return s;
}

}  // namespace lockstep::server
