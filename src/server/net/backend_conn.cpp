// Backend connections: long-lived, pipelined, shared by the clients of one worker. Replies come
// back in request order, so a FIFO of pending entries says whose reply each one is. A reply
// that does not arrive within timeouts.request_ms cannot be skipped on a pipelined connection,
// so the connection is failed as a whole and every pending request gets an error.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "server/net/worker.h"

namespace lockstep::server {
namespace {
constexpr size_t kMinReadSpace = 16 * 1024;
constexpr int kBaseRetryMs = 50;
}  // namespace

BackendConn::BackendConn(Worker& worker, int backend, const BackendInfo& info, int protocol)
    : worker_(worker), backend_(backend), info_(info), protocol_(protocol) {
  uv_timer_init(worker_.loop(), &retry_timer_);
  retry_timer_.data = this;
  uv_timer_init(worker_.loop(), &connect_timer_);
  connect_timer_.data = this;
  unavailable_error_ = fmt::format("-ERR backend {} ({}) unavailable: not connected yet\r\n",
                                   info_.name, info_.address);
}

void BackendConn::start() {
  connect();
}

void BackendConn::queue_handshake() {
  // AUTH and SELECT come first on every new connection; their replies are checked here and
  // never reach a client. Client passwords are never forwarded: these are the backend's own.
  const auto& cfg = info_.cfg;
  const uint64_t now = worker_.now_ms();
  if (!cfg.password.empty()) {
    std::string_view args3[] = {"AUTH", cfg.username, cfg.password};
    std::string_view args2[] = {"AUTH", cfg.password};
    if (cfg.username.empty())
      resp::append_command(out_, args2);
    else
      resp::append_command(out_, args3);
    inflight_.push_back() = Pending{nullptr, 0, now};
  }
  if (protocol_ == 3) {
    std::string_view args[] = {"HELLO", "3"};
    resp::append_command(out_, args);
    inflight_.push_back() = Pending{nullptr, 0, now};
  }
  if (cfg.db != 0) {
    std::string db = std::to_string(cfg.db);
    std::string_view args[] = {"SELECT", db};
    resp::append_command(out_, args);
    inflight_.push_back() = Pending{nullptr, 0, now};
  }
}

void BackendConn::connect() {
  if (state_ == State::kClosed) return;
  if (tcp_open_) {  // the previous socket is still closing; try again shortly
    uv_timer_start(&retry_timer_, on_retry, 5, 0);
    return;
  }
  state_ = State::kConnecting;
  out_.clear();
  inflight_.clear();
  scanner_.reset();
  in_start_ = in_end_ = 0;
  queue_handshake();
  uv_tcp_init(worker_.loop(), &tcp_);
  tcp_.data = this;
  tcp_open_ = true;
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&info_.sockaddr),
                          on_connect);
  if (rc != 0) {
    fail(fmt::format("connect: {}", uv_strerror(rc)));
    return;
  }
  uv_timer_start(&connect_timer_, on_connect_timeout,
                 static_cast<uint64_t>(worker_.shared().cfg.timeouts.connect_ms), 0);
}

void BackendConn::on_connect_timeout(uv_timer_t* t) {
  auto* self = static_cast<BackendConn*>(t->data);
  if (self->state_ == State::kConnecting)
    self->fail(fmt::format("connect timed out after {} ms",
                           self->worker_.shared().cfg.timeouts.connect_ms));
}

void BackendConn::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<BackendConn*>(req->data);
  if (status == UV_ECANCELED || self->state_ != State::kConnecting) return;
  uv_timer_stop(&self->connect_timer_);
  if (status != 0) {
    self->fail(fmt::format("connect: {}", uv_strerror(status)));
    return;
  }
  uv_tcp_nodelay(&self->tcp_, 1);
  uv_tcp_keepalive(&self->tcp_, 1, 60);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), on_alloc, on_read);
  if (self->failures_ > 0)
    spdlog::info("backend {} ({}) is back after {} failed attempt(s)", self->info_.name,
                 self->info_.address, self->failures_);
  else
    spdlog::debug("worker {} connected to backend {} ({})", self->worker_.index(), self->info_.name,
                  self->info_.address);
  self->state_ = State::kReady;
  self->failures_ = 0;
  self->worker_.shared().backend_stats[self->backend_].connections_up.fetch_add(1);
  if (self->pooled()) self->worker_.shared().backend_stats[self->backend_].pool_up.fetch_add(1);
  if (self->observer_ != nullptr) self->observer_->on_conn_ready(self->backend_);
  self->flush();
}

bool BackendConn::send(ReplySink* sink, uint64_t cookie, std::string_view request) {
  if (state_ == State::kReady || (state_ == State::kConnecting && failures_ == 0)) {
    out_.append(request);
    inflight_.push_back() = Pending{sink, cookie, worker_.now_ms(), worker_.io_now_us()};
    worker_.shared().backend_stats[backend_].requests.fetch_add(1, std::memory_order_relaxed);
    if (!dirty_) worker_.mark_dirty(this);
    return true;
  }
  return false;
}

void BackendConn::flush() {
  dirty_ = false;
  if (state_ != State::kReady || write_in_flight_ || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  write_req_.data = this;
  write_in_flight_ = true;
  int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, on_write);
  if (rc != 0) {
    write_in_flight_ = false;
    fail(fmt::format("write: {}", uv_strerror(rc)));
  }
}

void BackendConn::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<BackendConn*>(req->data);
  self->write_in_flight_ = false;
  if (self->writing_.capacity() > 1024 * 1024)
    std::string().swap(self->writing_);
  else
    self->writing_.clear();
  if (status == UV_ECANCELED) return;
  if (status != 0) {
    self->fail(fmt::format("write: {}", uv_strerror(status)));
    return;
  }
  if (!self->out_.empty()) self->flush();
}

void BackendConn::on_alloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<BackendConn*>(h->data);
  if (self->in_start_ == self->in_end_) self->in_start_ = self->in_end_ = 0;
  if (self->in_cap_ - self->in_end_ < kMinReadSpace) {
    size_t used = self->in_end_ - self->in_start_;
    if (self->in_start_ > 0 && self->in_cap_ - used >= kMinReadSpace) {
      std::memmove(self->in_.get(), self->in_.get() + self->in_start_, used);
    } else {
      // Grow geometrically so a large reply is read in O(n).
      size_t cap = std::max<size_t>(Worker::kReadBufferSize, (used + kMinReadSpace) * 2);
      auto bigger = std::make_unique<char[]>(cap);
      if (used > 0) std::memcpy(bigger.get(), self->in_.get() + self->in_start_, used);
      self->in_ = std::move(bigger);
      self->in_cap_ = cap;
    }
    self->in_start_ = 0;
    self->in_end_ = used;
  }
  *buf = uv_buf_init(self->in_.get() + self->in_end_,
                     static_cast<unsigned>(self->in_cap_ - self->in_end_));
}

void BackendConn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<BackendConn*>(s->data);
  if (nread == 0) return;
  if (nread < 0) {
    self->fail(nread == UV_EOF ? std::string("connection closed by the backend")
                               : fmt::format("read: {}", uv_strerror(static_cast<int>(nread))));
    return;
  }
  self->in_end_ += static_cast<size_t>(nread);
  self->worker_.stamp_io_time();
  self->handle_replies();
}

void BackendConn::handle_replies() {
  while (in_start_ < in_end_ && state_ == State::kReady) {
    int64_t n = scanner_.scan(in_.get() + in_start_, in_end_ - in_start_);
    if (n == 0) break;
    if (n < 0) {
      fail("protocol error in a backend reply");
      return;
    }
    std::string_view reply(in_.get() + in_start_, static_cast<size_t>(n));
    in_start_ += static_cast<size_t>(n);
    if (subscriber_ && (reply.starts_with("*3\r\n$7\r\nmessage\r\n") ||
                        reply.starts_with("*4\r\n$8\r\npmessage\r\n") ||
                        reply.starts_with("*3\r\n$8\r\nsmessage\r\n"))) {
      observer_->on_push(backend_, reply);  // not a reply to any request
      continue;
    }
    if (inflight_.empty()) {
      fail("unexpected reply from the backend");
      return;
    }
    Pending p = inflight_.front();
    inflight_.pop_front();
    if (p.sent_us != 0) worker_.record_backend_reply(backend_, p.sent_us, reply);
    if (p.sink == nullptr) {
      if (resp::is_error_reply(reply)) {
        fail(fmt::format("handshake refused: {}", std::string(reply.substr(1, reply.size() - 3))));
        return;
      }
      continue;
    }
    p.sink->on_backend_reply(p.cookie, reply);
  }
  // Release a buffer that grew for one large reply once it is drained.
  if (in_start_ == in_end_ && in_cap_ > 4 * Worker::kReadBufferSize) {
    in_.reset();
    in_cap_ = in_start_ = in_end_ = 0;
  }
}

void BackendConn::check_timeout(uint64_t now_ms) {
  if (inflight_.empty() || state_ != State::kReady || dedicated_) return;
  const auto limit = static_cast<uint64_t>(worker_.shared().settings()->timeouts.request_ms);
  if (now_ms - inflight_.front().sent_ms > limit) {
    worker_.shared().backend_stats[backend_].timeouts.fetch_add(1, std::memory_order_relaxed);
    fail(fmt::format("timed out after {} ms waiting for a reply", limit));
  }
}

void BackendConn::fail(const std::string& reason) {
  bool was_ready = state_ == State::kReady;
  uv_timer_stop(&connect_timer_);
  if (was_ready) {
    worker_.shared().backend_stats[backend_].connections_up.fetch_sub(1);
    if (pooled()) worker_.shared().backend_stats[backend_].pool_up.fetch_sub(1);
  }
  worker_.shared().backend_stats[backend_].failures.fetch_add(1, std::memory_order_relaxed);
  ++failures_;
  if (failures_ == 1 || was_ready)
    spdlog::warn("backend {} ({}) unavailable on worker {}: {}", info_.name, info_.address,
                 worker_.index(), reason);
  last_error_ = reason;
  unavailable_error_ =
      fmt::format("-ERR backend {} ({}) unavailable: {}\r\n", info_.name, info_.address, reason);
  if (state_ != State::kClosed) state_ = State::kDown;
  if (tcp_open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) {
    ++open_handles_;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
  }
  // Answer everyone who was waiting. Entries are moved out first: a sink may send again.
  out_.clear();
  scanner_.reset();
  in_start_ = in_end_ = 0;
  answer_pending(unavailable_error_);
  if (observer_ != nullptr && state_ != State::kClosed) observer_->on_conn_lost(backend_);
  if (state_ == State::kClosed) return;
  if (dedicated_) {
    // Never retried: the client holding it gets the error and hands it back; an idle one is
    // dropped from the pool now.
    state_ = State::kClosed;
    uv_timer_stop(&retry_timer_);
    if (!held_) worker_.release_dedicated(this, false);
    return;
  }
  // Exponential backoff with full jitter: many workers reconnecting to one backend that just
  // came back must not arrive in lockstep.
  int shift = std::min(failures_ - 1, 16);
  uint64_t cap = static_cast<uint64_t>(worker_.shared().cfg.timeouts.backend_retry_max_ms);
  uint64_t delay = std::min<uint64_t>(cap, static_cast<uint64_t>(kBaseRetryMs) << shift);
  delay = delay / 2 + worker_.random() % (delay / 2 + 1);
  uv_timer_start(&retry_timer_, on_retry, delay, 0);
}

void BackendConn::on_retry(uv_timer_t* t) {
  auto* self = static_cast<BackendConn*>(t->data);
  self->worker_.shared().backend_stats[self->backend_].reconnects.fetch_add(1);
  self->connect();
}

void BackendConn::answer_pending(std::string_view reply) {
  Ring<Pending> pending;
  std::swap(pending, inflight_);
  while (!pending.empty()) {
    Pending p = pending.front();
    pending.pop_front();
    if (p.sink != nullptr) p.sink->on_backend_reply(p.cookie, reply);
  }
}

void BackendConn::close_handles() {
  uv_timer_stop(&retry_timer_);
  uv_timer_stop(&connect_timer_);
  auto close = [this](uv_handle_t* h) {
    if (!uv_is_closing(h)) {
      ++open_handles_;
      uv_close(h, on_handle_closed);
    }
  };
  if (tcp_open_) close(reinterpret_cast<uv_handle_t*>(&tcp_));
  close(reinterpret_cast<uv_handle_t*>(&retry_timer_));
  close(reinterpret_cast<uv_handle_t*>(&connect_timer_));
}

void BackendConn::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<BackendConn*>(h->data);
  if (h == reinterpret_cast<uv_handle_t*>(&self->tcp_)) self->tcp_open_ = false;
  if (--self->open_handles_ == 0 && self->disposing_) self->worker_.backend_disposed(self);
}

void BackendConn::close_for_shutdown() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kReady) {
    worker_.shared().backend_stats[backend_].connections_up.fetch_sub(1);
    if (pooled()) worker_.shared().backend_stats[backend_].pool_up.fetch_sub(1);
  }
  state_ = State::kClosed;
  close_handles();
  answer_pending("-ERR Lockstep is shutting down\r\n");
}

void BackendConn::dispose(std::string_view reason) {
  if (disposing_) return;
  disposing_ = true;
  if (state_ == State::kReady) worker_.shared().backend_stats[backend_].connections_up.fetch_sub(1);
  state_ = State::kClosed;
  close_handles();
  std::string reply =
      fmt::format("-ERR backend {} ({}) unavailable: {}\r\n", info_.name, info_.address, reason);
  answer_pending(reply);
  if (open_handles_ == 0) worker_.backend_disposed(this);
}

}  // namespace lockstep::server
