// A worker: one thread, one libuv loop, its clients and its own pipelined connections to every
// backend. Nothing on the request path is shared between threads except immutable snapshots
// (topology, settings) and relaxed atomic counters.
//
//   client bytes -> Client (parse, dispatch) -> BackendConn::send (bytes copied as received)
//                                                   |
//   client <- reply slots, flushed in order  <- resp::ReplyScanner frames each backend reply
//
// Writes are batched: clients and backend connections touched during a loop iteration are
// flushed once in the uv_check phase, so fifty clients each sending one GET cost one write to
// the backend. Work from other threads (new connections, CLIENT KILL, MONITOR lines, LOCK.*
// replies, topology changes) arrives through post_*(): a mutex-guarded inbox and a uv_async.
//
// workers[0] also hosts the lock engine (LockService) and the transaction resolver; see the
// map of threads in server.cpp.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lockstep/proxy/router.h"
#include "lockstep/resp/resp.h"
#include "server/net/backend_conn.h"
#include "server/net/client.h"
#include "server/net/shared_state.h"
#include "server/stats/command_counters.h"
#include "server/stats/error_counters.h"

namespace lockstep::server {

class PubSubHub;
class LockService;
class TxnService;
class HandlerTable;

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
  // The command handlers (commands/handlers.h), looked up once here: a function-local
  // static's guard on every request cost 12 instructions.
  const HandlerTable& handlers() const { return handlers_; }
  // transactions.isolation (read once per request: an atomic, not a snapshot load).
  Isolation isolation() const { return shared_.isolation.load(std::memory_order_relaxed); }
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
  // The process' lock engine: only the home worker (SharedState::home) has one, created when
  // its loop starts; call on that worker's thread.
  LockService& locks();
  // This worker's transaction runtime (timers; the resolver on workers[0]).
  TxnService& txns() { return *txns_; }
  Client* find_client(uint64_t id) {
    auto it = clients_.find(id);
    return it == clients_.end() || it->second->closed() ? nullptr : it->second.get();
  }
  CommandCounters& counters(uint16_t id) { return counters_[id]; }
  // CONFIG RESETSTAT: this worker's counters (on its own thread: it is their only writer).
  void reset_counters() {
    for (size_t i = 0; i < shared_.table->id_count(); ++i) counters_[i].reset();
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
  const HandlerTable& handlers_;
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
