// Worker threads (worker.h): each owns a libuv loop, its clients and its connections to every
// backend. New connections arrive from the acceptor as file descriptors through a mutex-guarded
// queue and a uv_async wake-up; nothing else crosses threads on the request path.
#include "server/net/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "lockstep/admin/logging.h"
#include "server/commands/handlers.h"
#include "server/lock/lock_service.h"
#include "server/net/loop_util.h"
#include "server/pubsub/pubsub_hub.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {

Worker::Worker(SharedState& shared, int index)
    : shared_(shared),
      index_(index),
      topology_(shared.topology),
      router_(*shared.table),
      handlers_(HandlerTable::instance()),
      counters_(std::make_unique<CommandCounters[]>(shared.table->id_count())),
      backend_counters_(std::make_unique<CommandCounters[]>(kMaxBackends)),
      inflight_sample_(std::make_unique<std::atomic<uint64_t>[]>(kMaxBackends)),
      read_buf_(std::make_unique<char[]>(kReadBufferSize)),
      rng_state_(std::random_device{}() | 1) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, on_async);
  async_.data = this;
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, on_check);
  uv_idle_init(&loop_, &idle_);
  idle_.data = this;
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_timer_init(&loop_, &pause_timer_);
  pause_timer_.data = this;
  txns_ = std::make_unique<TxnService>(*this);
  const int conns = shared.cfg.backend_connections;
  backends_[0].resize(topology_->backends.size());
  backends_[1].resize(topology_->backends.size());
  for (size_t b = 0; b < topology_->backends.size(); ++b)
    for (int i = 0; i < conns; ++i) {
      backends_[0][b].push_back(
          std::make_unique<BackendConn>(*this, static_cast<int>(b), topology_->backends[b], 2));
      backends_[0][b].back()->pool_ = true;
    }
}

Worker::~Worker() {
  if (thread_.joinable()) thread_.join();
  // Close whatever is left so the loop can be closed cleanly.
  close_all_handles(&loop_);
  clients_.clear();
  dedicated_.clear();
  retiring_.clear();
  hub_.reset();
  locks_.reset();
  txns_.reset();
  backends_[0].clear();
  backends_[1].clear();
  uv_loop_close(&loop_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  for_each_backend([](BackendConn& c) { c.start(); });
  // The lock engine lives on the home worker; it connects to the lock backends at start so
  // they are verified (and quarantine decisions made) before the first LOCK command.
  if (this == shared_.home()) locks_ = std::make_unique<LockService>(*this);
  txns_->start();
  uv_timer_start(&tick_, on_tick, 100, 100);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

uint64_t Worker::random() {
  // xorshift64*: per-thread, lock-free; used for jitter and RANDOMKEY, not for secrets.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return rng_state_ * 0x2545F4914F6CDD1DULL;
}

void Worker::post_connection(int fd) {
  {
    std::lock_guard lock(mu_);
    pending_fds_.push_back(fd);
  }
  uv_async_send(&async_);
}

void Worker::install_topology(std::shared_ptr<const Topology> t) {
  // Backends are only appended, so existing indexes and connections stay as they are; a new
  // backend's connections open on first use (backend_for), its subscriber one in the hub.
  topology_ = std::move(t);
  for (auto& pool : backends_)
    if (pool.size() < topology_->backends.size()) pool.resize(topology_->backends.size());
  if (hub_) hub_->grow();
}

void Worker::post_task(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uv_async_send(&async_);
}

void Worker::post_drain() {
  {
    std::lock_guard lock(mu_);
    drain_requested_ = true;
  }
  uv_async_send(&async_);
}

void Worker::on_async(uv_async_t* a) {
  auto* self = static_cast<Worker*>(a->data);
  self->stamp_io_time();
  self->accept_pending();
  bool drain, pause_changed;
  std::vector<uint64_t> kills;
  std::vector<std::pair<uint64_t, std::string>> lines;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(self->mu_);
    tasks.swap(self->tasks_);
    lines.swap(self->monitor_inbox_);
    drain = self->drain_requested_;
    pause_changed = self->pause_changed_;
    self->pause_changed_ = false;
    kills.swap(self->pending_kills_);
  }
  for (auto& t : tasks) t();
  for (auto& [id, line] : lines) {
    auto it = self->clients_.find(id);
    if (it != self->clients_.end()) it->second->deliver_monitor_line(line);
  }
  for (uint64_t id : kills) {
    auto it = self->clients_.find(id);
    if (it != self->clients_.end()) it->second->close();
  }
  if (pause_changed) self->release_paused();
  if (drain && !self->draining_) {
    self->draining_ = true;
    self->drain_deadline_ms_ =
        self->now_ms() + static_cast<uint64_t>(self->shared_.cfg.timeouts.shutdown_ms);
    std::vector<Client*> all;
    for (auto& [id, c] : self->clients_) all.push_back(c.get());
    for (Client* c : all) c->begin_drain();
    self->maybe_finish_drain();
  }
}

void Worker::accept_pending() {
  std::vector<int> fds;
  {
    std::lock_guard lock(mu_);
    fds.swap(pending_fds_);
  }
  for (int fd : fds) {
    if (draining_) {
      ::close(fd);
      continue;
    }
    uint64_t id = shared_.next_client_id.fetch_add(1);
    auto client = std::make_unique<Client>(*this, id);
    Client* c = client.get();
    clients_.emplace(id, std::move(client));
    if (!c->open(fd)) {
      ::close(fd);
      shared_.stats.connected_clients.fetch_sub(1);
    }
  }
}

BackendConn& Worker::backend_for(int backend, uint64_t client_id, int protocol) {
  // A client always uses the same connection to a backend: its requests to one backend must
  // execute in the order it sent them.
  auto& conns = backends_[protocol == 3 ? 1 : 0][static_cast<size_t>(backend)];
  if (conns.empty()) {
    for (int i = 0; i < shared_.cfg.backend_connections; ++i) {
      conns.push_back(
          std::make_unique<BackendConn>(*this, backend, topology_->backends[backend], protocol));
      conns.back()->start();
    }
  }
  return *conns[client_id % conns.size()];
}

void Worker::defer_reply(ReplySink* sink, uint64_t cookie, std::string_view reply) {
  if (stopped_) return;
  wake();
  deferred_.push_back(Deferred{sink, cookie, std::string(reply)});
}

// Work queued for the check phase must not wait for unrelated I/O: an active idle handle makes
// the loop poll without blocking, so the check phase comes at once. (Starting an active idle
// handle is a no-op.)
void Worker::wake() {
  uv_idle_start(&idle_, on_idle);
}

void Worker::mark_dirty(Client* c) {
  wake();
  dirty_clients_.push_back(c);
}

void Worker::mark_dirty(BackendConn* b) {
  wake();
  b->dirty_ = true;
  dirty_backends_.push_back(b);
}

void Worker::client_closed(Client* c) {
  wake();  // freed in the next check phase
  graveyard_.push_back(c);
}

void Worker::on_check(uv_check_t* c) {
  static_cast<Worker*>(c->data)->flush_dirty();
}

void Worker::flush_dirty() {
  stamp_io_time();  // deferred replies and timers complete requests here
  // Flushing a client may resume its reads and queue more backend requests (and vice versa), so
  // both lists are walked until nothing new was added.
  while (!dirty_clients_.empty() || !dirty_backends_.empty() || !deferred_.empty()) {
    if (!deferred_.empty()) {
      std::vector<Deferred> batch;
      batch.swap(deferred_);
      for (auto& d : batch) d.sink->on_backend_reply(d.cookie, d.reply);
    }
    for (size_t i = 0; i < dirty_backends_.size(); ++i) dirty_backends_[i]->flush();
    dirty_backends_.clear();
    for (size_t i = 0; i < dirty_clients_.size(); ++i) dirty_clients_[i]->flush();
    dirty_clients_.clear();
  }
  uv_idle_stop(&idle_);
  for (Client* c : graveyard_) clients_.erase(c->id());
  graveyard_.clear();
  for (BackendConn* b : disposed_) {
    auto is_b = [b](const std::unique_ptr<BackendConn>& p) { return p.get() == b; };
    std::erase_if(dedicated_, is_b);
    std::erase_if(retiring_, is_b);
  }
  disposed_.clear();
  if (draining_) maybe_finish_drain();
}

void Worker::on_tick(uv_timer_t* t) {
  auto* self = static_cast<Worker*>(t->data);
  self->stamp_io_time();
  const uint64_t now = self->now_ms();
  self->for_each_backend([now](BackendConn& c) { c.check_timeout(now); });
  self->sample_inflight();
  const int idle_s = self->shared_.cfg.timeouts.client_idle_s;
  if (idle_s > 0) {
    std::vector<Client*> expired;
    for (auto& [id, c] : self->clients_)
      if (!c->closed() && c->idle() && now - c->last_interaction_ms() > uint64_t(idle_s) * 1000)
        expired.push_back(c.get());
    for (Client* c : expired) c->close();
  }
  if (self->draining_) {
    std::vector<Client*> done;
    for (auto& [id, c] : self->clients_)
      if (!c->closed() && c->drained()) done.push_back(c.get());
    for (Client* c : done) c->close();
    if (now >= self->drain_deadline_ms_) {
      // Out of time: drop the clients and fail whatever the backends still owe them, so the
      // clients' memory is released and the process can exit.
      std::vector<Client*> all;
      for (auto& [id, c] : self->clients_) all.push_back(c.get());
      for (Client* c : all) c->close();
      self->for_each_backend([](BackendConn& b) { b.close_for_shutdown(); });
      for (auto& c : self->dedicated_) c->close_for_shutdown();
      if (self->hub_) self->hub_->shutdown();
      if (self->locks_) self->locks_->shutdown();
      self->txns_->shutdown();
    }
    self->maybe_finish_drain();
  }
}

void Worker::sample_inflight() {
  const size_t n = topology_->backends.size();
  std::vector<uint64_t> sums(n, 0);
  for_each_backend([&](BackendConn& c) { sums[static_cast<size_t>(c.backend_)] += c.inflight(); });
  for (auto& c : dedicated_) sums[static_cast<size_t>(c->backend_)] += c->inflight();
  for (size_t b = 0; b < n; ++b) inflight_sample_[b].store(sums[b], std::memory_order_relaxed);
}

void Worker::record_backend_reply(int backend, uint64_t sent_us, std::string_view reply) {
  const uint64_t dur = io_now_us_ > sent_us ? io_now_us_ - sent_us : 0;
  backend_counters_[static_cast<size_t>(backend)].add_call(dur, resp::is_error_reply(reply));
}

void Worker::note_error_reply(uint64_t client_id, const proxy::CommandInfo* cmd,
                              std::string_view reply) {
  errors_.count(reply);
  if (cmd == nullptr) return;
  // Errors that are Lockstep's or a backend's failing (not the request's own fault) are logged,
  // each with a request id. A few per second per worker: a dead backend fails every request.
  std::string_view text = reply.substr(reply.starts_with('-') ? 1 : 0);
  if (text.ends_with("\r\n")) text.remove_suffix(2);
  const bool operational = text.starts_with("ERR backend ") || text.starts_with("NOQUORUM") ||
                           text.starts_with("LOCKCONFIG") || text.starts_with("ERR Lockstep");
  if (!operational) return;
  const uint64_t second = now_ms() / 1000;
  if (second != last_error_log_s_) {
    if (error_logs_suppressed_ > 0)
      spdlog::error("{} more failed request(s) on worker {} not logged", error_logs_suppressed_,
                    index_);
    last_error_log_s_ = second;
    error_logs_this_second_ = 0;
    error_logs_suppressed_ = 0;
  }
  if (++error_logs_this_second_ > 5) {
    ++error_logs_suppressed_;
    return;
  }
  admin::log_request_error(admin::next_request_id(), client_id, cmd->name, text);
}

void Worker::maybe_finish_drain() {
  if (stopped_ || !clients_.empty()) return;
  stopped_ = true;
  for_each_backend([](BackendConn& c) { c.close_for_shutdown(); });
  if (hub_) hub_->shutdown();
  if (locks_) locks_->shutdown();
  txns_->shutdown();
  for (auto& c : dedicated_) c->close_for_shutdown();
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&pause_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

}  // namespace lockstep::server

namespace lockstep::server {

LockService& Worker::locks() {
  // Only the home worker has one, from the start of its loop (run()); LOCK.* requests reach it
  // through post_task, so they always run after that.
  return *locks_;
}

PubSubHub& Worker::hub() {
  if (!hub_) hub_ = std::make_unique<PubSubHub>(*this);
  return *hub_;
}

BackendConn* Worker::acquire_dedicated(int backend, int protocol) {
  auto& idle = idle_dedicated_[protocol == 3 ? 1 : 0];
  for (size_t i = 0; i < idle.size(); ++i) {
    BackendConn* c = idle[i];
    if (c->backend_ == backend && c->reusable()) {
      idle[i] = idle.back();
      idle.pop_back();
      c->held_ = true;
      return c;
    }
  }
  auto conn = std::make_unique<BackendConn>(*this, backend, topology_->backends[backend], protocol);
  conn->make_dedicated();
  conn->held_ = true;
  BackendConn* c = conn.get();
  dedicated_.push_back(std::move(conn));
  c->start();
  return c;
}

void Worker::release_dedicated(BackendConn* conn, bool reusable) {
  auto& idle = idle_dedicated_[conn->protocol_ == 3 ? 1 : 0];
  conn->held_ = false;
  // Keep a few idle connections per worker so the next blocking command does not pay for a
  // connect; beyond that (or when broken, or draining) close them.
  constexpr size_t kMaxIdleDedicated = 8;
  if (reusable && conn->reusable() && !draining_ && idle.size() < kMaxIdleDedicated) {
    idle.push_back(conn);
    return;
  }
  idle.erase(std::remove(idle.begin(), idle.end(), conn), idle.end());
  conn->dispose("connection released");
}

void Worker::retire(std::unique_ptr<BackendConn> conn, std::string_view reason) {
  BackendConn* c = conn.get();
  retiring_.push_back(std::move(conn));
  c->dispose(reason);
}

void Worker::backend_disposed(BackendConn* conn) {
  wake();  // freed in the next check phase
  disposed_.push_back(conn);
}

}  // namespace lockstep::server

// --- Cross-thread inboxes and CLIENT PAUSE --------------------------------------------------

namespace lockstep::server {

uint64_t ClientPause::now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Isolation isolation_from(const std::string& name) {
  return name == "all" ? Isolation::kAll
                       : (name == "writes" ? Isolation::kWrites : Isolation::kNone);
}

void Worker::post_monitor_line(uint64_t id, std::string line) {
  {
    std::lock_guard lock(mu_);
    monitor_inbox_.emplace_back(id, std::move(line));
  }
  uv_async_send(&async_);
}

void Worker::post_kill(uint64_t client_id) {
  {
    std::lock_guard lock(mu_);
    pending_kills_.push_back(client_id);
  }
  uv_async_send(&async_);
}

void Worker::post_pause_changed() {
  {
    std::lock_guard lock(mu_);
    pause_changed_ = true;
  }
  uv_async_send(&async_);
}

void Worker::hold_for_pause(Client* c) {
  paused_clients_.push_back(c->id());
  const uint64_t until = shared_.pause.until_ms();
  const uint64_t now = ClientPause::now_ms();
  uv_timer_start(&pause_timer_, on_pause_timer, until > now ? until - now : 0, 0);
}

void Worker::on_pause_timer(uv_timer_t* t) {
  static_cast<Worker*>(t->data)->release_paused();
}

void Worker::release_paused() {
  const uint64_t until = shared_.pause.until_ms();
  const uint64_t now = ClientPause::now_ms();
  if (until > now && !paused_clients_.empty()) {  // extended meanwhile: wait again
    uv_timer_start(&pause_timer_, on_pause_timer, until - now, 0);
    return;
  }
  if (until != 0 && until <= now) shared_.pause.expire(until);
  std::vector<uint64_t> ids;
  ids.swap(paused_clients_);
  for (uint64_t id : ids) {
    auto it = clients_.find(id);
    if (it != clients_.end() && !it->second->closed()) it->second->resume_after_pause();
  }
}

}  // namespace lockstep::server
