// The replicated configuration's driver: PaxosCore + LogStorage + ConfigStateMachine on a
// thread and libuv loop of their own (an fsync never stalls client traffic), the peer
// transport, and the LOCKSTEP admin commands.
//
// Driver contract (paxos_core.h), followed exactly for every Ready: persist the snapshot, hard
// state and entries (fdatasync) -> send the messages -> apply the chosen entries in order ->
// answer the proposals they acknowledge -> advance(). Ticks come from a uv timer.
//
// Without cluster.id the same code runs as a cluster of one whose log is in memory: proposals
// are chosen as soon as they are proposed (no peers, no disk), so LOCKSTEP CONFIG SET and
// friends behave the same on a lone replica, and nothing survives a restart (as before: the
// YAML is the configuration).
//
// Bootstrap: a brand-new data_dir starts from cluster.peers (all voters). The YAML's
// backends, slot map and replicated settings enter the state through the log: the first leader
// of a cluster whose state is not bootstrapped yet proposes them, then a marker setting
// (cluster.bootstrapped); admin changes are refused until that marker is applied, so a seed
// never overwrites an admin change. After bootstrap the replicated state wins over the YAML.
//
// Live apply: an applied change of backends or slots builds a new immutable Topology and hands
// it to every worker (post_task); a change of a replicated setting swaps SharedState's live
// Config snapshot (and the lock engine's settings). Backends are matched by name against the
// data plane's backends (those configured at start): a backend added by LOCKSTEP BACKEND ADD
// is replicated at once but routed to only after the replicas restart (see README).
//
// Proposals made on a follower are forwarded to the leader over the peer transport; the reply
// is sent when this replica applies the chosen entry (or -TRYAGAIN after
// cluster.proposal_timeout_ms, or when the leader reports it dropped the proposal).
//
// Incarnations (cluster mode): each process start bumps its replica's incarnation through the
// log (after the bootstrap seed, retried until applied) and then tags the transactions it
// coordinates with it; the replicated values go to the data plane as an atomic snapshot
// (SharedState::incarnations), from which the resolver recognises a dead coordinator.
//
// Reads: LOCKSTEP CONFIG GET answers from this replica's applied state (may lag the leader);
// with LINEARIZABLE it first gets a read index from the leader (PaxosCore::read_index: a
// heartbeat round confirms the leadership with a majority), over the transport when this
// replica is a follower, and answers once it has applied up to that index, so it reflects
// every change acknowledged anywhere before the read began.
#pragma once

#include <array>
#include <atomic>

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lockstep/config/config.h"
#include "lockstep/consensus/config_state_machine.h"
#include "lockstep/consensus/disk.h"
#include "lockstep/consensus/log_storage.h"
#include "lockstep/consensus/paxos_core.h"
#include "server/consensus/peer_transport.h"

namespace lockstep::server {

class Worker;
struct SharedState;
struct Topology;

// Where an admin command's reply goes: client `client` of `worker`, reply slot `seq`.
struct AdminReplyTo {
  Worker* worker = nullptr;
  uint64_t client = 0;
  uint64_t seq = 0;
};

// What /metrics and INFO show of consensus; written by the cluster thread, read anywhere.
struct ConsensusStats {
  std::atomic<bool> running{false};
  std::atomic<uint64_t> id{0}, leader{0}, epoch{0}, chosen{0}, applied{0}, members{0};
  std::atomic<bool> is_leader{false};
  std::atomic<uint64_t> commits{0}, commit_usec{0}, peer_dropped{0};
  std::array<std::atomic<uint64_t>, 32> commit_latency{};  // log2 µs buckets
};
ConsensusStats& consensus_stats();

// The settings the replicated state carries (everything else stays per replica, in YAML).
bool is_replicated_setting(std::string_view path);

class ClusterService {
 public:
  ClusterService(SharedState& shared, const config::Config& cfg);
  ~ClusterService();
  ClusterService(const ClusterService&) = delete;
  ClusterService& operator=(const ClusterService&) = delete;

  // Opens (or creates) the data directory and recovers what it holds; before start().
  std::string open();
  // The data plane's topology from the replicated state recovered by open(), built over
  // `yaml`'s backends; `yaml` itself when the state is not bootstrapped.
  std::shared_ptr<const Topology> initial_topology(std::shared_ptr<const Topology> yaml);
  void start();
  // Answers what is pending with an error and stops the thread.
  void stop();
  // From any thread: run one LOCKSTEP command (args without "LOCKSTEP"); the reply is posted
  // to `to`'s worker.
  void submit(AdminReplyTo to, std::vector<std::string> args);
  // A client that may be waiting in CONFIG WATCH closed: its wait is dropped (any thread).
  void client_closed(Worker* worker, uint64_t client_id);

 private:
  struct Pending {
    AdminReplyTo to;
    uint64_t deadline_ms = 0;
    std::string payload;  // forwarding payload, kept to send it once a leader is known
    bool sent = false;
    uint64_t sent_to = 0;       // the leader it was forwarded to
    uint64_t resend_at_ms = 0;  // forwarded again then if still not applied (lost on the way)
    bool seed = false;
  };
  struct Watcher {
    AdminReplyTo to;
    uint64_t epoch = 0;
  };
  // A LOCKSTEP CONFIG GET ... LINEARIZABLE: a read index from the leader (the core's
  // read_index, asked locally or over the transport), then answered once this replica has
  // applied up to it.
  struct PendingRead {
    AdminReplyTo to;
    std::string path;
    uint64_t deadline_ms = 0;
    bool sent = false;          // a read-index round is under way (here or on the leader)
    uint64_t sent_to = 0;       // the leader asked, 0 when asked locally
    uint64_t resend_at_ms = 0;  // asked again then if no answer (lost on the way)
    bool have_index = false;
    uint64_t index = 0;
  };

  void run();
  static void on_tick(uv_timer_t* t);
  static void on_async(uv_async_t* a);
  void drain_inbox();
  void drive();
  void apply(const consensus::Entry& e);
  void handle(AdminReplyTo to, const std::vector<std::string>& args);
  uint64_t propose(AdminReplyTo to, std::string payload, bool seed = false);  // -> its seq
  void try_send(uint64_t seq, Pending& p);
  void propose_local(consensus::ProposalId id, const std::string& payload);
  void on_peer(uint64_t from, std::string_view payload);
  void finish(uint64_t seq, const std::string& reply);
  void reply(const AdminReplyTo& to, std::string reply);
  void maybe_seed();
  // Once per process start (cluster mode): bump this replica's incarnation through the log,
  // again after a proposal timed out, until one is applied.
  void maybe_bump();
  void publish();
  // Fills the credentials of a backend added at runtime from its replicated reference.
  void backend_credentials(const std::string& ref, const std::string& name,
                           config::BackendConfig& out) const;
  void publish_incarnations();
  void check_watchers();
  void assign_slots(AdminReplyTo to, uint32_t from, uint32_t to_slot, const std::string& backend,
                    bool force);
  std::string cluster_info() const;
  // The reply to CONFIG GET <path> from the local state (a bulk string or an error).
  std::string config_value(const std::string& path) const;
  void start_read(uint64_t seq, PendingRead& r);
  void on_read_state(const consensus::ReadState& rs);
  void answer_reads();
  std::map<uint64_t, std::string> member_addresses() const;
  uint64_t now_ms() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }

  SharedState& shared_;
  config::Config cfg_;
  uint64_t self_;
  std::unique_ptr<consensus::Disk> disk_;
  std::unique_ptr<consensus::LogStorage> storage_;
  std::unique_ptr<consensus::PaxosCore> core_;
  consensus::ConfigStateMachine sm_;
  std::unique_ptr<PeerTransport> transport_;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  uv_async_t async_{};
  std::thread thread_;
  bool started_ = false;

  std::mutex mu_;  // guards inbox_, closed_ and stopping_
  std::vector<std::pair<AdminReplyTo, std::vector<std::string>>> inbox_;
  std::vector<std::pair<Worker*, uint64_t>> closed_;  // clients gone (client_closed)
  bool stopping_ = false;

  // Answers to proposals applied in this drive(), posted after the new topology so that a
  // client's next request (on its own worker) already routes by it.
  std::vector<std::pair<uint64_t, std::string>> acks_;
  std::map<uint64_t, Pending> pending_;  // by ProposalId::seq (origin = self_)
  uint64_t next_seq_ = 1;
  std::vector<Watcher> watchers_;
  std::map<uint64_t, PendingRead> reads_;  // by seq (from next_seq_)
  // The core's read ids in flight on this replica (as leader): who asked, and their seq.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> read_origins_;
  uint64_t next_read_id_ = 1;
  std::deque<std::pair<uint64_t, std::string>> history_;  // (epoch, change), most recent last
  bool seeding_ = false;
  std::string published_topology_;  // what the data plane routes by, to see changes
  std::string published_settings_;
  std::vector<std::thread> checkers_;  // SLOTS ASSIGN emptiness scans
  uint64_t applied_commands_ = 0;
  std::vector<uint64_t> commit_latencies_us_;  // of this replica's own proposals
  std::map<uint64_t, uint64_t> proposed_at_us_;
  // This process' incarnation bumps (proposal seqs; more than one when one timed out). Only
  // entries proposed by this process count: seqs restart at 1 with every process, but the
  // log replayed by open() is applied before anything is proposed.
  std::vector<uint64_t> bump_seqs_;
  uint64_t incarnation_ = 0;  // adopted after our own bump applied; 0 until then
  bool bump_waiting_logged_ = false;
  std::string published_incarnations_;
};

}  // namespace lockstep::server
