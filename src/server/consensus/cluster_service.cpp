// The replicated configuration's driver; cluster_service.h explains the design.
#include "server/consensus/cluster_service.h"

#include "server/net/blocking_redis.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lockstep/consensus/codec.h"
#include "lockstep/proxy/slot_map.h"
#include "lockstep/resp/resp.h"
#include "server/lock/lock_service.h"
#include "server/net/loop_util.h"
#include "server/net/worker.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {

using consensus::ConfigCommand;
using consensus::Entry;
using consensus::EntryType;
using consensus::MembershipChange;
using consensus::ProposalId;
using consensus::ProposeResult;

namespace {

// Every replica must run the same cluster id; the data_dir remembers it.
constexpr uint64_t kClusterId = 0x4c6f636b73746570ULL;  // "Lockstep"
constexpr char kBootstrapMarker[] = "cluster.bootstrapped";
constexpr size_t kHistory = 1024;
constexpr uint64_t kCompactEvery = 512;

// The settings whose readers use the live snapshot (SharedState::settings()).
constexpr std::string_view kReplicated[] = {
    "timeouts.request_ms",
    "locks.drift_factor",
    "locks.retry_count",
    "locks.retry_delay_ms",
    "locks.backend_timeout_ms",
    "locks.lock_delay_ms",
    "locks.max_ttl_ms",
    "locks.quarantine_ms",
    "locks.backends",
    "transactions.lease_ms",
    "transactions.conflict_timeout_ms",
    "transactions.resolver_interval_ms",
    "transactions.isolation",
    "transactions.max_queued",
    "transactions.max_queued_bytes",
};

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return v;
}

std::string ok() {
  return "+OK\r\n";
}
std::string err(std::string_view text) {
  std::string out;
  resp::append_error(out, text);
  return out;
}
std::string bulk(std::string_view text) {
  std::string out;
  resp::append_bulk(out, text);
  return out;
}

std::string describe(const ConfigCommand& c) {
  using K = ConfigCommand::Kind;
  switch (c.kind) {
    case K::kAddBackend:
      return fmt::format("BACKEND ADD {} {}", c.name, c.address);
    case K::kRemoveBackend:
      return fmt::format("BACKEND REMOVE {}", c.name);
    case K::kSetBackendState:
      return fmt::format("BACKEND STATE {} {}", c.name, consensus::backend_state_name(c.state));
    case K::kAssignSlots:
      return fmt::format("SLOTS ASSIGN {}-{} {}", c.from, c.to, c.name);
    case K::kSetSetting:
      return fmt::format("CONFIG SET {} {}", c.path, c.value);
    case K::kBumpIncarnation:
      return fmt::format("INCARNATION {}", c.replica);
  }
  return "?";
}

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// True when `address`'s database holds a key in slots [from, to]. A full SCAN of the backend:
// O(keys on it), fine for a configuration change on test-sized data, slow on a big dataset.
std::string scan_for_keys(const BackendInfo& b, uint32_t from, uint32_t to, bool& found) {
  found = false;
  BlockingRedis conn(b.cfg, 2000);
  if (!conn.ok()) return conn.error();
  std::string cursor = "0";
  do {
    auto r = conn.command({"SCAN", cursor, "COUNT", "1000"});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
      return "SCAN failed on " + b.address;
    cursor.assign(r->element[0]->str, r->element[0]->len);
    const redisReply* keys = r->element[1];
    for (size_t i = 0; i < keys->elements; ++i) {
      std::string_view key(keys->element[i]->str, keys->element[i]->len);
      if (proxy::is_reserved_key(key)) continue;  // Lockstep's own bookkeeping
      uint16_t slot = proxy::key_slot(key);
      if (slot >= from && slot <= to) {
        found = true;
        return {};
      }
    }
  } while (cursor != "0");
  return {};
}

}  // namespace

void ClusterService::backend_credentials(const std::string& ref, const std::string& name,
                                         config::BackendConfig& out) const {
  // Secrets never enter the log: the replicated backend carries a reference that each replica
  // resolves locally, first against its YAML's backends (a backend of that name with
  // credentials), then its environment, LOCKSTEP_CREDENTIALS_<REF> (upper case, other
  // characters as '_') = "password" or "username:password" (systemd EnvironmentFile, docker
  // secrets as env).
  for (const auto& b : cfg_.backends)
    if (b.name == ref && !b.password.empty()) {
      out.username = b.username;
      out.password = b.password;
      return;
    }
  std::string var = "LOCKSTEP_CREDENTIALS_";
  for (unsigned char ch : ref) var += std::isalnum(ch) ? static_cast<char>(std::toupper(ch)) : '_';
  if (const char* v = std::getenv(var.c_str()); v != nullptr && *v != '\0') {
    const std::string value = v;
    const size_t colon = value.find(':');
    out.username = colon == std::string::npos ? "" : value.substr(0, colon);
    out.password = colon == std::string::npos ? value : value.substr(colon + 1);
    return;
  }
  if (ref != name)
    spdlog::error(
        "cluster: backend '{}': no credentials '{}' on this replica (no YAML backend of "
        "that name with a password, no {} in the environment); connecting without AUTH",
        name, ref, var);
}

bool is_replicated_setting(std::string_view path) {
  return std::find(std::begin(kReplicated), std::end(kReplicated), path) != std::end(kReplicated);
}

ClusterService::ClusterService(SharedState& shared, const config::Config& cfg)
    : shared_(shared), cfg_(cfg), self_(cfg.cluster.enabled() ? cfg.cluster.id : 1) {
  sm_.set_validator([this, base = cfg](std::string_view path,
                                       std::string_view value) -> std::string {
    if (path == kBootstrapMarker) return {};
    if (!is_replicated_setting(path))
      return fmt::format("ERR '{}' is not a replicated setting", path);
    config::Config c = base;
    std::string e = config::set_scalar(c, std::string(path), std::string(value));
    if (!e.empty()) return "ERR " + e;
    // Lock backends must be replicated backends (checked here, in the log's order, so every
    // replica decides alike), and lock settings must stay usable together.
    if (path == consensus::kLockBackendsPath)
      for (const auto& name : c.locks.backends)
        if (!sm_.backends().count(name))
          return fmt::format("ERR locks.backends: unknown backend '{}' (LOCKSTEP BACKEND LIST)",
                             name);
    if (path.starts_with("locks.")) {
      for (std::string_view other : kReplicated)
        if (other.starts_with("locks.") && other != path)
          if (auto v = sm_.setting(other)) config::set_scalar(c, std::string(other), *v);
      const size_t n = c.locks.backends.empty() ? base.backends.size() : c.locks.backends.size();
      if (auto bad = lock::validate(lock_settings(c), static_cast<int>(n))) return "ERR " + *bad;
    }
    return {};
  });
}

ClusterService::~ClusterService() {
  stop();
}

std::string ClusterService::open() {
  const config::ClusterConfig& cc = cfg_.cluster;
  consensus::Membership initial;
  if (cc.enabled()) {
    std::error_code ec;
    std::filesystem::create_directories(cc.data_dir, ec);
    std::string probe = cc.data_dir + "/.write-test";
    {
      std::ofstream f(probe);
      if (!f || !(f << "ok") || !f.flush())
        return "cluster.data_dir " + cc.data_dir + " is not writable";
    }
    std::filesystem::remove(probe, ec);
    disk_ = std::make_unique<consensus::PosixDisk>(cc.data_dir);
    for (const auto& [id, hp] : cc.peers)
      initial.members.push_back(consensus::Member{static_cast<uint64_t>(id), hp.str(), true});
  } else {
    disk_ = std::make_unique<consensus::MemDisk>();
    initial.members.push_back(consensus::Member{1, "", true});
  }
  auto opened = consensus::LogStorage::open(*disk_, kClusterId, self_);
  if (!opened.storage) return "cluster: cannot open the log: " + opened.error;
  storage_ = std::move(opened.storage);
  consensus::RecoveredState rec = storage_->recovered();
  if (rec.torn_bytes > 0) spdlog::warn("cluster: cut a torn log tail of {} bytes", rec.torn_bytes);
  // A joining replica starts with no membership: it learns everything (membership included)
  // from the leader once the cluster has added it, and votes only after catching up.
  if (rec.created && cc.start != "join") {
    // The initial members get their ReplicaInfo here, not through the log, so that each can
    // bump its incarnation at once (a joiner receives this snapshot from the leader).
    consensus::ConfigStateMachine seeded;
    if (cc.enabled()) seeded.seed_replicas(initial);
    rec.snapshot = consensus::Snapshot{0, initial, cc.enabled() ? seeded.snapshot() : ""};
    if (auto s = storage_->save_snapshot(rec.snapshot); !s.ok())
      return "cluster: cannot write the bootstrap snapshot: " + s.error;
  }
  if (!sm_.restore(rec.snapshot.data)) return "cluster: the snapshot does not decode";
  consensus::PaxosOptions o;
  o.id = self_;
  const int tick = cc.tick_ms;
  o.heartbeat_ticks = static_cast<uint32_t>(std::max(1, cc.heartbeat_ms / tick));
  o.election_ticks = static_cast<uint32_t>(std::max(2, cc.election_timeout_ms / tick));
  o.random_seed = static_cast<uint64_t>(uv_hrtime()) ^ (static_cast<uint64_t>(getpid()) << 20);
  core_ = std::make_unique<consensus::PaxosCore>(o, rec);
  if (core_->membership().voters() == 1 && core_->is_voter()) core_->campaign();
  // What the disk says was chosen is applied before the data plane starts.
  drive();
  return {};
}

std::shared_ptr<const Topology> ClusterService::initial_topology(
    std::shared_ptr<const Topology> yaml) {
  shared_.topology = yaml;
  publish();
  return std::atomic_load(&shared_.topology);
}

void ClusterService::start() {
  uv_loop_init(&loop_);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_async_init(&loop_, &async_, on_async);
  async_.data = this;
  if (cfg_.cluster.enabled()) {
    transport_ = std::make_unique<PeerTransport>(
        &loop_, self_, cfg_.cluster.secret, static_cast<size_t>(cfg_.cluster.peer_buffer_bytes),
        [this](uint64_t from, std::string_view payload) { on_peer(from, payload); });
    std::string error;
    if (!transport_->listen(cfg_.cluster.listen.host, cfg_.cluster.listen.port, error))
      spdlog::error("cluster: {}", error);
    auto peers = member_addresses();
    if (peers.empty()) {
      // Joining (no membership yet): the replies to the leader need connections of their own,
      // so dial every configured peer until the membership arrives and replaces this list.
      for (const auto& [id, hp] : cfg_.cluster.peers)
        if (static_cast<uint64_t>(id) != self_) peers[static_cast<uint64_t>(id)] = hp.str();
    }
    transport_->set_peers(peers);
  }
  uv_timer_start(&tick_, on_tick, static_cast<uint64_t>(cfg_.cluster.tick_ms),
                 static_cast<uint64_t>(cfg_.cluster.tick_ms));
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void ClusterService::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  close_all_handles(&loop_);
  uv_loop_close(&loop_);
}

void ClusterService::stop() {
  if (!started_) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  uv_async_send(&async_);
  if (thread_.joinable()) thread_.join();
  for (auto& t : checkers_)
    if (t.joinable()) t.join();
  started_ = false;
}

void ClusterService::submit(AdminReplyTo to, std::vector<std::string> args) {
  // Under the lock: once stopping_ is set the loop may close async_ (a finished SLOTS ASSIGN
  // scan during shutdown must not signal a closed handle).
  std::lock_guard lock(mu_);
  if (stopping_) return;
  inbox_.emplace_back(to, std::move(args));
  uv_async_send(&async_);
}

void ClusterService::client_closed(Worker* worker, uint64_t client_id) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  closed_.emplace_back(worker, client_id);
  uv_async_send(&async_);
}

void ClusterService::on_async(uv_async_t* a) {
  auto* self = static_cast<ClusterService*>(a->data);
  self->drain_inbox();
}

void ClusterService::drain_inbox() {
  std::vector<std::pair<AdminReplyTo, std::vector<std::string>>> batch;
  std::vector<std::pair<Worker*, uint64_t>> closed;
  bool stopping;
  {
    std::lock_guard lock(mu_);
    batch.swap(inbox_);
    closed.swap(closed_);
    stopping = stopping_;
  }
  for (const auto& [w, client] : closed)
    std::erase_if(watchers_,
                  [&](const Watcher& x) { return x.to.worker == w && x.to.client == client; });
  if (stopping) {
    for (auto& [to, args] : batch) reply(to, err("ERR shutting down"));
    for (auto& [seq, p] : pending_)
      reply(p.to, err("TRYAGAIN shutting down; the change may still commit"));
    pending_.clear();
    for (auto& w : watchers_) reply(w.to, err("ERR shutting down"));
    watchers_.clear();
    for (auto& [seq, r] : reads_) reply(r.to, err("ERR shutting down"));
    reads_.clear();
    if (transport_) transport_->close();
    uv_timer_stop(&tick_);
    uv_stop(&loop_);
    return;
  }
  for (auto& [to, args] : batch) {
    if (to.worker == nullptr && !args.empty() && args[0] == "__task") {
      // An internal continuation (a finished emptiness scan): args = [__task, verdict...].
      uint32_t from = static_cast<uint32_t>(std::stoul(args[2]));
      uint32_t upto = static_cast<uint32_t>(std::stoul(args[3]));
      AdminReplyTo origin{reinterpret_cast<Worker*>(std::stoull(args[5])), std::stoull(args[6]),
                          std::stoull(args[7])};
      if (!args[1].empty()) {
        reply(origin, err(args[1]));
      } else {
        propose(origin,
                "C" + consensus::encode_command(ConfigCommand::assign_slots(from, upto, args[4])));
      }
      continue;
    }
    handle(to, args);
  }
  drive();
}

void ClusterService::on_tick(uv_timer_t* t) {
  auto* self = static_cast<ClusterService*>(t->data);
  self->core_->tick();
  if (self->transport_) self->transport_->tick(self->now_ms());
  const uint64_t now = self->now_ms();
  for (auto it = self->pending_.begin(); it != self->pending_.end();) {
    Pending& p = it->second;
    if (now >= p.deadline_ms) {
      if (p.seed) self->seeding_ = false;
      self->reply(p.to, err("TRYAGAIN the change was not chosen in time (no leader or no quorum); "
                            "it may still commit"));
      it = self->pending_.erase(it);
      continue;
    }
    // A forward can be lost (the leader died, the connection dropped): send it again to the
    // current leader. Same ProposalId: if both copies are chosen, the first one answers and
    // the second applies as a no-op or a refused duplicate (every command is idempotent or
    // refused when repeated).
    if (p.sent && p.sent_to != 0 && (self->core_->leader() != p.sent_to || now >= p.resend_at_ms))
      p.sent = false;
    if (!p.sent) self->try_send(it->first, p);
    ++it;
  }
  for (auto it = self->reads_.begin(); it != self->reads_.end();) {
    PendingRead& r = it->second;
    if (now >= r.deadline_ms) {
      self->reply(r.to, err("TRYAGAIN no leader confirmed the read in time; retry"));
      it = self->reads_.erase(it);
      continue;
    }
    if (!r.have_index && r.sent && r.sent_to != 0 &&
        (self->core_->leader() != r.sent_to || now >= r.resend_at_ms))
      r.sent = false;
    if (!r.have_index && !r.sent) self->start_read(it->first, r);
    ++it;
  }
  self->maybe_seed();
  self->maybe_bump();
  self->drive();
}

// ---- the Ready loop -----------------------------------------------------------------------

void ClusterService::drive() {
  bool applied_any = false;
  while (core_->has_ready()) {
    consensus::Ready r = core_->ready();
    if (r.snapshot) {
      if (auto s = storage_->save_snapshot(*r.snapshot); !s.ok()) {
        spdlog::critical("cluster: cannot save a snapshot: {}", s.error);
        std::abort();  // nothing of this Ready left the replica; a restart recovers
      }
      if (!sm_.restore(r.snapshot->data)) {
        spdlog::critical("cluster: the leader's snapshot does not decode");
        std::abort();
      }
      applied_any = true;
    }
    if (r.hard_state || !r.entries.empty()) {
      if (auto s = storage_->save(r.hard_state, r.entries); !s.ok()) {
        spdlog::critical("cluster: cannot persist the log: {}", s.error);
        std::abort();
      }
    }
    if (transport_)
      for (const auto& m : r.messages) transport_->send(m.to, "P" + consensus::encode_message(m));
    for (const auto& e : r.committed) {
      apply(e);
      applied_any = true;
    }
    for (const auto& rs : r.reads) on_read_state(rs);
    for (const auto& d : r.dropped) {
      if (d.id.origin == self_) {
        if (auto it = pending_.find(d.id.seq); it != pending_.end()) it->second.sent = false;
      } else if (transport_) {
        std::string m = "E";
        put_u64(m, d.id.seq);
        transport_->send(d.id.origin, m + "TRYAGAIN the leader changed; retry");
      }
    }
    core_->advance();
    if (core_->applied_index() >= core_->snapshot_index() + kCompactEvery) {
      consensus::Snapshot s = core_->compact(core_->applied_index(), sm_.snapshot());
      if (auto st = storage_->save_snapshot(s); !st.ok())
        spdlog::error("cluster: compaction failed: {}", st.error);
    }
  }
  if (applied_any) {
    if (started_) publish();
    check_watchers();
  }
  std::vector<std::pair<uint64_t, std::string>> acks;
  acks.swap(acks_);
  for (const auto& [seq, r] : acks) finish(seq, r);
  answer_reads();
  ConsensusStats& cs = consensus_stats();
  cs.running.store(true, std::memory_order_relaxed);
  cs.id.store(self_, std::memory_order_relaxed);
  cs.leader.store(core_->leader(), std::memory_order_relaxed);
  cs.is_leader.store(core_->role() == consensus::Role::kLeader, std::memory_order_relaxed);
  cs.epoch.store(sm_.epoch(), std::memory_order_relaxed);
  cs.chosen.store(core_->commit_index(), std::memory_order_relaxed);
  cs.applied.store(core_->applied_index(), std::memory_order_relaxed);
  cs.members.store(core_->membership().members.size(), std::memory_order_relaxed);
  if (transport_) cs.peer_dropped.store(transport_->dropped(), std::memory_order_relaxed);
}

ConsensusStats& consensus_stats() {
  static ConsensusStats stats;
  return stats;
}

void ClusterService::apply(const Entry& e) {
  const uint64_t before = sm_.epoch();
  consensus::ApplyResult res = sm_.apply_entry(e);
  std::string change;
  if (e.type == EntryType::kCommand) {
    auto cmd = consensus::decode_command(e.data);
    change = cmd ? describe(*cmd) : "?";
    if (cmd && cmd->kind == ConfigCommand::Kind::kSetSetting && cmd->path == kBootstrapMarker &&
        res.ok())
      seeding_ = false;
    // Our own bump: the value right after it is this process' incarnation. A second copy (a
    // forward resent, or a retry after a timeout, both chosen) moves it on; adopting that too
    // keeps resolvers from seeing this live process as its own dead predecessor for long.
    if (cmd && cmd->kind == ConfigCommand::Kind::kBumpIncarnation && cmd->replica == self_ &&
        e.id.origin == self_ && res.ok() &&
        std::find(bump_seqs_.begin(), bump_seqs_.end(), e.id.seq) != bump_seqs_.end()) {
      incarnation_ = sm_.replicas().at(self_).incarnation;
      TxnService::set_coordinator_tag(self_, incarnation_);
      spdlog::info(
          "cluster: replica {} runs as incarnation {}; transactions it coordinates from now on "
          "can be resolved as soon as a later incarnation exists",
          self_, incarnation_);
    }
  } else if (e.type == EntryType::kMembership) {
    change = "MEMBERSHIP";
    if (auto m = consensus::decode_membership(e.data))
      for (const auto& x : m->members)
        change += fmt::format(" {}={}{}", x.id, x.address, x.voter ? "" : "(learner)");
    if (transport_) transport_->set_peers(member_addresses());
  }
  if (sm_.epoch() != before) {
    history_.emplace_back(sm_.epoch(), change);
    if (history_.size() > kHistory) history_.pop_front();
  }
  if (e.id.origin == self_ && e.type != EntryType::kNoop) {
    if (auto it = proposed_at_us_.find(e.id.seq); it != proposed_at_us_.end()) {
      const uint64_t us = uv_hrtime() / 1000 - it->second;
      commit_latencies_us_.push_back(us);
      {
        ConsensusStats& cs = consensus_stats();
        cs.commits.fetch_add(1, std::memory_order_relaxed);
        cs.commit_usec.fetch_add(us, std::memory_order_relaxed);
        int b = 0;
        while (b < 31 && (2ULL << b) <= us) ++b;
        cs.commit_latency[static_cast<size_t>(b)].fetch_add(1, std::memory_order_relaxed);
      }
      if (commit_latencies_us_.size() > 4096)
        commit_latencies_us_.erase(commit_latencies_us_.begin());
      proposed_at_us_.erase(it);
    }
    acks_.emplace_back(e.id.seq, res.ok() ? ok() : err(res.error));
  }
}

// ---- proposals ----------------------------------------------------------------------------

uint64_t ClusterService::propose(AdminReplyTo to, std::string payload, bool seed) {
  const uint64_t seq = next_seq_++;
  Pending& p = pending_[seq];
  p.to = to;
  p.payload = std::move(payload);
  p.seed = seed;
  p.deadline_ms = now_ms() + static_cast<uint64_t>(cfg_.cluster.proposal_timeout_ms);
  proposed_at_us_[seq] = uv_hrtime() / 1000;
  try_send(seq, p);
  return seq;
}

void ClusterService::try_send(uint64_t seq, Pending& p) {
  ProposalId id{self_, seq};
  if (core_->role() == consensus::Role::kLeader) {
    p.sent_to = 0;
    propose_local(id, p.payload);
    return;
  }
  const uint64_t leader = core_->leader();
  if (leader == 0 || leader == self_ || !transport_) return;  // retried on the next tick
  std::string m = "F";
  put_u64(m, self_);
  put_u64(m, seq);
  transport_->send(leader, m + p.payload);
  p.sent = true;
  p.sent_to = leader;
  p.resend_at_ms = now_ms() + static_cast<uint64_t>(cfg_.cluster.election_timeout_ms);
}

void ClusterService::propose_local(ProposalId id, const std::string& payload) {
  ProposeResult r;
  if (payload.empty()) return;
  if (payload[0] == 'C') {
    r = core_->propose(id, payload.substr(1));
  } else {
    MembershipChange c;
    size_t space = payload.find(' ');
    c.kind =
        payload[0] == 'A' ? MembershipChange::Kind::kAddLearner : MembershipChange::Kind::kRemove;
    c.id =
        std::stoull(payload.substr(1, space == std::string::npos ? std::string::npos : space - 1));
    if (space != std::string::npos) c.address = payload.substr(space + 1);
    r = core_->propose_membership(id, c);
  }
  if (r.queued()) {
    if (id.origin == self_)
      if (auto it = pending_.find(id.seq); it != pending_.end()) it->second.sent = true;
    return;
  }
  std::string text = r.status == ProposeResult::Status::kRejected
                         ? (r.error.rfind("ERR", 0) == 0 ? r.error : "ERR " + r.error)
                         : "TRYAGAIN no leader; retry";
  if (id.origin == self_) {
    if (r.status == ProposeResult::Status::kRejected) finish(id.seq, err(text));
  } else if (transport_) {
    std::string m = "E";
    put_u64(m, id.seq);
    transport_->send(id.origin, m + text);
  }
}

void ClusterService::on_peer(uint64_t from, std::string_view payload) {
  if (payload.empty()) return;
  switch (payload[0]) {
    case 'P':
      if (auto m = consensus::decode_message(payload.substr(1)); m && m->from == from)
        core_->step(*m);
      break;
    case 'F':
      if (payload.size() > 17)
        propose_local(ProposalId{get_u64(payload.substr(1, 8)), get_u64(payload.substr(9, 8))},
                      std::string(payload.substr(17)));
      break;
    case 'Q':  // a follower asks this leader for a read index
      if (payload.size() == 9) {
        const uint64_t seq = get_u64(payload.substr(1, 8));
        const uint64_t id = next_read_id_++;
        if (core_->read_index(id).queued()) {
          read_origins_[id] = {from, seq};
        } else if (transport_) {
          std::string m = "I";
          put_u64(m, seq);
          m += '0';
          put_u64(m, 0);
          transport_->send(from, m);
        }
      }
      break;
    case 'I':  // the leader's answer: seq, ok, index
      if (payload.size() == 18) {
        auto it = reads_.find(get_u64(payload.substr(1, 8)));
        if (it != reads_.end() && it->second.sent_to == from && !it->second.have_index) {
          if (payload[9] == '1') {
            it->second.have_index = true;
            it->second.index = get_u64(payload.substr(10, 8));
          } else {
            it->second.sent = false;
          }
        }
      }
      break;
    case 'E':
      if (payload.size() > 9) {
        uint64_t seq = get_u64(payload.substr(1, 8));
        std::string text(payload.substr(9));
        if (text.rfind("TRYAGAIN", 0) == 0) {
          if (auto it = pending_.find(seq); it != pending_.end()) it->second.sent = false;
        } else {
          finish(seq, err(text));
        }
      }
      break;
    default:
      break;
  }
  drive();
}

void ClusterService::finish(uint64_t seq, const std::string& r) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  reply(it->second.to, r);
  pending_.erase(it);
}

void ClusterService::reply(const AdminReplyTo& to, std::string r) {
  if (to.worker == nullptr) return;
  Worker* w = to.worker;
  w->post_task([w, id = to.client, seq = to.seq, r = std::move(r)] {
    if (Client* c = w->find_client(id)) c->deliver_external(seq, r);
  });
}

void ClusterService::maybe_seed() {
  if (seeding_ || core_->role() != consensus::Role::kLeader || sm_.setting(kBootstrapMarker) ||
      core_->applied_index() < core_->commit_index())
    return;
  seeding_ = true;
  spdlog::info("cluster: seeding the replicated configuration from the YAML file");
  std::vector<ConfigCommand> seeds;
  for (const auto& b : cfg_.backends)
    if (!sm_.backends().count(b.name))
      seeds.push_back(ConfigCommand::add_backend(b.name, b.address.str(), b.name));
  const auto n = static_cast<uint32_t>(cfg_.backends.size());
  if (cfg_.slots.empty()) {
    for (uint32_t i = 0; i < n; ++i)
      seeds.push_back(ConfigCommand::assign_slots(i * consensus::kSlotCount / n,
                                                  (i + 1) * consensus::kSlotCount / n - 1,
                                                  cfg_.backends[i].name));
  } else {
    for (const auto& r : cfg_.slots)
      seeds.push_back(ConfigCommand::assign_slots(static_cast<uint32_t>(r.from),
                                                  static_cast<uint32_t>(r.to), r.backend));
  }
  for (std::string_view path : kReplicated)
    if (auto v = config::get_scalar(cfg_, std::string(path)))
      seeds.push_back(ConfigCommand::set_setting(std::string(path), *v));
  seeds.push_back(ConfigCommand::set_setting(kBootstrapMarker, "1"));
  for (const auto& c : seeds) propose(AdminReplyTo{}, "C" + consensus::encode_command(c), true);
}

void ClusterService::maybe_bump() {
  // After the seed, so the bootstrap sequence is what it always was; with a leader, so the
  // proposal does not just time out.
  if (!cfg_.cluster.enabled() || incarnation_ != 0 || !sm_.setting(kBootstrapMarker) ||
      core_->leader() == 0)
    return;
  for (uint64_t seq : bump_seqs_)
    if (pending_.count(seq)) return;  // one in flight at a time
  if (!sm_.replicas().count(self_)) {
    // A cluster bootstrapped before incarnations were seeded has no ReplicaInfo for its
    // initial members until a membership change: transactions then rely on the lease alone.
    if (!bump_waiting_logged_)
      spdlog::info(
          "cluster: replica {} has no replicated incarnation yet (none until a membership "
          "change); its transactions are recovered by lease only",
          self_);
    bump_waiting_logged_ = true;
    return;
  }
  bump_seqs_.push_back(propose(
      AdminReplyTo{}, "C" + consensus::encode_command(ConfigCommand::bump_incarnation(self_))));
}

void ClusterService::publish_incarnations() {
  if (!cfg_.cluster.enabled()) return;
  std::string key;
  for (const auto& [id, r] : sm_.replicas()) key += fmt::format("{}={};", id, r.incarnation);
  if (key == published_incarnations_) return;
  auto next = std::make_shared<std::map<uint64_t, uint64_t>>();
  for (const auto& [id, r] : sm_.replicas()) (*next)[id] = r.incarnation;
  std::shared_ptr<const std::map<uint64_t, uint64_t>> c = next;
  std::atomic_store(&shared_.incarnations, c);
  published_incarnations_ = key;
}

// ---- live apply ---------------------------------------------------------------------------

void ClusterService::publish() {
  publish_incarnations();
  if (!sm_.setting(kBootstrapMarker)) return;  // the YAML's map until the seed is applied
  // Backends: the data plane's (its YAML's at start) plus any the replicated state added since,
  // appended so that every index keeps naming the same backend.
  auto current = std::atomic_load(&shared_.topology);
  std::vector<BackendInfo> added;
  for (const auto& [name, b] : sm_.backends()) {
    if (std::any_of(current->backends.begin(), current->backends.end(),
                    [&](const BackendInfo& x) { return x.name == name; }))
      continue;
    if (current->backends.size() + added.size() >= kMaxBackends) {
      spdlog::error("cluster: backend '{}' not added to the data plane: at most {} backends", name,
                    kMaxBackends);
      continue;
    }
    BackendInfo info;
    info.name = name;
    info.address = b.address;
    std::string error;
    if (!config::parse_host_port(b.address, info.cfg.address) ||
        !resolve_address(info.cfg.address, info.sockaddr, error)) {
      spdlog::error("cluster: backend '{}' ({}) cannot be resolved: {}", name, b.address, error);
      continue;
    }
    info.cfg.name = name;
    backend_credentials(b.credentials_ref, name, info.cfg);
    added.push_back(std::move(info));
  }
  std::string key;
  std::vector<proxy::SlotRangeIdx> ranges;
  bool complete = true;
  const size_t nbackends = current->backends.size() + added.size();
  key += std::to_string(nbackends) + "|";
  auto index_of = [&](const std::string& name) {
    for (size_t i = 0; i < current->backends.size(); ++i)
      if (current->backends[i].name == name) return static_cast<int>(i);
    for (size_t i = 0; i < added.size(); ++i)
      if (added[i].name == name) return static_cast<int>(current->backends.size() + i);
    return -1;
  };
  for (const auto& r : sm_.slot_ranges()) {
    const int idx = index_of(r.backend);
    if (idx < 0) {
      spdlog::error(
          "cluster: slots {}-{} belong to backend '{}', which this replica cannot reach "
          "(unresolvable address); the slot map stays as it was",
          r.from, r.to, r.backend);
      complete = false;
      continue;
    }
    ranges.push_back({static_cast<int>(r.from), static_cast<int>(r.to), idx});
    key += fmt::format("{}-{}:{};", r.from, r.to, idx);
  }
  if (complete && key != published_topology_) {
    std::string error;
    auto map = proxy::SlotMap::from_ranges(ranges, static_cast<int>(nbackends), error);
    if (!map) {
      spdlog::error("cluster: replicated slot map unusable: {}", error);
    } else {
      auto next = std::make_shared<Topology>();
      next->backends = current->backends;
      for (auto& a : added) next->backends.push_back(std::move(a));
      next->slots = *map;
      next->epoch = sm_.epoch();
      std::shared_ptr<const Topology> t = next;
      std::atomic_store(&shared_.topology, t);
      if (!published_topology_.empty() || started_)
        for (Worker* w : shared_.workers) w->post_task([w, t] { w->install_topology(t); });
      published_topology_ = key;
      spdlog::info("cluster: data plane now routes by the slot map of epoch {}", sm_.epoch());
    }
  }
  std::string skey;
  for (const auto& [path, value] : sm_.settings()) skey += path + "=" + value + ";";
  if (skey != published_settings_) {
    auto live = std::make_shared<config::Config>(cfg_);
    for (const auto& [path, value] : sm_.settings())
      if (is_replicated_setting(path)) config::set_scalar(*live, path, value);
    std::shared_ptr<const config::Config> c = live;
    std::atomic_store(&shared_.live_cfg, c);
    shared_.isolation.store(isolation_from(c->transactions.isolation), std::memory_order_relaxed);
    if (started_ && !shared_.workers.empty()) {
      Worker* home = shared_.workers.front();
      uint64_t lock_epoch = 0;
      if (auto e = sm_.setting(consensus::kLockBackendsEpochPath)) lock_epoch = std::stoull(*e);
      home->post_task([home, c, lock_epoch] {
        home->locks().update_settings(lock_settings(*c), c->locks.backends, lock_epoch);
      });
    }
    published_settings_ = skey;
  }
}

void ClusterService::check_watchers() {
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (sm_.epoch() <= it->epoch) {
      ++it;
      continue;
    }
    std::string change = "SNAPSHOT (the change was compacted away)";
    for (const auto& [epoch, text] : history_)
      if (epoch == it->epoch + 1) change = text;
    std::string out;
    resp::append_array_header(out, 2);
    resp::append_integer(out, static_cast<int64_t>(it->epoch + 1));
    resp::append_bulk(out, change);
    reply(it->to, out);
    it = watchers_.erase(it);
  }
}

// ---- admin commands -----------------------------------------------------------------------

std::map<uint64_t, std::string> ClusterService::member_addresses() const {
  std::map<uint64_t, std::string> out;
  for (const auto& m : core_->membership().members) out[m.id] = m.address;
  return out;
}

std::string ClusterService::cluster_info() const {
  std::string role = core_->role() == consensus::Role::kLeader      ? "leader"
                     : core_->role() == consensus::Role::kCandidate ? "candidate"
                                                                    : "follower";
  std::string text = fmt::format(
      "id:{}\r\nmode:{}\r\nrole:{}\r\nleader:{}\r\nepoch:{}\r\nchosen_index:{}\r\n"
      "applied_index:{}\r\nsnapshot_index:{}\r\nbootstrapped:{}\r\nmembers:{}\r\n"
      "config_watchers:{}\r\nlock_epoch:{}\r\n",
      self_, cfg_.cluster.enabled() ? "cluster" : "single (in-memory)", role, core_->leader(),
      sm_.epoch(), core_->commit_index(), core_->applied_index(), core_->snapshot_index(),
      sm_.setting(kBootstrapMarker) ? 1 : 0, core_->membership().members.size(), watchers_.size(),
      sm_.setting(consensus::kLockBackendsEpochPath).value_or("0"));
  std::vector<uint64_t> lat = commit_latencies_us_;
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    text += fmt::format("commit_latency_p50_us:{}\r\ncommit_latency_p99_us:{}\r\n",
                        lat[lat.size() / 2], lat[std::min(lat.size() - 1, lat.size() * 99 / 100)]);
  }
  if (transport_)
    text += fmt::format("peer_messages_dropped:{}\r\npeer_connections_rejected:{}\r\n",
                        transport_->dropped(), transport_->rejected());
  for (const auto& m : core_->membership().members) {
    std::string state = m.id == self_                               ? "self"
                        : transport_ && transport_->connected(m.id) ? "connected"
                                                                    : "disconnected";
    uint64_t incarnation = 0;
    if (auto it = sm_.replicas().find(m.id); it != sm_.replicas().end())
      incarnation = it->second.incarnation;
    text += fmt::format("member_{}:address={},voter={},state={},incarnation={}\r\n", m.id,
                        m.address, m.voter ? 1 : 0, state, incarnation);
  }
  return text;
}

std::string ClusterService::config_value(const std::string& path) const {
  if (is_replicated_setting(path)) {
    auto v = sm_.setting(path);
    return bulk(v ? *v : config::get_scalar(cfg_, path).value_or(""));
  }
  if (path == "epoch") return bulk(std::to_string(sm_.epoch()));
  if (config::get_scalar(cfg_, path))
    return err(
        fmt::format("ERR '{}' is not replicated: it is this replica's own setting "
                    "(lockstep --check-config shows it)",
                    path));
  return err(fmt::format("ERR unknown configuration path '{}'", path));
}

// ---- linearizable reads -------------------------------------------------------------------

void ClusterService::start_read(uint64_t seq, PendingRead& r) {
  if (core_->role() == consensus::Role::kLeader) {
    const uint64_t id = next_read_id_++;
    ProposeResult res = core_->read_index(id);
    if (res.queued()) {
      read_origins_[id] = {self_, seq};
      r.sent = true;
      r.sent_to = 0;
    }
    return;  // not queued (the leader is still recovering): retried on the next tick
  }
  const uint64_t leader = core_->leader();
  if (leader == 0 || leader == self_ || !transport_) return;  // retried on the next tick
  std::string m = "Q";
  put_u64(m, seq);
  transport_->send(leader, m);
  r.sent = true;
  r.sent_to = leader;
  r.resend_at_ms = now_ms() + static_cast<uint64_t>(cfg_.cluster.election_timeout_ms);
}

void ClusterService::on_read_state(const consensus::ReadState& rs) {
  auto o = read_origins_.find(rs.read_id);
  if (o == read_origins_.end()) return;
  auto [origin, seq] = o->second;
  read_origins_.erase(o);
  if (origin == self_) {
    auto it = reads_.find(seq);
    if (it == reads_.end()) return;
    if (rs.ok) {
      it->second.have_index = true;
      it->second.index = rs.index;
    } else {
      it->second.sent = false;  // leadership lost before a quorum confirmed it: ask again
    }
    return;
  }
  if (!transport_) return;
  std::string m = "I";
  put_u64(m, seq);
  m += rs.ok ? '1' : '0';
  put_u64(m, rs.index);
  transport_->send(origin, m);
}

void ClusterService::answer_reads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.have_index && core_->applied_index() >= it->second.index) {
      reply(it->second.to, config_value(it->second.path));
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterService::handle(AdminReplyTo to, const std::vector<std::string>& args) {
  auto word = [&](size_t i) { return i < args.size() ? upper(args[i]) : std::string(); };
  const std::string a = word(0), b = word(1);
  auto syntax = [&] {
    reply(to, err("ERR syntax error; try LOCKSTEP CLUSTER INFO | CONFIG GET <path> "
                  "[LINEARIZABLE] | CONFIG SET|WATCH | BACKEND "
                  "ADD|REMOVE|LIST | SLOTS ASSIGN | MEMBER ADD|REMOVE"));
  };
  const bool bootstrapped = sm_.setting(kBootstrapMarker).has_value();
  auto need_bootstrap = [&] {
    if (bootstrapped) return true;
    reply(to, err("TRYAGAIN the cluster is still bootstrapping (no leader has seeded the "
                  "configuration yet)"));
    return false;
  };
  if (a == "CLUSTER" && b == "INFO" && args.size() == 2) {
    reply(to, bulk(cluster_info()));
  } else if (a == "CONFIG" && b == "GET" && args.size() == 3) {
    reply(to, config_value(args[2]));
  } else if (a == "CONFIG" && b == "GET" && args.size() == 4 && word(3) == "LINEARIZABLE") {
    std::string now = config_value(args[2]);
    if (!now.empty() && now[0] == '-') {  // an unknown path stays unknown
      reply(to, now);
      return;
    }
    const uint64_t seq = next_seq_++;
    PendingRead& r = reads_[seq];
    r.to = to;
    r.path = args[2];
    r.deadline_ms = now_ms() + static_cast<uint64_t>(cfg_.cluster.proposal_timeout_ms);
    start_read(seq, r);
  } else if (a == "CONFIG" && b == "SET" && args.size() == 4) {
    const std::string& path = args[2];
    if (!is_replicated_setting(path)) {
      reply(to, err(fmt::format("ERR '{}' is not a replicated setting; replicated: timeouts."
                                "request_ms, locks.drift_factor, locks.retry_count, locks."
                                "retry_delay_ms, locks.backend_timeout_ms, locks.lock_delay_ms",
                                path)));
      return;
    }
    config::Config scratch = cfg_;
    std::string normalized;
    if (std::string e = config::set_scalar(scratch, path, args[3], &normalized); !e.empty()) {
      reply(to, err("ERR " + e));
      return;
    }
    if (!need_bootstrap()) return;
    propose(to, "C" + consensus::encode_command(ConfigCommand::set_setting(path, normalized)));
  } else if (a == "CONFIG" && b == "WATCH" && args.size() == 3) {
    char* end = nullptr;
    uint64_t epoch = std::strtoull(args[2].c_str(), &end, 10);
    if (args[2].empty() || *end != '\0') {
      reply(to, err("ERR epoch must be a non-negative integer"));
      return;
    }
    watchers_.push_back(Watcher{to, epoch});
    check_watchers();
  } else if (a == "BACKEND" && b == "LIST" && args.size() == 2) {
    std::string out;
    resp::append_array_header(out, static_cast<int64_t>(sm_.backends().size()));
    auto ranges = sm_.slot_ranges();
    for (const auto& [name, be] : sm_.backends()) {
      std::string slots;
      for (const auto& r : ranges)
        if (r.backend == name)
          slots += fmt::format("{}{}-{}", slots.empty() ? "" : ",", r.from, r.to);
      resp::append_bulk(out, fmt::format("{} {} {} slots={} credentials={}", name, be.address,
                                         consensus::backend_state_name(be.state),
                                         slots.empty() ? "-" : slots, be.credentials_ref));
    }
    reply(to, out);
  } else if (a == "BACKEND" && b == "ADD" &&
             (args.size() == 4 || (args.size() == 6 && word(4) == "CREDENTIALS"))) {
    config::HostPort hp;
    if (!config::parse_host_port(args[3], hp)) {
      reply(to, err("ERR expected host:port, got '" + args[3] + "'"));
      return;
    }
    // Only a reference is replicated; each replica resolves it itself (backend_credentials).
    const std::string ref = args.size() == 6 ? args[5] : args[2];
    if (ref.empty() || ref.size() > 64 ||
        !std::all_of(ref.begin(), ref.end(), [](unsigned char ch) {
          return std::isalnum(ch) || ch == '_' || ch == '-' || ch == '.' || ch == ':';
        })) {
      reply(to, err("ERR a credentials reference is 1-64 characters of [A-Za-z0-9_.:-]"));
      return;
    }
    if (!need_bootstrap()) return;
    propose(to,
            "C" + consensus::encode_command(ConfigCommand::add_backend(args[2], hp.str(), ref)));
  } else if (a == "BACKEND" && b == "REMOVE" && args.size() == 3) {
    if (!need_bootstrap()) return;
    propose(to, "C" + consensus::encode_command(ConfigCommand::remove_backend(args[2])));
  } else if (a == "SLOTS" && b == "ASSIGN" && (args.size() == 4 || args.size() == 5)) {
    bool force = args.size() == 5 && word(4) == "FORCE";
    if (args.size() == 5 && !force) return syntax();
    const std::string& range = args[2];
    size_t dash = range.find('-');
    char* e1 = nullptr;
    char* e2 = nullptr;
    std::string f = range.substr(0, dash);
    std::string t = dash == std::string::npos ? f : range.substr(dash + 1);
    unsigned long from = std::strtoul(f.c_str(), &e1, 10), upto = std::strtoul(t.c_str(), &e2, 10);
    if (f.empty() || t.empty() || *e1 || *e2 || from > upto || upto >= consensus::kSlotCount) {
      reply(to, err("ERR expected a slot range from-to within 0-16383"));
      return;
    }
    if (!need_bootstrap()) return;
    assign_slots(to, static_cast<uint32_t>(from), static_cast<uint32_t>(upto), args[3], force);
  } else if (a == "MEMBER" && b == "ADD" && args.size() == 4) {
    config::HostPort hp;
    char* end = nullptr;
    uint64_t id = std::strtoull(args[2].c_str(), &end, 10);
    if (args[2].empty() || *end || id == 0 || !config::parse_host_port(args[3], hp)) {
      reply(to, err("ERR expected MEMBER ADD <id> <host:port>"));
      return;
    }
    propose(to, fmt::format("A{} {}", id, hp.str()));
  } else if (a == "MEMBER" && b == "REMOVE" && args.size() == 3) {
    char* end = nullptr;
    uint64_t id = std::strtoull(args[2].c_str(), &end, 10);
    if (args[2].empty() || *end || id == 0) {
      reply(to, err("ERR expected MEMBER REMOVE <id>"));
      return;
    }
    propose(to, fmt::format("R{}", id));
  } else {
    syntax();
  }
}

void ClusterService::assign_slots(AdminReplyTo to, uint32_t from, uint32_t upto,
                                  const std::string& backend, bool force) {
  if (!sm_.backends().count(backend)) {
    reply(to, err("ERR unknown backend '" + backend + "'"));
    return;
  }
  auto topo = std::atomic_load(&shared_.topology);
  // A backend the data plane could not add (unresolvable address) cannot be routed to: refused
  // rather than left pending.
  if (std::none_of(topo->backends.begin(), topo->backends.end(),
                   [&](const BackendInfo& b) { return b.name == backend; })) {
    reply(to, err("ERR backend '" + backend +
                  "' is not in this replica's data plane (its address could not be resolved)"));
    return;
  }
  // Owners other than the target that hold slots of the range must have no keys there.
  std::vector<BackendInfo> sources;
  for (const auto& r : sm_.slot_ranges()) {
    if (r.to < from || r.from > upto || r.backend == backend) continue;
    for (const auto& b : topo->backends)
      if (b.name == r.backend &&
          std::none_of(sources.begin(), sources.end(),
                       [&](const BackendInfo& s) { return s.name == b.name; }))
        sources.push_back(b);
  }
  if (force || sources.empty()) {
    propose(to, "C" + consensus::encode_command(ConfigCommand::assign_slots(from, upto, backend)));
    return;
  }
  // The scan runs on a thread of its own so that consensus keeps ticking meanwhile.
  checkers_.emplace_back([this, to, from, upto, backend, sources] {
    std::string verdict;
    for (const auto& s : sources) {
      bool found = false;
      std::string e = scan_for_keys(s, from, upto, found);
      if (!e.empty()) {
        verdict = "ERR cannot check that slots " + std::to_string(from) + "-" +
                  std::to_string(upto) + " are empty: " + e + " (add FORCE to move them anyway)";
        break;
      }
      if (found) {
        verdict = fmt::format(
            "ERR slots {}-{} hold keys on backend '{}'; key migration is not implemented: empty "
            "them first, or add FORCE to move the slots without their keys",
            from, upto, s.name);
        break;
      }
    }
    submit(AdminReplyTo{}, {"__task", verdict, std::to_string(from), std::to_string(upto), backend,
                            std::to_string(reinterpret_cast<uintptr_t>(to.worker)),
                            std::to_string(to.client), std::to_string(to.seq)});
  });
}

}  // namespace lockstep::server
