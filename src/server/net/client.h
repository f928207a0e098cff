// One client connection: a socket, the request parser, the reply queue and the parts a client
// grows when it uses a feature (client_part.h).
//
//   socket bytes -> RequestParser -> dispatch: checks (auth, ACL, barriers, pause, MULTI)
//        -> a handler of the command table (commands/handlers.h) or the data path by route:
//           forward (one backend, bytes as sent) | split + merge | fan-out | blocking
//   backend replies -> reply slots (reply_queue.h) -> out_ -> one write per loop turn
//
// Requests run in order; a request that must see every earlier reply first (a protocol switch,
// a command that blocks the connection, WATCH/EXEC on pinned connections) sets the barrier and
// is parsed again once the queue is empty. What the client may hold is bounded (backpressure.h).
//
// Threads: a client lives on its worker's thread. Other threads only read what CLIENT LIST
// shows (atomics, and the name under the registry's mutex) and hand it replies through
// Worker::post_task.
#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "lockstep/acl/acl.h"
#include "lockstep/proxy/router.h"
#include "lockstep/resp/resp.h"
#include "server/net/client_part.h"
#include "server/net/reply_queue.h"
#include "server/net/reply_sink.h"

namespace lockstep::server {

class Worker;
class BackendConn;
struct SharedState;

// One parsed request, as the handlers see it.
struct Request {
  const proxy::Plan& plan;
  std::span<const std::string_view> args;
  std::string_view raw;  // the request's RESP bytes (inline requests re-encoded)
};

class Client final : public ReplySink {
 public:
  Client(Worker& worker, uint64_t id);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  bool open(int fd);
  void on_backend_reply(uint64_t cookie, std::string_view reply) override;
  void flush();
  void close();
  void begin_drain();

  // --- Identity and session (read by handlers) -----------------------------------------------
  uint64_t id() const { return id_; }
  Worker& worker() { return worker_; }
  const Worker& worker() const { return worker_; }
  SharedState& shared();
  int protocol() const { return protocol_.load(std::memory_order_relaxed); }
  // HELLO / RESET: later requests use the backend connections of that protocol.
  void set_protocol(int protocol);
  const acl::User* user() const { return user_.load(std::memory_order_relaxed); }
  void set_user(const acl::User* u) {
    user_ = u;
    authenticated_ = u != nullptr;
  }
  std::string user_name() const;
  bool admin() const { return admin_; }
  void set_admin() { admin_ = true; }
  bool from_loopback() const;
  std::string peer_text() const;   // "host:port" of the client
  std::string local_text() const;  // "host:port" it connected to
  // The name and library set by CLIENT SETNAME / SETINFO / HELLO SETNAME. Written and read under
  // the registry's mutex (CLIENT LIST reads them from other workers).
  struct Names {
    std::string name, lib_name, lib_ver;
  };
  const Names& names() const;
  Names& mutable_names();
  // One CLIENT LIST line; call under the registry's mutex. Buffer sizes are only read on the
  // owning worker's thread (`same_worker`), they are not synchronized.
  std::string info_line(bool same_worker) const;
  uint64_t last_interaction_ms() const {
    return last_interaction_ms_.load(std::memory_order_relaxed);
  }
  // Subscription counts (channels, patterns, shard channels), readable from other workers.
  void set_subscription_count(size_t kind, size_t n) {
    nsub_[kind].store(static_cast<uint32_t>(n), std::memory_order_relaxed);
  }
  uint32_t subscriptions() const;
  bool subscribed() const { return subscriptions() > 0; }

  // --- CLIENT REPLY ---------------------------------------------------------------------------
  enum class ReplyMode : uint8_t { kOn, kOff, kSkipNext };
  ReplyMode reply_mode() const { return reply_mode_; }
  void set_reply_mode(ReplyMode m) { reply_mode_ = m; }
  // CLIENT REPLY ON is answered even though it ends an OFF.
  void answer_this_request() { cur_.suppress = false; }

  // --- Replies ------------------------------------------------------------------------------
  void reply(std::string_view bytes);  // a complete reply for the current request
  void reply_ok() { reply("+OK\r\n"); }
  void reply_error(std::string_view message);  // without the leading '-'
  // QUIT and protocol errors: nothing more is read; the connection closes once every reply
  // already owed has been written.
  void stop_reading_and_close_when_flushed();
  // A slot answered later from another thread (deliver_external), e.g. LOCK.* and LOCKSTEP.
  uint64_t open_external_slot();
  void deliver_external(uint64_t seq, std::string_view reply);
  // A pub/sub message or a MONITOR line: queued behind the replies owed so far.
  void deliver_push(std::string_view message);
  void deliver_monitor_line(std::string_view line);

  // --- The data path ------------------------------------------------------------------------
  // Serves a routed request by its plan (single, any, split, fan-out); handlers that only add
  // a side effect (EVAL learning its script, FLUSHALL keeping internal keys) end with it.
  void serve_by_route(const Request& r);
  void forward(int backend, std::string_view raw);
  void forward_any(std::string_view raw);
  int any_backend();
  void fan_out(const proxy::CommandInfo& cmd, std::string_view raw);
  // Sends one part of slot `seq` on this client's shared connection to `backend`. A backend that
  // is down answers with its unavailable error, delivered later in this loop iteration (never
  // from inside this call).
  void send_part(int backend, uint64_t seq, size_t part, std::string_view request);
  void send_on(BackendConn& conn, uint64_t seq, size_t part, std::string_view request);
  // Starts a slot served by a job; the job sends its parts through send_part.
  Job& start_job(std::unique_ptr<Job> job, uint64_t& seq);
  // `n` more replies for slot `seq` come through on_backend_reply from another sender (the
  // pub/sub hub); with none outstanding the slot completes now.
  void expect_parts(uint64_t seq, size_t n);
  Job* job_at(uint64_t seq);
  // A job moved on outside a backend reply (a timer): completes its slot if it is done.
  void job_progressed(uint64_t seq);
  // Later requests wait until every reply owed so far is complete (connections other than the
  // shared ones are in use: a pin, a dedicated connection).
  void hold_later_requests() { barrier_ = true; }
  // From a handler: this request must wait until every reply owed so far is complete; it is
  // parsed (and handled) again then.
  void parse_again_after_replies() {
    barrier_ = true;
    parse_again_ = true;
  }
  bool replies_owed() const { return !replies_.empty(); }

  // --- Parts --------------------------------------------------------------------------------
  template <class T>
  T* find_part() const {
    return static_cast<T*>(parts_[static_cast<size_t>(T::kKind)].get());
  }
  template <class T>
  T& part() {
    auto& p = parts_[static_cast<size_t>(T::kKind)];
    if (!p) p = std::make_unique<T>();
    return static_cast<T&>(*p);
  }

  bool idle() const { return replies_.empty() && out_.empty() && !write_in_flight_; }
  bool drained() const;
  bool closed() const { return closing_; }
  bool removable() const { return handle_closed_ && inflight_parts_ == 0; }

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* h);

  size_t process(const char* data, size_t size);
  void reparse_held_input();
  // False when the request must wait until every earlier reply is complete; it is then parsed
  // again once the queue has drained.
  bool dispatch(std::span<const std::string_view> args, std::string_view raw);
  // Auth and ACL: false when the request was refused (already answered).
  bool admitted(const proxy::Plan& plan, std::span<const std::string_view> args);
  // Barriers, RESP2 subscribed mode and CLIENT PAUSE: whether the request runs now, waits (it
  // is parsed again later) or was refused (answered).
  enum class Gate { kRun, kWait, kAnswered };
  Gate gate(const proxy::Plan& plan);
  // The command's handler, or its route: false when it asked to be parsed again.
  bool run_handler(const Request& r);
  // A request the router refused (unknown, arity, CROSSSLOT ...): answered, counted.
  void refuse(const proxy::Plan& plan, size_t nargs);
  void split(const proxy::Plan& plan, std::span<const std::string_view> args);
  void block_on(int backend, std::string_view raw);
  void deliver(uint64_t seq, size_t part, std::string_view reply);
  ReplyQueue::Slot& new_slot(uint64_t& seq) { return replies_.push(cur_, seq); }
  void complete_slot(uint64_t seq);
  void drain_ready();
  void mark_dirty();
  void update_backpressure();
  void protocol_error(std::string_view message);
  // Counts a finished request in the statistics, slow log and latency monitor.
  void record(const RequestMeta& meta, std::string_view reply);
  void resume_after_pause();

  struct PendingWrite {
    uv_write_t req{};
    std::string data;
  };

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
  ReplyQueue replies_;
  std::string out_;
  std::unique_ptr<PendingWrite> pending_write_;
  // Written rarely: out of line so an idle connection stays small (limits: <= 1 KiB of RSS per
  // idle client, measured by scripts/bench memory).
  std::unique_ptr<Names> names_;
  std::array<std::unique_ptr<ClientPart>, kPartKinds> parts_;
  RequestMeta cur_;  // the request being dispatched (its reply slots inherit it)
  ReplyMode reply_mode_ = ReplyMode::kOn;
  bool held_for_pause_ = false;
  bool write_in_flight_ = false;
  bool read_paused_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_when_flushed_ = false;
  bool handle_closed_ = false;
  bool dirty_ = false;
  bool authenticated_ = false;
  bool admin_ = false;  // sent AUTH admin <admin_password>
  // Set while a request needs every earlier reply first, or while an exclusive request (one
  // that blocks the connection, as in Redis) is in flight: input waits in in_ until no slot is
  // outstanding.
  bool barrier_ = false;
  bool parse_again_ = false;  // set by a handler through parse_again_after_replies()
  bool draining_ = false;
  // nullptr until authenticated; atomic because CLIENT LIST on other workers reads its name.
  std::atomic<const acl::User*> user_{nullptr};
  std::atomic<int> protocol_{2};
  std::atomic<uint32_t> nsub_[3] = {0, 0, 0};
  uint32_t inflight_parts_ = 0;
  uint64_t created_ms_ = 0;
  std::atomic<uint64_t> last_interaction_ms_{0};
  std::atomic<const proxy::CommandInfo*> last_cmd_{nullptr};

  friend class Worker;
};

}  // namespace lockstep::server
