// SLOWLOG, LATENCY and INFO commandstats/latencystats: Lockstep's view of the requests through
// it, in Redis 7.0's reply shapes so existing tools can read them.
#include <fmt/format.h>

#include <chrono>
#include <map>

#include "server/consensus/cluster_service.h"
#include "lockstep/proxy/router.h"
#include "server/txn/txn_service.h"
#include "server/net/worker.h"

namespace lockstep::server {

using proxy::iequals;

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

std::array<uint64_t, kLatencyBuckets> histogram(const SharedState& sh, uint16_t id) {
  std::array<uint64_t, kLatencyBuckets> h{};
  for (const Worker* w : sh.workers)
    for (int b = 0; b < kLatencyBuckets; ++b)
      h[static_cast<size_t>(b)] +=
          w->counters(id).buckets[static_cast<size_t>(b)].load(std::memory_order_relaxed);
  return h;
}

// The upper bound (µs) of the bucket holding the p-th percentile.
uint64_t percentile(const std::array<uint64_t, kLatencyBuckets>& h, uint64_t total, double p) {
  const double want = p / 100.0 * static_cast<double>(total);
  uint64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += h[static_cast<size_t>(b)];
    if (static_cast<double>(seen) >= want) return uint64_t{1} << (b + 1);
  }
  return uint64_t{1} << kLatencyBuckets;
}

}  // namespace

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
    f.latency = histogram(sh, c.id);
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

void append_commandstats(const SharedState& sh, std::string& text) {
  text += "# Commandstats\r\n";
  for (const admin::CommandFigures& c : gather_commands(sh)) {
    fmt::format_to(std::back_inserter(text),
                   "cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls={},"
                   "failed_calls={}\r\n",
                   c.name, c.calls, c.usec,
                   c.calls ? static_cast<double>(c.usec) / static_cast<double>(c.calls) : 0.0,
                   c.rejected, c.failed);
  }
  text += "\r\n";
}

void append_latencystats(const SharedState& sh, std::string& text) {
  text += "# Latencystats\r\n";
  for (const admin::CommandFigures& c : gather_commands(sh)) {
    if (c.calls == 0) continue;
    fmt::format_to(std::back_inserter(text),
                   "latency_percentiles_usec_{}:p50={},p99={},p99.9={}\r\n", c.name,
                   percentile(c.latency, c.calls, 50), percentile(c.latency, c.calls, 99),
                   percentile(c.latency, c.calls, 99.9));
  }
  text += "\r\n";
}

void append_errorstats(const SharedState& sh, std::string& text) {
  text += "# Errorstats\r\n";
  for (const auto& [kind, count] : gather_errors(sh))
    fmt::format_to(std::back_inserter(text), "errorstat_{}:count={}\r\n", kind, count);
  text += "\r\n";
}

void append_lockstats(const SharedState& sh, std::string& text) {
  const admin::LockFigures l = gather_locks(sh);
  fmt::format_to(std::back_inserter(text),
                 "# Locks\r\nlock_acquired:{}\r\nlock_failed_busy:{}\r\nlock_failed_noquorum:{}"
                 "\r\nlock_failed_error:{}\r\nlock_waits:{}\r\nlock_quorum_losses:{}\r\n"
                 "lock_keepalive_lost:{}\r\n\r\n",
                 l.acquired, l.failed_busy, l.failed_noquorum, l.failed_error, l.waits,
                 l.quorum_losses, l.keepalive_lost);
}

void append_clusterstats(std::string& text) {
  const auto c = gather_consensus();
  if (!c) return;
  fmt::format_to(std::back_inserter(text),
                 "# Cluster\r\ncluster_id:{}\r\ncluster_leader:{}\r\ncluster_role:{}\r\n"
                 "cluster_epoch:{}\r\ncluster_chosen_index:{}\r\ncluster_applied_index:{}\r\n"
                 "cluster_members:{}\r\ncluster_commits:{}\r\ncluster_commit_usec:{}\r\n"
                 "cluster_peer_messages_dropped:{}\r\n\r\n",
                 c->id, c->leader, c->is_leader ? "leader" : "follower", c->epoch, c->chosen_index,
                 c->applied_index, c->members, c->commits, c->commit_usec, c->peer_dropped);
}

void append_txnstats(std::string& text) {
  const admin::TxnFigures t = gather_txns();
  fmt::format_to(std::back_inserter(text),
                 "# Transactions\r\ntxn_single:{}\r\ntxn_cross:{}\r\ntxn_committed:{}\r\n"
                 "txn_watch_failed:{}\r\ntxn_conflicts:{}\r\ntxn_conflict_timeouts:{}\r\n"
                 "txn_aborted:{}\r\ntxn_unknown:{}\r\ntxn_rolled_forward:{}\r\n"
                 "txn_rolled_back:{}\r\ntxn_resolver_errors:{}\r\n\r\n",
                 t.single, t.cross, t.committed, t.watch_failed, t.conflicts, t.gave_up, t.aborted,
                 t.unknown, t.rolled_forward, t.rolled_back, t.resolver_errors);
}

void Client::cmd_slowlog(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  std::string_view sub = args[1];
  std::string out;
  if (iequals(sub, "get")) {
    int64_t count = 10;
    if (args.size() == 3 && (!resp::parse_int64(args[2], count) || count < -1)) {
      reply_error("ERR count should be greater than or equal to -1");
      return;
    }
    auto entries = sh.slowlog.get(count == -1 ? SIZE_MAX : static_cast<size_t>(count));
    resp::append_array_header(out, static_cast<int64_t>(entries.size()));
    for (const auto& e : entries) {
      resp::append_array_header(out, 6);
      resp::append_integer(out, static_cast<int64_t>(e.id));
      resp::append_integer(out, e.unix_time);
      resp::append_integer(out, static_cast<int64_t>(e.duration_us));
      resp::append_array_header(out, static_cast<int64_t>(e.args.size()));
      for (const auto& a : e.args) resp::append_bulk(out, a);
      resp::append_bulk(out, e.client_addr);
      resp::append_bulk(out, e.client_name);
    }
  } else if (iequals(sub, "len")) {
    resp::append_integer(out, static_cast<int64_t>(sh.slowlog.size()));
  } else if (iequals(sub, "reset")) {
    sh.slowlog.reset();
    out = "+OK\r\n";
  } else {  // help
    static constexpr std::string_view kHelp[] = {
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of: id, timestamp, time in microseconds, arguments array,",
        "    client IP and port, client name. Lockstep keeps the command name and the",
        "    argument count (arguments are forwarded without being copied).",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Print this help."};
    resp::append_array_header(out, static_cast<int64_t>(std::size(kHelp)));
    for (auto l : kHelp) resp::append_simple(out, l);
  }
  reply(out);
}

void Client::cmd_latency(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  std::string_view sub = args[1];
  std::string out;
  if (iequals(sub, "latest")) {
    LatencyMonitor::Sample last{};
    uint64_t max = 0;
    if (sh.latency.latest(last, max)) {
      resp::append_array_header(out, 1);
      resp::append_array_header(out, 4);
      resp::append_bulk(out, "command");
      resp::append_integer(out, last.unix_time);
      resp::append_integer(out, static_cast<int64_t>(last.ms));
      resp::append_integer(out, static_cast<int64_t>(max));
    } else {
      resp::append_array_header(out, 0);
    }
  } else if (iequals(sub, "history")) {
    if (args.size() != 3) {
      reply_error(proxy::arity_error("latency|history"));
      return;
    }
    auto samples =
        iequals(args[2], "command") ? sh.latency.history() : std::vector<LatencyMonitor::Sample>{};
    resp::append_array_header(out, static_cast<int64_t>(samples.size()));
    for (const auto& s : samples) {
      resp::append_array_header(out, 2);
      resp::append_integer(out, s.unix_time);
      resp::append_integer(out, static_cast<int64_t>(s.ms));
    }
  } else if (iequals(sub, "reset")) {
    bool all = args.size() == 2, ours = all;
    for (size_t i = 2; i < args.size(); ++i) ours = ours || iequals(args[i], "command");
    const bool had = !sh.latency.history().empty();
    if (ours) sh.latency.reset();
    resp::append_integer(out, ours && had ? 1 : 0);
  } else if (iequals(sub, "histogram")) {
    std::vector<const proxy::CommandInfo*> cmds;
    if (args.size() == 2) {
      for_each_command(*sh.table, [&](const proxy::CommandInfo& c) { cmds.push_back(&c); });
    } else {
      for (size_t i = 2; i < args.size(); ++i) {
        const proxy::CommandInfo* c = sh.table->find(args[i]);
        if (c != nullptr) cmds.push_back(c);
      }
    }
    std::string body;
    int64_t n = 0;
    for (const proxy::CommandInfo* c : cmds) {
      const uint64_t calls = sum_workers(
          sh, c->id, [](const CommandCounters& k) -> auto& { return k.calls; });
      if (calls == 0) continue;
      ++n;
      auto h = histogram(sh, c->id);
      resp::append_bulk(body, c->name);
      resp::append_map_header(body, 2, protocol());
      resp::append_bulk(body, "calls");
      resp::append_integer(body, static_cast<int64_t>(calls));
      resp::append_bulk(body, "histogram_usec");
      // Cumulative counts by bucket upper bound (µs), as Redis reports them: only buckets
      // that add calls, so the counts strictly increase.
      int used = 0;
      for (int b = 0; b < kLatencyBuckets; ++b) used += h[static_cast<size_t>(b)] ? 1 : 0;
      resp::append_map_header(body, used, protocol());
      uint64_t cum = 0;
      for (int b = 0; b < kLatencyBuckets; ++b) {
        if (h[static_cast<size_t>(b)] == 0) continue;
        cum += h[static_cast<size_t>(b)];
        resp::append_integer(body, static_cast<int64_t>(uint64_t{1} << (b + 1)));
        resp::append_integer(body, static_cast<int64_t>(cum));
      }
    }
    resp::append_map_header(out, n, protocol());
    out += body;
  } else {  // help
    static constexpr std::string_view kHelp[] = {
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LATEST",
        "    Return the latest latency samples (event: command).",
        "HISTORY <event>",
        "    Return time-latency samples for the 'command' event.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more events.",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the",
        "    specified command names (all by default), measured through Lockstep.",
        "HELP",
        "    Prints this help."};
    resp::append_array_header(out, static_cast<int64_t>(std::size(kHelp)));
    for (auto l : kHelp) resp::append_simple(out, l);
  }
  reply(out);
}

}  // namespace lockstep::server
