// INFO: Lockstep's own sections (server, clients, memory, stats, commandstats, latencystats,
// errorstats, lockstep, locks, transactions, cluster) and the keyspace section summed over the
// backends. The figures are gathered in stats/introspect.cpp, shared with /metrics.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "server/commands/handlers.h"
#include "server/commands/redis_version.h"
#include "server/net/worker.h"
#include "server/stats/introspect.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "0.0.0"
#endif

namespace lockstep::server {
namespace {

using proxy::iequals;

uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
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

// "db0:keys=1,expires=0,avg_ttl=0" from each backend (whatever db it uses) becomes one db0 line.
class KeyspaceJob final : public Job {
 public:
  // `dbs[i]`: the database Lockstep uses on backend i (backends[].db); other databases on a
  // backend are not Lockstep's data.
  KeyspaceJob(std::string head, std::string tail, std::vector<int> dbs, int protocol)
      : head_(std::move(head)),
        tail_(std::move(tail)),
        dbs_(std::move(dbs)),
        pending_(dbs_.size()),
        protocol_(protocol) {}
  void on_reply(Client&, uint64_t, size_t part, std::string_view reply) override {
    --pending_;
    if (resp::is_error_reply(reply)) {
      ++failed_;
      return;
    }
    // Bulk or verbatim text: the "db<N>:keys=..,expires=..,avg_ttl=.." line of our database.
    const std::string prefix = fmt::format("db{}:", dbs_[part]);
    size_t at = reply.find("\n" + prefix);
    if (at == std::string_view::npos) return;  // no keys there
    std::string_view line = reply.substr(at + 1);
    line = line.substr(0, line.find('\r'));
    auto field = [&](std::string_view name) -> int64_t {
      size_t p = line.find(name);
      if (p == std::string_view::npos) return 0;
      p += name.size();
      size_t e = p;
      while (e < line.size() && line[e] >= '0' && line[e] <= '9') ++e;
      int64_t v = 0;
      resp::parse_int64(line.substr(p, e - p), v);
      return v;
    };
    const int64_t expires = field("expires=");
    keys_ += field("keys=");
    expires_ += expires;
    ttl_weighted_ += field("avg_ttl=") * expires;
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override {
    std::string text = head_;
    text += "# Keyspace\r\n";
    if (keys_ > 0)
      text += fmt::format("db0:keys={},expires={},avg_ttl={}\r\n", keys_, expires_,
                          expires_ > 0 ? ttl_weighted_ / expires_ : 0);
    if (failed_ > 0) text += fmt::format("# {} backend(s) did not answer\r\n", failed_);
    text += "\r\n";
    text += tail_;
    if (text.size() >= 2 && text.ends_with("\r\n\r\n")) text.resize(text.size() - 2);
    resp::append_verbatim(out, text, protocol_);
  }

 private:
  std::string head_, tail_;
  std::vector<int> dbs_;
  size_t pending_;
  int protocol_;
  int failed_ = 0;
  int64_t keys_ = 0, expires_ = 0, ttl_weighted_ = 0;
};

// Which sections a request asks for: none = the default ones; "all", "everything", "default".
class Sections {
 public:
  explicit Sections(std::span<const std::string_view> args) : args_(args) {}
  bool wants(std::string_view section, bool in_default) const {
    if (args_.size() == 1) return in_default;
    for (size_t i = 1; i < args_.size(); ++i) {
      if (iequals(args_[i], section) || iequals(args_[i], "all") ||
          iequals(args_[i], "everything") || (in_default && iequals(args_[i], "default")))
        return true;
    }
    return false;
  }

 private:
  std::span<const std::string_view> args_;
};

void append_server(const SharedState& sh, std::string& text) {
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - sh.started)
                          .count();
  fmt::format_to(std::back_inserter(text),
                 "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\n"
                 "lockstep_version:{}\r\nos:Linux\r\narch_bits:64\r\nprocess_id:{}\r\n"
                 "tcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n"
                 "executable:lockstep\r\nconfig_file:{}\r\n\r\n",
                 kRedisVersion, LOCKSTEP_VERSION, getpid(), sh.cfg.listen.port, uptime,
                 uptime / 86400, sh.config_path);
}

void append_clients(const SharedState& sh, std::string& text) {
  fmt::format_to(std::back_inserter(text),
                 "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}"
                 "\r\n\r\n",
                 sh.stats.connected_clients.load(), sh.cfg.limits.max_clients,
                 sh.stats.blocked_clients.load());
}

void append_memory(std::string& text) {
  const uint64_t rss = rss_bytes();
  fmt::format_to(std::back_inserter(text),
                 "# Memory\r\nused_memory:{}\r\nused_memory_rss:{}\r\n\r\n", rss, rss);
}

void append_stats(const SharedState& sh, std::string& text) {
  const Stats& st = sh.stats;
  fmt::format_to(std::back_inserter(text),
                 "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n"
                 "total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n"
                 "rejected_connections:{}\r\nauth_failures:{}\r\nacl_access_denied:{}\r\n"
                 "protocol_errors:{}\r\n\r\n",
                 st.connections_received.load(), st.commands_processed.load(),
                 st.net_input_bytes.load(), st.net_output_bytes.load(),
                 st.rejected_connections.load(), st.auth_failures.load(), st.acl_denied.load(),
                 st.protocol_errors.load());
}

// The slots a backend owns as "0-5460,5462".
std::string slot_list(const std::vector<proxy::SlotRangeIdx>& ranges, int backend) {
  std::string slots;
  for (const auto& r : ranges) {
    if (r.backend != backend) continue;
    if (!slots.empty()) slots += ',';
    slots += r.from == r.to ? std::to_string(r.from) : fmt::format("{}-{}", r.from, r.to);
  }
  return slots;
}

void append_lockstep(const SharedState& sh, const Topology& topo, std::string& text) {
  auto out = std::back_inserter(text);
  fmt::format_to(out, "# Lockstep\r\nworkers:{}\r\nbackends:{}\r\nconfig_epoch:{}\r\n",
                 sh.workers.size(), topo.backends.size(), topo.epoch);
  const auto ranges = topo.slots.ranges();
  const std::vector<admin::BackendFigures> figures = gather_backends(sh);
  const int expected = static_cast<int>(sh.workers.size()) * sh.cfg.backend_connections;
  for (size_t b = 0; b < topo.backends.size(); ++b) {
    const BackendStats& bs = sh.backend_stats[b];
    const int up = bs.pool_up.load();
    const admin::BackendFigures& f = figures[b];
    fmt::format_to(
        out,
        "backend{}:name={},addr={},state={},connections={},requests={},"
        "failures={},reconnects={},timeouts={},inflight={},usec_per_reply={:.2f},"
        "slots={}\r\n",
        b, topo.backends[b].name, topo.backends[b].address,
        up == expected ? "up" : (up == 0 ? "down" : "degraded"), bs.connections_up.load(),
        bs.requests.load(), bs.failures.load(), bs.reconnects.load(), bs.timeouts.load(),
        f.inflight,
        f.replies ? static_cast<double>(f.latency_usec) / static_cast<double>(f.replies) : 0.0,
        slot_list(ranges, static_cast<int>(b)));
  }
  text += "\r\n";
}

// INFO keyspace: every backend's line for the database Lockstep uses there, summed.
void info_with_keyspace(Client& c, std::string head, std::string tail) {
  const int n = c.worker().backend_count();
  std::vector<int> dbs;
  for (const auto& b : c.worker().topology().backends) dbs.push_back(b.cfg.db);
  uint64_t seq;
  c.start_job(
      std::make_unique<KeyspaceJob>(std::move(head), std::move(tail), std::move(dbs), c.protocol()),
      seq);
  static constexpr std::string_view kInfoKeyspace = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";
  for (int b = 0; b < n; ++b) c.send_part(b, seq, static_cast<size_t>(b), kInfoKeyspace);
}

void info(Client& c, const Request& r) {
  SharedState& sh = c.shared();
  const Sections want(r.args);
  std::string text;
  if (want.wants("server", true)) append_server(sh, text);
  if (want.wants("clients", true)) append_clients(sh, text);
  if (want.wants("memory", true)) append_memory(text);
  // ioredis waits for loading:0 before it considers the connection ready.
  if (want.wants("persistence", true)) text += "# Persistence\r\nloading:0\r\n\r\n";
  if (want.wants("stats", true)) append_stats(sh, text);
  if (want.wants("replication", true))
    text += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  if (want.wants("commandstats", false)) append_commandstats(sh, text);
  if (want.wants("latencystats", false)) append_latencystats(sh, text);
  if (want.wants("errorstats", true)) append_errorstats(sh, text);
  std::string head;
  const bool keyspace = want.wants("keyspace", true);
  if (keyspace) head.swap(text);  // the keyspace section is summed from the backends
  if (want.wants("lockstep", true)) append_lockstep(sh, c.worker().topology(), text);
  if (want.wants("locks", true)) append_lockstats(sh, text);
  if (want.wants("transactions", true)) append_txnstats(text);
  if (want.wants("cluster", true)) append_clusterstats(text);
  if (keyspace) return info_with_keyspace(c, std::move(head), std::move(text));
  if (text.size() >= 2) text.resize(text.size() - 2);  // no blank line after the last section
  std::string out;
  resp::append_verbatim(out, text, c.protocol());
  c.reply(out);
}

}  // namespace

void register_info_commands(HandlerTable& t) {
  t.add("info", info);
}

}  // namespace lockstep::server
