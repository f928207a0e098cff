// The data plane's I/O layer: one Worker per thread, each with its own libuv loop, its clients
// and its own pipelined connections to every backend (nothing on the request path is shared
// between threads except immutable snapshots and relaxed atomic counters).
//
//   client bytes -> RequestParser -> Router -> BackendConn::send (bytes copied as received)
//                                                  |
//   client <- reply slots, flushed in order <- ReplyScanner frames each backend reply
//
// Writes are batched: clients and backends touched during a loop iteration are flushed once in
// the uv_check phase, so fifty clients each sending one GET cost one write to the backend.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/net/job.h"
#include "lockstep/acl/acl.h"
#include "lockstep/admin/prometheus.h"
#include "lockstep/common/ring.h"
#include "lockstep/config/config.h"
#include "lockstep/proxy/command_table.h"
#include "lockstep/proxy/merge.h"
#include "lockstep/proxy/router.h"
#include "lockstep/proxy/slot_map.h"
#include "lockstep/resp/resp.h"
#include "server/stats/observe.h"

namespace lockstep::server {

class Worker;
class Client;
class PubSubHub;
class LockService;
class TxnService;
class ClusterService;
struct TxnState;
struct SubState;

struct BackendInfo {
  std::string name;
  std::string address;  // host:port as configured
  config::BackendConfig cfg;
  sockaddr_storage sockaddr{};  // resolved once at start
};

// Per-backend arrays that other threads read (statistics) are allocated for this many backends
// once, so a backend added at runtime (replicated configuration) never moves them.
inline constexpr size_t kMaxBackends = 256;

// host:port to a socket address (getaddrinfo); false with `error` set.
bool resolve_address(const config::HostPort& hp, sockaddr_storage& out, std::string& error);

// What the data plane routes by. Immutable; replaced as a whole when the configuration changes.
// Backends are only ever appended: an index names the same backend in every later topology.
struct Topology {
  std::vector<BackendInfo> backends;
  proxy::SlotMap slots;
  uint64_t epoch = 1;
};

// Per-backend counters shared by all workers' connections to it (read by INFO on any thread).
struct BackendStats {
  std::atomic<int> connections_up{0};  // every connection Lockstep has to this backend
  std::atomic<int> pool_up{0};         // of the shared request pools: what "state" reports
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> timeouts{0};
};

// The lock engine's outcomes (written by LockService on workers[0], read anywhere).
struct LockStats {
  std::atomic<uint64_t> acquired{0};
  std::atomic<uint64_t> failed_busy{0};
  std::atomic<uint64_t> failed_noquorum{0};
  std::atomic<uint64_t> failed_error{0};
  std::atomic<uint64_t> waits{0};
  std::atomic<uint64_t> quorum_losses{0};
  std::atomic<uint64_t> keepalive_lost{0};
};

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
};

// State visible to every thread. Fields are set before the workers start and read-only after,
// except the atomics and the client registry (guarded by registry_mu).
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
  // transactions.isolation of live_cfg as 0 none, 1 writes, 2 all: read per request, so an
  // atomic rather than a shared_ptr load.
  std::atomic<int> isolation{0};
  static int isolation_level(const std::string& name) {
    return name == "all" ? 2 : (name == "writes" ? 1 : 0);
  }
  std::shared_ptr<const config::Config> settings() const { return std::atomic_load(&live_cfg); }
  // Replica id -> replicated incarnation, swapped with std::atomic_store by the ClusterService;
  // null without `cluster` (no successor can ever declare a coordinator dead). The resolver
  // reads it once per scan to resolve a dead replica's transactions before their lease ends.
  std::shared_ptr<const std::map<uint64_t, uint64_t>> incarnations;
  ClusterService* cluster = nullptr;  // the LOCKSTEP admin commands go there
  const proxy::CommandTable* table = nullptr;
  resp::ParserLimits limits;
  Stats stats;
  std::unique_ptr<BackendStats[]> backend_stats;
  LockStats lock_stats;
  // CLIENT PAUSE: until this steady-clock time (ms since start of the process' clock), writes
  // (or all commands when pause_all) wait.
  std::atomic<uint64_t> pause_until_ms{0};
  std::atomic<bool> pause_all{false};
  // MONITOR clients, wherever they are: (worker, client id).
  std::atomic<int> monitors{0};
  std::mutex monitor_mu;
  std::vector<std::pair<Worker*, uint64_t>> monitor_list;
  SlowLog slowlog;
  LatencyMonitor latency;
  std::atomic<uint64_t> next_client_id{1};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::vector<Worker*> workers;
  std::mutex registry_mu;
  std::unordered_map<uint64_t, Client*> registry;  // for CLIENT LIST across workers
};

// Told about a backend connection's life: (re)connected, lost, and (for subscriber
// connections) messages pushed by the backend that answer no request.
class ConnObserver {
 public:
  virtual void on_conn_ready(int backend) = 0;
  virtual void on_conn_lost(int /*backend*/) {}
  virtual void on_push(int /*backend*/, std::string_view /*message*/) {}

 protected:
  ~ConnObserver() = default;
};

// Receives backend replies. `cookie` is the sender's own tag (sequence number and part).
class ReplySink {
 public:
  virtual void on_backend_reply(uint64_t cookie, std::string_view reply) = 0;

 protected:
  ~ReplySink() = default;
};

// One pipelined connection to one backend, shared by all clients of a worker that map to it.
class BackendConn {
 public:
  // `protocol` 3 connections speak RESP3 (HELLO 3 in the handshake) and carry the requests of
  // RESP3 clients, so Redis itself produces their replies in RESP3.
  BackendConn(Worker& worker, int backend, const BackendInfo& info, int protocol = 2);
  BackendConn(const BackendConn&) = delete;
  BackendConn& operator=(const BackendConn&) = delete;

  void start();
  // A connection of its own for one client at a time (blocking commands, WAIT): never retried
  // after a failure, exempt from timeouts.request_ms (the command's own timeout applies), and
  // disposed of instead of reconnecting.
  void make_dedicated() { dedicated_ = true; }
  // `observer` hears when the connection is (re)established or lost; with `subscriber`, pushed
  // pub/sub messages go to it too (instead of being taken for replies).
  void set_observer(ConnObserver* observer, bool subscriber) {
    observer_ = observer;
    subscriber_ = subscriber;
  }
  bool dedicated() const { return dedicated_; }
  // One of a worker's shared RESP2 request connections (what INFO's backend state is about);
  // marked by the worker that made it, so other services' connections never count.
  bool pooled() const { return pool_ && !dedicated_ && observer_ == nullptr && protocol_ == 2; }
  bool reusable() const { return dedicated_ && state_ == State::kReady && inflight_.empty(); }
  // Closes the socket and timers, answers what is still pending with `reason`, and tells the
  // worker once every handle is closed so the object can be freed.
  void dispose(std::string_view reason);
  // Queues a request; false when the backend is known to be down (the caller answers with
  // unavailable_error() at once instead of waiting).
  bool send(ReplySink* sink, uint64_t cookie, std::string_view request);
  void flush();
  void close_for_shutdown();
  // Checks the oldest request's age against timeouts.request_ms.
  void check_timeout(uint64_t now_ms);

  const std::string& unavailable_error() const { return unavailable_error_; }
  bool ready() const { return state_ == State::kReady; }
  bool failed_recently() const { return failures_ > 0 && state_ != State::kReady; }
  size_t inflight() const { return inflight_.size(); }
  const std::string& last_error() const { return last_error_; }

 private:
  enum class State { kDown, kConnecting, kReady, kClosed };
  struct Pending {
    ReplySink* sink;  // nullptr: a handshake reply Lockstep itself checks
    uint64_t cookie;
    uint64_t sent_ms;
    uint64_t sent_us = 0;  // the worker's I/O clock; 0 for handshake requests (not measured)
  };
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_retry(uv_timer_t* t);
  static void on_connect_timeout(uv_timer_t* t);
  static void on_handle_closed(uv_handle_t* h);
  void close_handles();
  void answer_pending(std::string_view reply);
  void connect();
  void fail(const std::string& reason);
  void handle_replies();
  void queue_handshake();

  Worker& worker_;
  int backend_;
  // A copy: topologies are replaced at runtime (Worker::install_topology) and the old one goes
  // once nothing else holds it, while this connection may live on.
  const BackendInfo info_;
  int protocol_;
  State state_ = State::kDown;
  bool dedicated_ = false;
  bool pool_ = false;  // one of Worker::backends_[0]
  ConnObserver* observer_ = nullptr;
  bool subscriber_ = false;
  bool held_ = false;  // a dedicated connection currently lent to a client
  bool disposing_ = false;
  int open_handles_ = 0;  // of tcp_, retry_timer_, connect_timer_ while disposing
  uv_tcp_t tcp_{};
  bool tcp_open_ = false;
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  uv_timer_t retry_timer_{};
  uv_timer_t connect_timer_{};
  bool write_in_flight_ = false;
  bool dirty_ = false;
  std::string out_;
  std::string writing_;
  // Read buffer: [in_start_, in_end_) holds reply bytes not yet consumed.
  std::unique_ptr<char[]> in_;
  size_t in_cap_ = 0, in_start_ = 0, in_end_ = 0;
  resp::ReplyScanner scanner_;
  Ring<Pending> inflight_;
  int failures_ = 0;
  std::string last_error_;
  std::string unavailable_error_;

  friend class Worker;
};

// One client connection.
class Client final : public ReplySink {
 public:
  Client(Worker& worker, uint64_t id);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  bool open(int fd);
  void on_backend_reply(uint64_t cookie, std::string_view reply) override;
  // A pub/sub message for this client (RESP2 bytes from the hub).
  void deliver_push(std::string_view message);
  void deliver_monitor_line(std::string_view line);
  // The reply to a request answered on another thread (LOCK.*), for slot `seq`.
  void deliver_external(uint64_t seq, std::string_view reply);
  void lock_lost(const std::string& name);
  void reply_error_text(std::string_view text);
  void flush();
  void close();
  void begin_drain();
  bool idle() const { return slots_.empty() && out_.empty() && !write_in_flight_; }
  bool drained() const;
  bool closed() const { return closing_; }
  bool removable() const { return handle_closed_ && inflight_parts_ == 0; }
  uint64_t id() const { return id_; }
  std::string user_name() const {
    const acl::User* u = user_.load(std::memory_order_relaxed);
    return u ? std::string(u->name()) : "default";
  }
  // One CLIENT LIST line; call under registry_mu. Buffer sizes are only read on the owning
  // worker's thread (`same_worker`), they are not synchronized.
  std::string info_line(bool same_worker) const;
  uint64_t last_interaction_ms() const {
    return last_interaction_ms_.load(std::memory_order_relaxed);
  }

 private:
  struct Slot {
    uint32_t waiting = 0;  // parts sent and not answered yet
    bool ready = false;
    uint32_t argc = 0;
    const proxy::CommandInfo* cmd = nullptr;  // for statistics; nullptr for pushes
    uint64_t start_us = 0;
    bool suppress = false;  // CLIENT REPLY OFF/SKIP: computed, counted, not sent
    std::string data;
    std::unique_ptr<Job> job;
  };
  // Counts a finished request in the statistics, slow log and latency monitor.
  void record(const proxy::CommandInfo* cmd, uint64_t start_us, uint32_t argc,
              std::string_view reply);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* h);

  size_t process(const char* data, size_t size);
  // False when the request must wait until every earlier reply is complete (a protocol switch,
  // a blocking command); it is then parsed again once the slots have drained.
  bool dispatch(std::span<const std::string_view> args, std::string_view raw);
  void dispatch_local(const proxy::CommandInfo& cmd, std::span<const std::string_view> args,
                      std::string_view raw);
  void forward(int backend, std::string_view raw);
  void forward_any(std::string_view raw);
  void evalsha(int backend, std::span<const std::string_view> args, std::string_view raw);
  int any_backend();
  void fan_out(const proxy::CommandInfo& cmd, std::string_view raw);
  void split(const proxy::Plan& plan, std::span<const std::string_view> args);

 public:
  // Sends one part of slot `seq` on this client's shared connection to `backend`. A backend that
  // is down answers with its unavailable error, delivered later in this loop iteration (never
  // from inside this call).
  void send_part(int backend, uint64_t seq, size_t part, std::string_view request);
  // Starts a slot served by a job; the job sends its parts through send_part.
  Job& start_job(std::unique_ptr<Job> job, uint64_t& seq);
  void send_on(BackendConn& conn, uint64_t seq, size_t part, std::string_view request);
  int protocol() const { return protocol_.load(std::memory_order_relaxed); }
  Worker& worker() { return worker_; }
  uint64_t id_for_routing() const { return id_; }

 private:
  void deliver(uint64_t seq, size_t part, std::string_view reply);
  Slot& new_slot(uint64_t& seq);
  void reply(std::string_view bytes);  // a complete reply for the current request
  void reply_error(std::string_view message);
  void complete_slot(size_t index);
  void drain_ready();
  void mark_dirty();
  void update_backpressure();
  void protocol_error(std::string_view message);
  // QUIT and protocol errors: no further requests are read; the connection closes once every
  // reply already owed has been written.
  void stop_reading_and_close_when_flushed();

  // Local commands (local_commands.cpp).
  void cmd_ping(std::span<const std::string_view> args);
  void cmd_auth(std::span<const std::string_view> args);
  void cmd_hello(std::span<const std::string_view> args);
  void cmd_client(std::span<const std::string_view> args);
  void cmd_info(std::span<const std::string_view> args);
  void cmd_select(std::span<const std::string_view> args);
  void cmd_scan(std::span<const std::string_view> args);
  void cmd_slowlog(std::span<const std::string_view> args);
  void cmd_client_kill(std::span<const std::string_view> args);
  void cmd_client_pause(std::span<const std::string_view> args);
  void cmd_client_reply(std::span<const std::string_view> args);
  void resume_after_pause();
  void cmd_monitor();
  void cmd_lock(const proxy::CommandInfo& cmd, std::span<const std::string_view> args);
  // LOCKSTEP ... (client_cluster.cpp): the replicated configuration's admin commands.
  void cmd_lockstep(std::span<const std::string_view> args);
  bool from_loopback() const;
  void feed_monitors(std::span<const std::string_view> args);
  friend class Worker;
  void cmd_latency(std::span<const std::string_view> args);
  void cmd_subscribe(int kind, std::span<const std::string_view> args);
  void cmd_unsubscribe(int kind, std::span<const std::string_view> args);
  void unsubscribe_all();
  bool subscribed() const;
  void cmd_wait(std::span<const std::string_view> args, std::string_view raw);
  // Transactions (client_txn.cpp). txn_dispatch: false when the request is not its business.
  bool txn_dispatch(const proxy::Plan& plan, std::span<const std::string_view> args,
                    std::string_view raw, bool& done);
  void txn_queue(const proxy::Plan& plan, std::span<const std::string_view> args,
                 std::string_view raw);
  void txn_exec();
  void txn_msetnx(const proxy::Plan& plan, std::span<const std::string_view> args);
  // transactions.isolation: a plain command run as a one-command transaction, so it waits for
  // (never overlaps) a cross-backend commit holding its keys. False when it does not apply.
  bool txn_guarded(const proxy::Plan& plan, std::span<const std::string_view> args,
                   std::string_view raw);
  void txn_watch(std::span<const std::string_view> args);
  void txn_unwatch(bool discard);
  bool in_multi() const;
  void txn_flag_error();
  void txn_reset();  // RESET: leaves MULTI, drops WATCHes
  void txn_protocol_changed(int protocol);
  bool txn_runtime_error(const proxy::Plan& plan, std::span<const std::string_view> args);

 public:
  // Connections carrying this client's WATCHes go back to the pool (or are closed).
  void txn_release_pins(bool reusable);
  Job* job_at(uint64_t seq);
  // A job moved on outside a backend reply (a timer): completes its slot if it is done.
  void job_progressed(uint64_t seq);

 private:
  // Blocking commands: false when the cap on blocked clients is reached (already answered).
  bool block_on(int backend, std::string_view raw);
  void release_dedicated(bool reusable);
  void info_with_keyspace(std::string head, std::string tail);
  const acl::User* check_password(std::string_view user, std::string_view password);

  // Written rarely (names, a socket that would block): kept out of line so an idle connection
  // stays small (limits: ≤ 1 KiB of RSS per idle client, measured by scripts/bench memory).
  struct Meta {
    std::string name, lib_name, lib_ver;  // written under registry_mu
    std::vector<std::string> lost_locks;  // KEEPALIVE locks lost, reported on the next LOCK.*
  };
  struct PendingWrite {
    uv_write_t req{};
    std::string data;
  };
  const Meta& meta() const;
  Meta& mutable_meta();

  Worker& worker_;
  uint64_t id_;
  uv_tcp_t tcp_{};
  int fd_ = -1;
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } peer_{};
  std::string in_;
  resp::RequestParser parser_;
  Ring<Slot> slots_;
  uint64_t head_seq_ = 0;
  std::string out_;
  std::unique_ptr<PendingWrite> pending_write_;
  std::unique_ptr<Meta> meta_;
  // The request being dispatched (its reply slots inherit these).
  const proxy::CommandInfo* cur_cmd_ = nullptr;
  uint64_t cur_start_us_ = 0;
  uint32_t cur_argc_ = 0;
  bool cur_suppress_ = false;
  std::string_view cur_flush_arg_;  // FLUSHALL/FLUSHDB's ASYNC|SYNC, during dispatch only
  enum class ReplyMode : uint8_t { kOn, kOff, kSkipNext };
  ReplyMode reply_mode_ = ReplyMode::kOn;
  bool held_for_pause_ = false;
  bool monitor_ = false;
  bool lock_user_ = false;          // has sent LOCK.* (the lock service hears when it closes)
  bool config_watcher_ = false;     // has sent LOCKSTEP CONFIG WATCH (likewise the cluster)
  std::unique_ptr<SubState> subs_;  // pub/sub subscriptions, once it has any
  // Their counts (channels, patterns, shard channels), readable from other workers (CLIENT LIST).
  std::atomic<uint32_t> nsub_[3] = {0, 0, 0};
  uint32_t sub_total() const {
    return nsub_[0].load(std::memory_order_relaxed) + nsub_[1].load(std::memory_order_relaxed) +
           nsub_[2].load(std::memory_order_relaxed);
  }
  // Connections of its own while a blocking command or WAIT is in flight.
  std::vector<BackendConn*> dedicated_;
  std::unique_ptr<TxnState> txn_;  // MULTI queue and WATCH connections, once it has any
  bool write_in_flight_ = false;
  bool read_paused_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_when_flushed_ = false;
  bool handle_closed_ = false;
  bool dirty_ = false;
  bool authenticated_ = false;
  bool admin_ = false;  // sent AUTH admin <admin_password>
  // nullptr until authenticated; atomic because CLIENT LIST on other workers reads its name.
  std::atomic<const acl::User*> user_{nullptr};
  // Set while a request needs every earlier reply first, or while an exclusive request (one
  // that blocks the connection, as in Redis) is in flight: input waits in in_ until no slot is
  // outstanding.
  bool barrier_ = false;
  bool draining_ = false;
  std::atomic<int> protocol_{2};
  uint32_t inflight_parts_ = 0;
  uint64_t created_ms_ = 0;
  std::atomic<uint64_t> last_interaction_ms_{0};
  std::atomic<const proxy::CommandInfo*> last_cmd_{nullptr};

  friend class Worker;
};

void append_commandstats(const SharedState& sh, std::string& text);
void append_latencystats(const SharedState& sh, std::string& text);
void append_errorstats(const SharedState& sh, std::string& text);
void append_lockstats(const SharedState& sh, std::string& text);
void append_txnstats(std::string& text);
void append_clusterstats(std::string& text);
// Every figure INFO and /metrics report, from any thread (introspect.cpp).
std::vector<admin::BackendFigures> gather_backends(const SharedState& sh);
admin::MetricsSnapshot gather_metrics(const SharedState& sh);

class Worker {
 public:
  Worker(SharedState& shared, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void join();
  // Thread-safe.
  void post_connection(int fd);
  void post_drain();
  // Runs `task` on this worker's thread (from any thread).
  void post_task(std::function<void()> task);
  // CLIENT KILL of a client owned by this worker, from any thread.
  void post_kill(uint64_t client_id);
  // CLIENT PAUSE/UNPAUSE changed: re-check held clients (from any thread).
  void post_pause_changed();
  // A MONITOR line for client `id` of this worker (from any thread).
  void post_monitor_line(uint64_t id, std::string line);
  // Clients whose requests wait for a CLIENT PAUSE to end.
  void hold_for_pause(Client* c);

  SharedState& shared() { return shared_; }
  uv_loop_t* loop() { return &loop_; }
  int index() const { return index_; }
  const Topology& topology() const { return *topology_; }
  const std::shared_ptr<const Topology>& topology_ptr() const { return topology_; }
  // A new slot map from the replicated configuration; on this worker's thread, between
  // requests. The old topology is kept: backend connections refer to its BackendInfo.
  void install_topology(std::shared_ptr<const Topology> t);
  proxy::Router& router() { return router_; }
  // Commands the data path treats specially, looked up once (compared by pointer per request).
  struct ScriptCommands {
    const proxy::CommandInfo *eval, *eval_ro, *evalsha, *evalsha_ro, *script_load, *script_flush,
        *fcall;
  };
  const ScriptCommands& script_commands() const { return script_cmds_; }
  // transactions.isolation: 0 none, 1 writes, 2 all (read once: it is on the request path).
  int isolation() const { return shared_.isolation.load(std::memory_order_relaxed); }
  BackendConn& backend_for(int backend, uint64_t client_id, int protocol = 2);
  int backend_count() const { return static_cast<int>(backends_[0].size()); }
  char* read_buffer() { return read_buf_.get(); }
  resp::ParserScratch* parser_scratch() { return &parser_scratch_; }
  std::string& encode_buffer() { return encode_buf_; }
  static constexpr size_t kReadBufferSize = 64 * 1024;
  uint64_t now_ms() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }
  uint64_t random();
  // Request latencies are measured in µs against a clock read once per socket read (one
  // clock_gettime per batch, not per request: it cost 5% of the cycles at pipeline 16).
  void stamp_io_time() { io_now_us_ = uv_hrtime() / 1000; }
  uint64_t io_now_us() const { return io_now_us_; }

  // A reply produced without a backend round trip for a part already counted as sent (backend
  // down); delivered in the check phase so senders are never re-entered.
  void defer_reply(ReplySink* sink, uint64_t cookie, std::string_view reply);
  void mark_dirty(Client* c);
  void mark_dirty(BackendConn* b);
  void client_closed(Client* c);
  PubSubHub& hub();
  // The process' lock engine; only on workers[0], from its own thread.
  LockService& locks();
  // This worker's transaction runtime (timers; the resolver on workers[0]).
  TxnService& txns() { return *txns_; }
  Client* find_client(uint64_t id) {
    auto it = clients_.find(id);
    return it == clients_.end() || it->second->closed() ? nullptr : it->second.get();
  }
  CommandCounters& counters(uint16_t id) { return counters_[id]; }
  void reset_counters() {
    for (size_t i = 0; i < shared_.table->id_count(); ++i) {
      CommandCounters& c = counters_[i];
      c.calls = 0;
      c.usec = 0;
      c.failed = 0;
      c.rejected = 0;
      for (auto& b : c.buckets) b = 0;
    }
    errors_.reset();
  }
  const CommandCounters& counters(uint16_t id) const { return counters_[id]; }
  // An error reply to a client: counted by kind; when it comes from Lockstep or a backend
  // failing (not from the request itself) it is logged with a request id. `cmd` is nullptr for
  // requests refused before they ran (counted, not logged).
  void note_error_reply(uint64_t client_id, const proxy::CommandInfo* cmd, std::string_view reply);
  const ErrorCounters& errors() const { return errors_; }
  // Backend round trips measured on this worker (calls = replies, usec, buckets, failed).
  void record_backend_reply(int backend, uint64_t sent_us, std::string_view reply);
  const CommandCounters& backend_counters(int backend) const {
    return backend_counters_[static_cast<size_t>(backend)];
  }
  // Requests in flight to `backend` on this worker, sampled every tick (100 ms) so that INFO and
  // /metrics read an atomic from any thread instead of walking this worker's connections.
  uint64_t inflight_sample(int backend) const {
    return inflight_sample_[static_cast<size_t>(backend)].load(std::memory_order_relaxed);
  }
  // Dedicated connections: reuse an idle one to `backend` or open a new one.
  BackendConn* acquire_dedicated(int backend, int protocol);
  void release_dedicated(BackendConn* conn, bool reusable);
  void backend_disposed(BackendConn* conn);
  // Takes a connection its owner no longer wants (a service replacing its connections) and
  // frees it once its handles are closed; what is still pending on it is answered `reason`.
  void retire(std::unique_ptr<BackendConn> conn, std::string_view reason);

 private:
  static void on_async(uv_async_t* a);
  static void on_check(uv_check_t* c);
  static void on_idle(uv_idle_t* i) { (void)i; }
  static void on_tick(uv_timer_t* t);
  static void on_pause_timer(uv_timer_t* t);
  void release_paused();
  void run();
  void wake();
  template <typename F>
  void for_each_backend(F&& f) {
    for (auto& pool : backends_)
      for (auto& conns : pool)
        for (auto& c : conns) f(*c);
  }
  void accept_pending();
  void sample_inflight();
  void flush_dirty();
  void maybe_finish_drain();

  SharedState& shared_;
  int index_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_check_t check_{};
  uv_idle_t idle_{};
  uv_timer_t tick_{};
  std::shared_ptr<const Topology> topology_;
  proxy::Router router_;
  ScriptCommands script_cmds_{};
  // [protocol == 3][backend][connection]; RESP3 connections are opened on first use.
  std::vector<std::vector<std::unique_ptr<BackendConn>>> backends_[2];
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<Client*> dirty_clients_;
  std::vector<BackendConn*> dirty_backends_;
  std::vector<Client*> graveyard_;
  struct Deferred {
    ReplySink* sink;
    uint64_t cookie;
    std::string reply;
  };
  std::vector<Deferred> deferred_;
  std::vector<std::unique_ptr<BackendConn>> dedicated_;  // every dedicated connection
  std::vector<BackendConn*> idle_dedicated_[2];          // by protocol == 3
  std::vector<BackendConn*> disposed_;
  std::vector<std::unique_ptr<BackendConn>> retiring_;  // see retire()
  std::unique_ptr<PubSubHub> hub_;
  std::unique_ptr<LockService> locks_;
  std::unique_ptr<TxnService> txns_;
  std::unique_ptr<CommandCounters[]> counters_;  // by CommandInfo::id
  ErrorCounters errors_;
  std::unique_ptr<CommandCounters[]> backend_counters_;  // by backend
  std::unique_ptr<std::atomic<uint64_t>[]> inflight_sample_;
  uint64_t last_error_log_s_ = 0;  // (seconds) error lines: a few per second per worker
  uint32_t error_logs_this_second_ = 0;
  uint64_t error_logs_suppressed_ = 0;
  std::unique_ptr<char[]> read_buf_;
  resp::ParserScratch parser_scratch_;
  std::string encode_buf_;  // sub-requests of split commands, inline commands re-encoded
  std::mutex mu_;
  std::vector<int> pending_fds_;
  std::vector<uint64_t> pending_kills_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::pair<uint64_t, std::string>> monitor_inbox_;
  bool pause_changed_ = false;
  std::vector<uint64_t> paused_clients_;  // ids, looked up again when the pause ends
  uv_timer_t pause_timer_{};
  bool drain_requested_ = false;
  bool draining_ = false;
  bool stopped_ = false;
  uint64_t drain_deadline_ms_ = 0;
  uint64_t rng_state_;
  uint64_t io_now_us_ = 0;
  std::thread thread_;
};

}  // namespace lockstep::server
