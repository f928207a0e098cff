// Client connections: parse requests, route them, and answer in request order (client.h).
//
// Every request takes a reply slot in a FIFO (reply_queue.h). When the FIFO is empty a reply
// skips the slot and goes straight to the output buffer (the common case for non-pipelined
// clients); otherwise completed slots at the head are appended to it in order.
#include "server/net/client.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>

#include "server/commands/handlers.h"
#include "server/net/backpressure.h"
#include "server/net/client_blocking.h"
#include "server/net/worker.h"
#include "server/txn/client_txn.h"

namespace lockstep::server {
namespace {

uint64_t make_cookie(uint64_t seq, size_t part) {
  return (seq << 16) | part;
}

std::string format_addr(const sockaddr* sa) {
  char host[64] = "?";
  if (sa->sa_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(s6, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(s6->sin6_port));
  }
  if (sa->sa_family == AF_INET) {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
    uv_ip4_name(s4, host, sizeof(host));
    return fmt::format("{}:{}", host, ntohs(s4->sin_port));
  }
  return "?";
}

}  // namespace

Client::Client(Worker& worker, uint64_t id)
    : worker_(worker), id_(id), parser_(&worker.shared().limits, worker.parser_scratch()) {
  set_user(worker.shared().acl->initial_user());
}

Client::~Client() {
  worker_.shared().registry.remove(id_);
}

SharedState& Client::shared() {
  return worker_.shared();
}

bool Client::open(int fd) {
  uv_tcp_init(worker_.loop(), &tcp_);
  tcp_.data = this;
  if (uv_tcp_open(&tcp_, fd) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
    closing_ = true;
    return false;
  }
  fd_ = fd;
  uv_tcp_nodelay(&tcp_, 1);
  int len = sizeof(peer_);
  uv_tcp_getpeername(&tcp_, &peer_.sa, &len);
  created_ms_ = worker_.now_ms();
  last_interaction_ms_.store(created_ms_, std::memory_order_relaxed);
  worker_.shared().registry.add(id_, this);
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
  return true;
}

// --- Identity -------------------------------------------------------------------------------

void Client::set_protocol(int protocol) {
  // RESP3 clients use RESP3 backend connections from now on, so every reply they get is produced
  // in RESP3 by Redis itself (dispatch held this request until earlier replies were complete).
  if (protocol_ == protocol) return;
  if (auto* txn = find_part<ClientTxn>()) txn->protocol_changed(protocol);
  protocol_ = protocol;
}

std::string Client::user_name() const {
  const acl::User* u = user();
  return u ? std::string(u->name()) : "default";
}

bool Client::from_loopback() const {
  if (peer_.sa.sa_family == AF_INET) return (ntohl(peer_.v4.sin_addr.s_addr) >> 24) == 127;
  if (peer_.sa.sa_family == AF_INET6) {
    const in6_addr& a = peer_.v6.sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return peer_.sa.sa_family == AF_UNIX;
}

std::string Client::peer_text() const {
  return format_addr(&peer_.sa);
}

std::string Client::local_text() const {
  // Looked up when asked for rather than stored per connection.
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) != 0) return "?";
  return format_addr(reinterpret_cast<const sockaddr*>(&local));
}

const Client::Names& Client::names() const {
  static const Names kEmpty;
  return names_ ? *names_ : kEmpty;
}

Client::Names& Client::mutable_names() {
  if (!names_) names_ = std::make_unique<Names>();
  return *names_;
}

uint32_t Client::subscriptions() const {
  return nsub_[0].load(std::memory_order_relaxed) + nsub_[1].load(std::memory_order_relaxed) +
         nsub_[2].load(std::memory_order_relaxed);
}

std::string Client::info_line(bool same_worker) const {
  const auto now = worker_.now_ms();
  const proxy::CommandInfo* last = last_cmd_.load(std::memory_order_relaxed);
  const Names& n = names();
  const size_t pending = same_worker && write_in_flight_ ? pending_write_->data.size() : 0;
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} "
      "multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs={} rbp=0 obl={} oll={} omem={} "
      "tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}\n",
      id_, peer_text(), local_text(), fd_, n.name, (now - created_ms_) / 1000,
      (now - last_interaction_ms()) / 1000, subscribed() ? "P" : "N",
      nsub_[0].load(std::memory_order_relaxed), nsub_[1].load(std::memory_order_relaxed),
      nsub_[2].load(std::memory_order_relaxed), same_worker ? in_.size() : 0,
      same_worker ? in_.capacity() : 0, same_worker ? out_.size() : 0,
      same_worker ? replies_.size() : 0, same_worker ? out_.capacity() + pending : 0,
      last ? last->name : "NULL", user_name(), protocol_.load(), n.lib_name, n.lib_ver);
}

// --- Reading and dispatch -------------------------------------------------------------------

void Client::on_alloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  // All clients of a worker read into one shared buffer; only a request that is still
  // incomplete after a read is copied into the client's own buffer. Idle clients own no buffer.
  auto* self = static_cast<Client*>(h->data);
  *buf = uv_buf_init(self->worker_.read_buffer(), Worker::kReadBufferSize);
}

void Client::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Client*>(s->data);
  if (nread == 0) return;
  if (nread < 0) {
    self->close();
    return;
  }
  auto n = static_cast<size_t>(nread);
  self->worker_.stamp_io_time();
  self->worker_.shared().stats.net_input_bytes.fetch_add(n, std::memory_order_relaxed);
  self->last_interaction_ms_.store(self->worker_.now_ms(), std::memory_order_relaxed);
  if (self->in_.empty()) {
    size_t used = self->process(buf->base, n);
    if (used < n && !self->closing_ && !self->close_when_flushed_)
      self->in_.assign(buf->base + used, n - used);
  } else {
    self->in_.append(buf->base, n);
    self->reparse_held_input();
  }
  self->update_backpressure();
}

void Client::reparse_held_input() {
  const size_t used = process(in_.data(), in_.size());
  in_.erase(0, used);
  if (in_.empty() && in_.capacity() > ReplyQueue::kShrinkAbove) std::string().swap(in_);
}

size_t Client::process(const char* data, size_t size) {
  size_t off = 0;
  while (off < size && !closing_ && !close_when_flushed_ && !read_paused_ && !barrier_ &&
         !held_for_pause_) {
    auto st = parser_.parse(data + off, size - off, !authenticated_);
    if (st == resp::RequestParser::Status::kNeedMore) break;
    if (st == resp::RequestParser::Status::kError) {
      protocol_error(parser_.error());
      return size;
    }
    std::string_view raw(data + off, parser_.consumed());
    const size_t consumed = parser_.consumed();
    auto args = parser_.args();
    if (args.empty()) {
      off += consumed;
      continue;
    }
    bool done;
    if (parser_.inline_request()) {
      // Inline text cannot be forwarded as is; re-encode it as a RESP command. (Its own buffer:
      // dispatch may use the worker's encode buffer for sub-requests.)
      std::string encoded;
      resp::append_command(encoded, args);
      done = dispatch(args, encoded);
    } else {
      done = dispatch(args, raw);
    }
    if (!done) break;  // parsed again when the barrier lifts
    off += consumed;
    worker_.shared().stats.commands_processed.fetch_add(1, std::memory_order_relaxed);
    update_backpressure();
  }
  return off;
}

void Client::protocol_error(std::string_view message) {
  worker_.shared().stats.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("client {} protocol error: {}", id_, message);
  std::string err = "ERR ";
  err.append(message);
  reply_error(err);
  stop_reading_and_close_when_flushed();
}

void Client::stop_reading_and_close_when_flushed() {
  close_when_flushed_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  mark_dirty();
}

bool Client::dispatch(std::span<const std::string_view> args, std::string_view raw) {
  const proxy::Plan& plan = worker_.router().route(args, worker_.topology().slots);
  // CLIENT REPLY OFF/SKIP: every reply of this request is dropped, errors included; CLIENT REPLY
  // itself is silenced while OFF too (only ON answers, see its handler).
  const bool reply_control =
      plan.cmd != nullptr && (plan.cmd->traits & proxy::kTraitReplyControl) != 0;
  cur_.suppress = reply_mode_ != ReplyMode::kOn;
  if (reply_mode_ == ReplyMode::kSkipNext && !reply_control) reply_mode_ = ReplyMode::kOn;
  struct ClearSuppress {
    Client* c;
    ~ClearSuppress() { c->cur_.suppress = false; }
  } clear_suppress{this};
  if (plan.kind == proxy::Plan::Kind::kError) {
    refuse(plan, args.size());
    return true;
  }
  if (!admitted(plan, args)) return true;
  // The transaction commands, and everything MULTI queues (all but them, RESET and QUIT), are
  // the transaction's business alone: not paused, monitored or counted as they arrive.
  const Request r{plan, args, raw};
  if ((plan.cmd->traits & proxy::kTraitTxnControl) != 0) return run_handler(r);
  if (ClientTxn* txn = find_part<ClientTxn>();
      txn != nullptr && txn->in_multi() && (plan.cmd->traits & proxy::kTraitRunsInMulti) == 0) {
    txn->queue(*this, r);
    return true;
  }
  switch (gate(plan)) {
    case Gate::kRun:
      break;
    case Gate::kWait:
      return false;
    case Gate::kAnswered:
      return true;
  }
  // As Redis: administrative commands are not shown, scripts are (despite skip_monitor).
  SharedState& sh = worker_.shared();
  if (sh.monitors.active() &&
      ((plan.cmd->traits & proxy::kTraitScript) != 0 ||
       (plan.cmd->flags & (proxy::kFlagSkipMonitor | proxy::kFlagAdmin)) == 0))
    sh.monitors.publish(MonitorFeed::format(args, peer_text()));
  last_cmd_.store(plan.cmd, std::memory_order_relaxed);
  cur_.cmd = plan.cmd;
  cur_.start_us = worker_.io_now_us();
  cur_.argc = static_cast<uint32_t>(args.size());
  struct Clear {  // whatever path the request takes, later replies are not its replies
    Client* c;
    ~Clear() { c->cur_.cmd = nullptr; }
  } clear{this};
  if (plan.blocking) {
    block_on(plan.backend, raw);
    return true;
  }
  return run_handler(r);
}

inline bool Client::run_handler(const Request& r) {
  if (Handler h = worker_.handlers().find(*r.plan.cmd)) {
    h(*this, r);
    if (parse_again_) {
      parse_again_ = false;
      return false;
    }
  } else {
    serve_by_route(r);
  }
  return true;
}

void Client::refuse(const proxy::Plan& plan, size_t nargs) {
  if (plan.cmd != nullptr)  // known but refused (arity, CROSSSLOT ...): Redis' rejected_calls
    worker_.counters(plan.cmd->id).add_rejected();
  if (auto* txn = find_part<ClientTxn>(); txn != nullptr && txn->in_multi()) {
    // MSET with a key but no value fails only when EXEC runs it, as in Redis; anything else
    // refused while queueing dooms the transaction.
    if (txn->queue_runtime_error(*this, plan, nargs)) return;
    txn->flag_error();
  }
  reply_error(plan.error);
}

inline bool Client::admitted(const proxy::Plan& plan, std::span<const std::string_view> args) {
  auto flag_txn = [this] {
    if (auto* txn = find_part<ClientTxn>()) txn->flag_error();
  };
  if (!authenticated_ && (plan.cmd->flags & proxy::kFlagNoAuth) == 0) {
    flag_txn();
    reply_error("NOAUTH Authentication required.");
    return false;
  }
  // LOCKSTEP's own access rule (admin_password / loopback) replaces ACL for admin connections.
  const acl::User* u = user();
  if (u == nullptr || (admin_ && plan.cmd->name == "lockstep")) return true;
  const acl::Result access = acl::check(*u, *plan.cmd, args);
  if (access.allowed()) return true;
  worker_.counters(plan.cmd->id).add_rejected();
  worker_.shared().stats.acl_denied.fetch_add(1, std::memory_order_relaxed);
  flag_txn();
  reply_error(access.error());
  return false;
}

inline Client::Gate Client::gate(const proxy::Plan& plan) {
  const uint16_t traits = plan.cmd->traits;
  // A protocol switch moves this client to other backend connections: its earlier requests
  // must have been answered first, or the new connection could overtake them.
  if ((traits & proxy::kTraitProtocolSwitch) != 0 && !replies_.empty()) {
    barrier_ = true;
    return Gate::kWait;
  }
  // RESP2 subscribed mode allows only these (Redis' rule and text); RESP3 allows everything.
  if (protocol() < 3 && subscribed() && (traits & proxy::kTraitSubscribedOk) == 0) {
    reply_error(
        fmt::format("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                    "PING / QUIT / RESET are allowed in this context",
                    plan.cmd->name));
    return Gate::kAnswered;
  }
  // A command that blocks the connection (BLPOP, XREAD BLOCK, WAIT) runs alone, as it does on one
  // Redis connection: after every earlier reply, and nothing after it until it completes.
  if ((plan.blocking || (traits & proxy::kTraitExclusive) != 0) && !replies_.empty()) {
    barrier_ = true;
    return Gate::kWait;
  }
  // CLIENT PAUSE: writes (or everything) wait until the pause ends, in order. As Redis, WRITE
  // pauses what may write or replicate, including scripts that do not declare themselves
  // read-only.
  const ClientPause& pause = worker_.shared().pause;
  if (pause.set() && plan.cmd->name != "client|unpause") {
    const bool writes = (plan.cmd->flags & (proxy::kFlagWrite | proxy::kFlagMayReplicate)) != 0 ||
                        (traits & (proxy::kTraitUndeclaredWrite | proxy::kTraitReplicates)) != 0;
    if (pause.holds(ClientPause::now_ms(), writes)) {
      if (!held_for_pause_) {
        held_for_pause_ = true;
        worker_.hold_for_pause(this);
      }
      return Gate::kWait;
    }
  }
  return Gate::kRun;
}

// --- The data path --------------------------------------------------------------------------

void Client::serve_by_route(const Request& r) {
  const proxy::Plan& plan = r.plan;
  switch (plan.kind) {
    case proxy::Plan::Kind::kSingle:
    case proxy::Plan::Kind::kAny: {
      if (worker_.isolation() != Isolation::kNone && ClientTxn::guarded(*this, r)) return;
      forward(plan.kind == proxy::Plan::Kind::kSingle ? plan.backend : any_backend(), r.raw);
      return;
    }
    case proxy::Plan::Kind::kFanout:
      fan_out(*plan.cmd, r.raw);
      return;
    case proxy::Plan::Kind::kSplit:
      if (plan.cmd->route == proxy::Route::kSplitMsetnx) return ClientTxn::msetnx(*this, r);
      if (worker_.isolation() != Isolation::kNone && ClientTxn::guarded(*this, r)) return;
      split(plan, r.args);
      return;
    case proxy::Plan::Kind::kLocal:
      reply_error(fmt::format("ERR '{}' has no local handler in Lockstep", plan.cmd->name));
      return;
    case proxy::Plan::Kind::kError:
      return;
  }
}

void Client::send_part(int backend, uint64_t seq, size_t part, std::string_view request) {
  // A backend that is down answers with the reason instead of queueing behind a dead socket.
  send_on(worker_.backend_for(backend, id_, protocol()), seq, part, request);
}

void Client::send_on(BackendConn& conn, uint64_t seq, size_t part, std::string_view request) {
  ++replies_.at(seq).waiting;
  ++inflight_parts_;
  const uint64_t cookie = make_cookie(seq, part);
  if (!conn.send(this, cookie, request))
    worker_.defer_reply(this, cookie, conn.unavailable_error());
}

Job& Client::start_job(std::unique_ptr<Job> job, uint64_t& seq) {
  ReplyQueue::Slot& s = new_slot(seq);
  s.job = std::move(job);
  return *s.job;
}

void Client::expect_parts(uint64_t seq, size_t n) {
  ReplyQueue::Slot& s = replies_.at(seq);
  s.waiting += static_cast<uint32_t>(n);
  inflight_parts_ += static_cast<uint32_t>(n);
  if (s.waiting == 0) complete_slot(seq);
}

Job* Client::job_at(uint64_t seq) {
  return replies_.contains(seq) ? replies_.at(seq).job.get() : nullptr;
}

void Client::job_progressed(uint64_t seq) {
  if (!replies_.contains(seq)) return;
  ReplyQueue::Slot& s = replies_.at(seq);
  if (s.job && s.waiting == 0 && s.job->done()) {
    complete_slot(seq);
    update_backpressure();  // lifts the barrier EXEC set, if nothing else is outstanding
  }
}

void Client::forward(int backend, std::string_view raw) {
  uint64_t seq;
  new_slot(seq);
  send_part(backend, seq, 0, raw);
}

int Client::any_backend() {
  // Start from a per-client backend so keyless traffic spreads, and skip backends known down.
  const int n = worker_.backend_count();
  const int first = static_cast<int>(id_ % static_cast<uint64_t>(n));
  for (int i = 0; i < n; ++i) {
    int b = (first + i) % n;
    if (!worker_.backend_for(b, id_, protocol()).failed_recently()) return b;
  }
  return first;
}

void Client::forward_any(std::string_view raw) {
  forward(any_backend(), raw);
}

namespace {
// Split and fan-out replies combined by ReplyMerge.
class MergeJob final : public Job {
 public:
  proxy::ReplyMerge merge;
  void on_reply(Client&, uint64_t, size_t part, std::string_view reply) override {
    merge.add(part, reply);
  }
  bool done() const override { return merge.complete(); }
  void finish(std::string& out) override { merge.finish(out); }
};
}  // namespace

void Client::fan_out(const proxy::CommandInfo& cmd, std::string_view raw) {
  const int n = worker_.backend_count();
  auto job = std::make_unique<MergeJob>();
  job->merge.start(proxy::ReplyMerge::kind_for(cmd.route), static_cast<size_t>(n), 0,
                   worker_.random());
  uint64_t seq;
  start_job(std::move(job), seq);
  for (int b = 0; b < n; ++b) send_part(b, seq, static_cast<size_t>(b), raw);
}

void Client::split(const proxy::Plan& plan, std::span<const std::string_view> args) {
  const bool mset = plan.cmd->route == proxy::Route::kSplitMset;
  const bool mget = plan.cmd->route == proxy::Route::kSplitMget;
  auto job = std::make_unique<MergeJob>();
  const size_t total = mset ? (args.size() - 1) / 2 : args.size() - 1;
  job->merge.start(proxy::ReplyMerge::kind_for(plan.cmd->route), plan.nparts, total);
  if (mget) {
    for (size_t p = 0; p < plan.nparts; ++p)
      for (uint32_t k : plan.parts[p].keys) job->merge.positions(p).push_back(k - 1);
  }
  uint64_t seq;
  start_job(std::move(job), seq);
  std::string& buf = worker_.encode_buffer();
  for (size_t p = 0; p < plan.nparts; ++p) {
    const auto& part = plan.parts[p];
    buf.clear();
    resp::append_array_header(buf, static_cast<int64_t>(1 + part.keys.size() * (mset ? 2 : 1)));
    resp::append_bulk(buf, args[0]);
    for (uint32_t k : part.keys) {
      resp::append_bulk(buf, args[k]);
      if (mset) resp::append_bulk(buf, args[k + 1]);
    }
    send_part(part.backend, seq, p, buf);
  }
}

void Client::block_on(int backend, std::string_view raw) {
  if (worker_.backend_for(backend, id_, protocol()).failed_recently()) {
    forward(backend, raw);  // answered at once with the reason the backend is down
    return;
  }
  auto& blocking = part<ClientBlocking>();
  if (!blocking.begin(*this)) return;  // over limits.max_blocked_clients: answered
  uint64_t seq;
  new_slot(seq);
  send_on(blocking.connect(*this, backend), seq, 0, raw);
  barrier_ = true;  // nothing else runs on this client until the blocking reply is in
}

// --- Replies --------------------------------------------------------------------------------

void Client::reply(std::string_view bytes) {
  if (replies_.empty()) {
    if (!cur_.suppress) out_.append(bytes);
    if (cur_.cmd != nullptr) record(cur_, bytes);
  } else {
    uint64_t seq;
    ReplyQueue::Slot& s = new_slot(seq);
    s.data.assign(bytes);
    s.ready = true;
  }
  mark_dirty();
}

void Client::reply_error(std::string_view message) {
  // Errors of requests that did not run (no command to record them under) count here.
  if (cur_.cmd == nullptr) worker_.note_error_reply(id_, nullptr, message);
  std::string buf;
  resp::append_error(buf, message);
  reply(buf);
}

uint64_t Client::open_external_slot() {
  uint64_t seq;
  ++new_slot(seq).waiting;  // answered by deliver_external
  return seq;
}

void Client::deliver_external(uint64_t seq, std::string_view reply) {
  if (closing_ || !replies_.contains(seq)) return;
  deliver(seq, 0, reply);
  mark_dirty();
}

void Client::deliver_monitor_line(std::string_view line) {
  if (closing_ || close_when_flushed_) return;
  reply(line);  // a status line in RESP2 and RESP3 alike
}

void Client::deliver_push(std::string_view message) {
  if (closing_ || close_when_flushed_) return;
  if (protocol() >= 3) {
    // RESP3 marks pub/sub messages as pushes; the rest of the frame is the same.
    std::string push(message);
    push[0] = '>';
    reply(push);
  } else {
    reply(message);
  }
}

void Client::on_backend_reply(uint64_t cookie, std::string_view reply) {
  --inflight_parts_;
  if (closing_) {
    if (removable()) worker_.client_closed(this);
    return;
  }
  deliver(cookie >> 16, cookie & 0xffff, reply);
}

void Client::deliver(uint64_t seq, size_t part, std::string_view reply) {
  ReplyQueue::Slot& s = replies_.at(seq);
  --s.waiting;
  if (s.job) {
    s.job->on_reply(*this, seq, part, reply);  // may send further parts of this slot
    if (s.waiting == 0 && s.job->done()) complete_slot(seq);
    return;
  }
  if (replies_.is_head(seq)) {
    // The head was waiting for exactly this reply: no need to park it in the slot.
    if (!s.meta.suppress) out_.append(reply);
    if (s.meta.cmd != nullptr) record(s.meta, reply);
    replies_.pop_head();
    drain_ready();
    mark_dirty();
    return;
  }
  s.data.assign(reply);
  s.ready = true;
}

void Client::complete_slot(uint64_t seq) {
  ReplyQueue::Slot& s = replies_.at(seq);
  if (s.job) {
    s.data.clear();
    s.job->finish(s.data);
    s.job.reset();
  }
  s.ready = true;
  if (replies_.is_head(seq)) {
    drain_ready();
    mark_dirty();
  }
}

void Client::drain_ready() {
  replies_.drain([this](ReplyQueue::Slot& s) {
    if (!s.meta.suppress) out_.append(s.data);
    if (s.meta.cmd != nullptr) record(s.meta, s.data);
  });
}

void Client::mark_dirty() {
  if (!dirty_) {
    dirty_ = true;
    worker_.mark_dirty(this);
  }
}

void Client::update_backpressure() {
  if (closing_ || close_when_flushed_) return;
  if (barrier_ && replies_.empty()) {
    barrier_ = false;
    if (auto* b = find_part<ClientBlocking>(); b != nullptr && b->holding())
      b->release(*this, true);
    if (!in_.empty() && !read_paused_) reparse_held_input();
  }
  const auto& lim = worker_.shared().cfg.limits;
  const BackpressureLimits limits{static_cast<size_t>(lim.client_max_inflight),
                                  static_cast<size_t>(lim.client_max_queued_bytes)};
  if ((barrier_ || held_for_pause_) && held_input_over(in_.size(), limits)) {
    spdlog::warn("closing client {}: {} bytes queued behind a blocked command (limit {})", id_,
                 in_.size(), lim.client_max_queued_bytes);
    close();
    return;
  }
  const size_t queued = out_.size() + (write_in_flight_ ? pending_write_->data.size() : 0);
  switch (read_action(read_paused_, replies_.size(), queued, limits)) {
    case ReadAction::kNone:
      break;
    case ReadAction::kPause:
      read_paused_ = true;
      if (reading_) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
        reading_ = false;
      }
      break;
    case ReadAction::kResume:
      read_paused_ = false;
      if (!in_.empty()) reparse_held_input();
      if (!read_paused_ && !closing_ && !close_when_flushed_ && !reading_) {
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
        reading_ = true;
      }
      break;
  }
}

void Client::resume_after_pause() {
  held_for_pause_ = false;
  if (closing_ || in_.empty()) return;
  reparse_held_input();
  update_backpressure();
  mark_dirty();
}

// --- Writing and closing --------------------------------------------------------------------

void Client::flush() {
  dirty_ = false;
  if (closing_) return;
  if (!write_in_flight_ && !out_.empty()) {
    uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
      close();
      return;
    }
    worker_.shared().stats.net_output_bytes.fetch_add(static_cast<uint64_t>(n),
                                                      std::memory_order_relaxed);
    if (static_cast<size_t>(n) == out_.size()) {
      out_.clear();
      if (out_.capacity() > ReplyQueue::kShrinkAbove) std::string().swap(out_);
    } else {
      // The socket is full: hand the rest to libuv and keep collecting new replies in out_.
      if (!pending_write_) pending_write_ = std::make_unique<PendingWrite>();
      std::string& rest_data = pending_write_->data;
      rest_data.assign(out_, static_cast<size_t>(n));
      out_.clear();
      uv_buf_t rest = uv_buf_init(rest_data.data(), static_cast<unsigned>(rest_data.size()));
      pending_write_->req.data = this;
      write_in_flight_ = true;
      if (uv_write(&pending_write_->req, reinterpret_cast<uv_stream_t*>(&tcp_), &rest, 1,
                   on_write) != 0) {
        write_in_flight_ = false;
        close();
        return;
      }
    }
  }
  update_backpressure();
  if (!write_in_flight_ && out_.empty() && (close_when_flushed_ && replies_.empty()))
    close();
  else if (draining_ && drained())
    close();
}

void Client::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<Client*>(req->data);
  self->write_in_flight_ = false;
  std::string& data = self->pending_write_->data;
  self->worker_.shared().stats.net_output_bytes.fetch_add(data.size(), std::memory_order_relaxed);
  if (data.capacity() > ReplyQueue::kShrinkAbove)
    std::string().swap(data);
  else
    data.clear();
  if (status != 0) {
    self->close();
    return;
  }
  self->flush();
}

// During a drain a client is closed once it owes nothing and has sent nothing more: requests
// still in the kernel's receive buffer were sent before the signal and deserve their replies.
bool Client::drained() const {
  if (!idle()) return false;
  int pending = 0;
  return ioctl(fd_, FIONREAD, &pending) != 0 || pending == 0;
}

void Client::begin_drain() {
  draining_ = true;
  if (drained()) close();
}

void Client::close() {
  if (closing_) return;
  closing_ = true;
  // Replies to what is still in flight are dropped from now on: a transaction mid-commit hands
  // itself to the resolvers instead of waiting out its lease.
  replies_.for_each([](ReplyQueue::Slot& s) {
    if (s.job && !s.job->done()) s.job->abandon();
  });
  // Each part gives back what it holds: a blocked command's connection (closing it is the only
  // way to stop the command on the backend), WATCH pins, subscriptions, lock waiters, ...
  for (auto& p : parts_)
    if (p) p->close(*this);
  worker_.shared().stats.connected_clients.fetch_sub(1, std::memory_order_relaxed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Client::on_close(uv_handle_t* h) {
  auto* self = static_cast<Client*>(h->data);
  self->handle_closed_ = true;
  self->replies_.release();
  std::string().swap(self->out_);
  std::string().swap(self->in_);
  if (self->removable()) self->worker_.client_closed(self);
}

// --- Statistics -----------------------------------------------------------------------------

void Client::record(const RequestMeta& meta, std::string_view reply) {
  SharedState& sh = worker_.shared();
  const proxy::CommandInfo* cmd = meta.cmd;
  const uint64_t now_us = worker_.io_now_us();
  const uint64_t dur = now_us > meta.start_us ? now_us - meta.start_us : 0;
  const bool error = resp::is_error_reply(reply);
  worker_.counters(cmd->id).add_call(dur, error);
  if (error) worker_.note_error_reply(id_, cmd, reply);
  // Time spent blocked (BLPOP, WAIT ...) is waiting, not slowness: Redis leaves it out too.
  if ((cmd->flags & proxy::kFlagBlocking) != 0 || (cmd->traits & proxy::kTraitExclusive) != 0)
    return;
  const auto& obs = sh.cfg.slowlog;
  if (obs.slower_than_us >= 0 && dur >= static_cast<uint64_t>(obs.slower_than_us)) {
    // The arguments were forwarded without being copied; the slow log keeps the command name
    // and how many arguments followed.
    SlowLogEntry e;
    e.unix_time = static_cast<int64_t>(time(nullptr));
    e.duration_us = dur;
    std::string name(cmd->name);
    std::replace(name.begin(), name.end(), '|', ' ');
    // "slowlog len" already names two of the arguments.
    const uint32_t named = cmd->name.find('|') == std::string_view::npos ? 1 : 2;
    e.args.push_back(std::move(name));
    if (meta.argc > named)
      e.args.push_back(fmt::format("... ({} more arguments)", meta.argc - named));
    e.client_addr = peer_text();
    {
      std::lock_guard lock(sh.registry.mutex());
      e.client_name = names().name;
    }
    sh.slowlog.add(std::move(e), static_cast<size_t>(obs.max_len));
  }
  const int threshold = sh.cfg.latency.monitor_threshold_ms;
  if (threshold > 0 && dur / 1000 >= static_cast<uint64_t>(threshold))
    sh.latency.add(static_cast<int64_t>(time(nullptr)), dur / 1000);
}

}  // namespace lockstep::server
