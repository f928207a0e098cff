// One pipelined connection to one backend. The shared ones carry the requests of all of a
// worker's clients that map to the backend; others are lent to one client at a time (blocking
// commands, WAIT, WATCH pins) or owned by a service (the lock engine, the pub/sub hub, the
// transaction resolver). Replies come back in request order, so a FIFO of pending entries says
// whose reply each one is; the reply bytes are framed by resp::ReplyScanner and handed on as
// they are (no parsing, no re-encoding).
//
// Handshake (AUTH, HELLO 3, SELECT) is queued ahead of every new connection's requests and its
// replies are checked here. A failure answers everything pending with the backend's
// unavailable error and reconnects with jittered exponential backoff (dedicated connections are
// not retried: the client holding one gets the error).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lockstep/common/ring.h"
#include "lockstep/resp/resp.h"
#include "server/net/conn_observer.h"
#include "server/net/reply_sink.h"
#include "server/net/topology.h"

namespace lockstep::server {

class Worker;

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

}  // namespace lockstep::server
