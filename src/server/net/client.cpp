// Client connections: parse requests, route them, and answer in request order.
//
// Every request takes a reply slot in a FIFO. A slot is complete when all its backend parts
// have answered (one for a plain command, several for a split or fan-out); completed slots at
// the head are appended to the output buffer, so pipelined replies keep their order even when
// their commands went to different backends. When the FIFO is empty a reply skips the slot and
// goes straight to the output buffer (the common case for non-pipelined clients).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/ioctl.h>

#include <algorithm>

#include <cstring>

#include "server/consensus/cluster_service.h"
#include "server/lock/lock_service.h"
#include "server/commands/noscript_job.h"
#include "server/pubsub/pubsub_hub.h"
#include "server/commands/script_cache.h"
#include "server/txn/txn_state.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {
constexpr size_t kShrinkAbove = 64 * 1024;

uint64_t make_cookie(uint64_t seq, size_t part) {
  return (seq << 16) | part;
}
}  // namespace

Client::Client(Worker& worker, uint64_t id)
    : worker_(worker), id_(id), parser_(&worker.shared().limits, worker.parser_scratch()) {
  user_ = worker.shared().acl->initial_user();
  authenticated_ = user_.load() != nullptr;
}

Client::~Client() {
  std::lock_guard lock(worker_.shared().registry_mu);
  worker_.shared().registry.erase(id_);
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
  {
    std::lock_guard lock(worker_.shared().registry_mu);
    worker_.shared().registry[id_] = this;
  }
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
  return true;
}

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
    size_t used = self->process(self->in_.data(), self->in_.size());
    self->in_.erase(0, used);
    if (self->in_.empty() && self->in_.capacity() > kShrinkAbove) std::string().swap(self->in_);
  }
  self->update_backpressure();
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

Client::Slot& Client::new_slot(uint64_t& seq) {
  seq = head_seq_ + slots_.size();
  Slot& s = slots_.push_back();
  s.waiting = 0;
  s.ready = false;
  s.cmd = cur_cmd_;
  s.start_us = cur_start_us_;
  s.argc = cur_argc_;
  s.suppress = cur_suppress_;
  s.data.clear();
  s.job.reset();
  return s;
}

void Client::reply(std::string_view bytes) {
  if (slots_.empty()) {
    if (!cur_suppress_) out_.append(bytes);
    if (cur_cmd_ != nullptr) record(cur_cmd_, cur_start_us_, cur_argc_, bytes);
  } else {
    uint64_t seq;
    Slot& s = new_slot(seq);
    s.data.assign(bytes);
    s.ready = true;
  }
  mark_dirty();
}

void Client::reply_error(std::string_view message) {
  // Errors of requests that did not run (no command to record them under) count here.
  if (cur_cmd_ == nullptr) worker_.note_error_reply(id_, nullptr, message);
  std::string buf;
  resp::append_error(buf, message);
  reply(buf);
}

bool Client::dispatch(std::span<const std::string_view> args, std::string_view raw) {
  const auto& topo = worker_.topology();
  const proxy::Plan& plan = worker_.router().route(args, topo.slots);
  // CLIENT REPLY OFF/SKIP: every reply of this request is dropped, errors included; CLIENT REPLY
  // itself is silenced while OFF too (only ON answers, see cmd_client_reply).
  const bool reply_cmd =
      args.size() >= 2 && proxy::iequals(args[0], "client") && proxy::iequals(args[1], "reply");
  cur_suppress_ = reply_mode_ != ReplyMode::kOn;
  if (reply_mode_ == ReplyMode::kSkipNext && !reply_cmd) reply_mode_ = ReplyMode::kOn;
  struct ClearSuppress {
    Client* c;
    ~ClearSuppress() { c->cur_suppress_ = false; }
  } clear_suppress{this};
  if (plan.kind == proxy::Plan::Kind::kError) {
    if (plan.cmd != nullptr) {  // known but refused (arity, CROSSSLOT ...): Redis' rejected_calls
      auto& c = worker_.counters(plan.cmd->id);
      c.rejected.store(c.rejected.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    if (txn_runtime_error(plan, args)) return true;
    txn_flag_error();  // as Redis: a command refused while queueing dooms the transaction
    reply_error(plan.error);
    return true;
  }
  if (!authenticated_ && (plan.cmd->flags & proxy::kFlagNoAuth) == 0) {
    txn_flag_error();
    reply_error("NOAUTH Authentication required.");
    return true;
  }
  // LOCKSTEP's own access rule (admin_password / loopback) replaces ACL for admin connections.
  if (const acl::User* user = user_.load(std::memory_order_relaxed);
      user != nullptr && !(admin_ && plan.cmd->name == "lockstep")) {
    const acl::Result access = acl::check(*user, *plan.cmd, args);
    if (!access.allowed()) {
      auto& c = worker_.counters(plan.cmd->id);
      c.rejected.store(c.rejected.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      worker_.shared().stats.acl_denied.fetch_add(1, std::memory_order_relaxed);
      txn_flag_error();
      reply_error(access.error());
      return true;
    }
  }
  // MULTI queues everything but EXEC/DISCARD/MULTI/WATCH; those five are local commands.
  if (txn_ || plan.kind == proxy::Plan::Kind::kLocal) {
    bool done = true;
    if (txn_dispatch(plan, args, raw, done)) return done;
  }
  // HELLO may switch the protocol, which moves this client to other backend connections: its
  // earlier requests must have been answered first, or the new connection could overtake them.
  if ((plan.cmd->name == "hello" || plan.cmd->name == "reset") && !slots_.empty()) {
    barrier_ = true;
    return false;
  }
  // RESP2 subscribed mode allows only these (Redis' rule and text); RESP3 allows everything.
  if (protocol() < 3 && subscribed()) {
    static constexpr std::string_view kAllowed[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                                    "unsubscribe", "punsubscribe", "sunsubscribe",
                                                    "ping",        "quit",         "reset"};
    if (std::find(std::begin(kAllowed), std::end(kAllowed), plan.cmd->name) == std::end(kAllowed)) {
      reply_error(
          fmt::format("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                      "PING / QUIT / RESET are allowed in this context",
                      plan.cmd->name));
      return true;
    }
  }
  // A command that blocks the connection (BLPOP, XREAD BLOCK, WAIT) runs alone, as it does on one
  // Redis connection: after every earlier reply, and nothing after it until it completes.
  const bool exclusive = plan.blocking || plan.cmd->name == "wait";
  if (exclusive && !slots_.empty()) {
    barrier_ = true;
    return false;
  }
  // CLIENT PAUSE: writes (or everything) wait until the pause ends, in order.
  SharedState& sh = worker_.shared();
  if (sh.pause_until_ms.load(std::memory_order_relaxed) > 0 && plan.cmd->name != "client|unpause") {
    // As Redis: WRITE pauses what may write or replicate, including scripts that do not
    // declare themselves read-only.
    // (Redis' internal may-replicate flag is not in COMMAND's output, hence the names.)
    const std::string_view n = plan.cmd->name;
    const bool may_replicate = n == "eval" || n == "evalsha" || n == "fcall" || n == "publish" ||
                               n == "spublish" || n == "pfcount";
    const bool affected = sh.pause_all.load(std::memory_order_relaxed) || may_replicate ||
                          (plan.cmd->flags & (proxy::kFlagWrite | proxy::kFlagMayReplicate)) != 0;
    const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now().time_since_epoch())
                                               .count());
    if (affected && now < sh.pause_until_ms.load(std::memory_order_relaxed)) {
      if (!held_for_pause_) {
        held_for_pause_ = true;
        worker_.hold_for_pause(this);
      }
      return false;
    }
  }
  // As Redis: administrative commands are not shown, scripts are (despite skip_monitor).
  if (sh.monitors.load(std::memory_order_relaxed) > 0) {
    const std::string_view n = plan.cmd->name;
    const bool script = n == "eval" || n == "evalsha" || n == "eval_ro" || n == "evalsha_ro" ||
                        n == "fcall" || n == "fcall_ro";
    if (script || (plan.cmd->flags & (proxy::kFlagSkipMonitor | proxy::kFlagAdmin)) == 0)
      feed_monitors(args);
  }
  last_cmd_.store(plan.cmd, std::memory_order_relaxed);
  cur_cmd_ = plan.cmd;
  cur_start_us_ = worker_.io_now_us();
  cur_argc_ = static_cast<uint32_t>(args.size());
  struct Clear {  // whatever path the request takes, later replies are not its replies
    Client* c;
    ~Clear() { c->cur_cmd_ = nullptr; }
  } clear{this};
  if (plan.blocking) {
    block_on(plan.backend, raw);
    return true;
  }
  if (plan.cmd->name == "wait") {
    cmd_wait(args, raw);
    return true;
  }
  switch (plan.kind) {
    case proxy::Plan::Kind::kLocal:
      dispatch_local(*plan.cmd, args, raw);
      break;
    case proxy::Plan::Kind::kSingle:
    case proxy::Plan::Kind::kAny: {
      const int backend = plan.kind == proxy::Plan::Kind::kSingle ? plan.backend : any_backend();
      const proxy::CommandInfo* c = plan.cmd;
      const Worker::ScriptCommands& sc = worker_.script_commands();
      if (c == sc.eval || c == sc.eval_ro) ScriptCache::instance().learn(args[1]);
      if (worker_.isolation() > 0 && txn_guarded(plan, args, raw)) break;
      if ((c == sc.evalsha || c == sc.evalsha_ro) && args.size() >= 3 &&
          !ScriptCache::instance().empty()) {
        evalsha(backend, args, raw);
        break;
      }
      forward(backend, raw);
      break;
    }
    case proxy::Plan::Kind::kFanout:
      if ((plan.cmd->name == "flushall" || plan.cmd->name == "flushdb") && args.size() == 2 &&
          !proxy::iequals(args[1], "async") && !proxy::iequals(args[1], "sync")) {
        reply_error("ERR syntax error");
        break;
      }
      cur_flush_arg_ =
          (plan.cmd->name == "flushall" || plan.cmd->name == "flushdb") && args.size() == 2
              ? args[1]
              : std::string_view();
      if (plan.cmd == worker_.script_commands().script_load && args.size() == 3)
        ScriptCache::instance().learn(args[2]);
      if (plan.cmd == worker_.script_commands().script_flush) ScriptCache::instance().clear();
      fan_out(*plan.cmd, raw);
      break;
    case proxy::Plan::Kind::kSplit:
      split(plan, args);
      break;
    case proxy::Plan::Kind::kError:
      break;
  }
  return true;
}

// EVALSHA: forwarded as is; a -NOSCRIPT from a backend that never saw the script is retried
// there once as EVAL when any client sent the body through Lockstep (script_cache.h).
void Client::evalsha(int backend, std::span<const std::string_view> args, std::string_view raw) {
  std::vector<std::string> argv(args.begin(), args.end());
  auto fallback = [argv = std::move(argv)]() -> std::optional<std::string> {
    auto body = ScriptCache::instance().body(argv[1]);
    if (!body) return std::nullopt;
    std::vector<std::string_view> eval{argv[0].size() > 7 ? "EVAL_RO" : "EVAL", *body};
    eval.insert(eval.end(), argv.begin() + 2, argv.end());
    std::string req;
    resp::append_command(req, eval);
    return req;
  };
  uint64_t seq;
  start_job(std::make_unique<NoScriptRetryJob>(backend, std::move(fallback)), seq);
  send_part(backend, seq, 0, raw);
}

void Client::send_part(int backend, uint64_t seq, size_t part, std::string_view request) {
  // A backend that is down answers with the reason instead of queueing behind a dead socket.
  send_on(worker_.backend_for(backend, id_, protocol()), seq, part, request);
}

Job& Client::start_job(std::unique_ptr<Job> job, uint64_t& seq) {
  Slot& s = new_slot(seq);
  s.job = std::move(job);
  return *s.job;
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

namespace {
// FLUSHDB/FLUSHALL through Lockstep: empty Lockstep's database on each backend (never the
// backend's other databases), but keep Lockstep's own keys: fence counters, guard records and
// lock holds must survive, or a later grant could reuse a fence (or a lock be held twice).
// One script, so nothing interleaves between saving, flushing and restoring.
constexpr std::string_view kFlushKeepingInternalLua =
    "local keep = {} local c = '0' repeat "
    "local x = redis.call('SCAN', c, 'MATCH', '__lockstep:*', 'COUNT', 1000) c = x[1] "
    "for _, k in ipairs(x[2]) do keep[#keep+1] = {k, redis.call('DUMP', k), "
    "redis.call('PTTL', k)} end until c == '0' "
    "if ARGV[1] then redis.call('FLUSHDB', ARGV[1]) else redis.call('FLUSHDB') end "
    "for _, e in ipairs(keep) do redis.call('RESTORE', e[1], e[3] > 0 and e[3] or 0, e[2]) end "
    "return redis.status_reply('OK')";
}  // namespace

void Client::fan_out(const proxy::CommandInfo& cmd, std::string_view raw) {
  const int n = worker_.backend_count();
  if (cmd.name == "config|resetstat") {
    // Lockstep's own statistics are reset too: each worker clears the counters it writes.
    SharedState& sh = worker_.shared();
    for (auto* a :
         {&sh.stats.connections_received, &sh.stats.rejected_connections,
          &sh.stats.commands_processed, &sh.stats.auth_failures, &sh.stats.acl_denied,
          &sh.stats.protocol_errors, &sh.stats.net_input_bytes, &sh.stats.net_output_bytes})
      a->store(0);
    for (Worker* w : sh.workers) w->post_task([w] { w->reset_counters(); });
  }
  std::string flush;
  if (cmd.name == "flushall" || cmd.name == "flushdb") {
    std::vector<std::string_view> a = {"EVAL", kFlushKeepingInternalLua, "0"};
    if (cur_flush_arg_.size() > 0) a.push_back(cur_flush_arg_);
    resp::append_command(flush, a);
    raw = flush;
  }
  auto job = std::make_unique<MergeJob>();
  job->merge.start(proxy::ReplyMerge::kind_for(cmd.route), static_cast<size_t>(n), 0,
                   worker_.random());
  uint64_t seq;
  start_job(std::move(job), seq);
  for (int b = 0; b < n; ++b) send_part(b, seq, static_cast<size_t>(b), raw);
}

void Client::split(const proxy::Plan& plan, std::span<const std::string_view> args) {
  if (plan.cmd->route == proxy::Route::kSplitMsetnx) return txn_msetnx(plan, args);
  if (worker_.isolation() > 0 && txn_guarded(plan, args, {})) return;
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

void Client::on_backend_reply(uint64_t cookie, std::string_view reply) {
  --inflight_parts_;
  if (closing_) {
    if (removable()) worker_.client_closed(this);
    return;
  }
  deliver(cookie >> 16, cookie & 0xffff, reply);
}

void Client::deliver(uint64_t seq, size_t part, std::string_view reply) {
  const size_t index = static_cast<size_t>(seq - head_seq_);
  Slot& s = slots_[index];
  --s.waiting;
  if (s.job) {
    s.job->on_reply(*this, seq, part, reply);  // may send further parts of this slot
    if (s.waiting == 0 && s.job->done()) complete_slot(index);
    return;
  }
  if (index == 0) {
    // The head was waiting for exactly this reply: no need to park it in the slot.
    if (!s.suppress) out_.append(reply);
    if (s.cmd != nullptr) record(s.cmd, s.start_us, s.argc, reply);
    slots_.pop_front();
    ++head_seq_;
    drain_ready();
    mark_dirty();
    return;
  }
  s.data.assign(reply);
  s.ready = true;
}

void Client::complete_slot(size_t index) {
  Slot& s = slots_[index];
  if (s.job) {
    s.data.clear();
    s.job->finish(s.data);
    s.job.reset();
  }
  s.ready = true;
  if (index == 0) {
    drain_ready();
    mark_dirty();
  }
}

void Client::drain_ready() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    if (!s.suppress) out_.append(s.data);
    if (s.cmd != nullptr) record(s.cmd, s.start_us, s.argc, s.data);
    if (s.data.capacity() > kShrinkAbove) std::string().swap(s.data);
    slots_.pop_front();
    ++head_seq_;
  }
}

void Client::mark_dirty() {
  if (!dirty_) {
    dirty_ = true;
    worker_.mark_dirty(this);
  }
}

void Client::update_backpressure() {
  if (closing_ || close_when_flushed_) return;
  if (barrier_ && slots_.empty()) {
    barrier_ = false;
    if (!dedicated_.empty()) release_dedicated(true);
    if (!in_.empty() && !read_paused_) {
      size_t used = process(in_.data(), in_.size());
      in_.erase(0, used);
    }
  }
  const auto& lim = worker_.shared().cfg.limits;
  const size_t queued = out_.size() + (write_in_flight_ ? pending_write_->data.size() : 0);
  // While a barrier holds requests back (a blocked command, a pause), unparsed input waits in
  // in_. Reading goes on, as Redis does for a blocked client, so a disconnect is seen at once;
  // past client_max_queued_bytes the client is closed, as Redis closes a client whose query
  // buffer passes its limit (pausing the reads instead would hide a disconnect and leave a
  // blocked command running on the backend for nobody).
  if ((barrier_ || held_for_pause_) &&
      in_.size() >= static_cast<size_t>(lim.client_max_queued_bytes)) {
    spdlog::warn("closing client {}: {} bytes queued behind a blocked command (limit {})", id_,
                 in_.size(), lim.client_max_queued_bytes);
    close();
    return;
  }
  const bool over = slots_.size() >= static_cast<size_t>(lim.client_max_inflight) ||
                    queued >= static_cast<size_t>(lim.client_max_queued_bytes);
  if (over && !read_paused_) {
    read_paused_ = true;
    if (reading_) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      reading_ = false;
    }
  } else if (!over && read_paused_) {
    // Resume only below half of each limit, so a client at the limit does not flap.
    if (slots_.size() <= static_cast<size_t>(lim.client_max_inflight) / 2 &&
        queued <= static_cast<size_t>(lim.client_max_queued_bytes) / 2) {
      read_paused_ = false;
      if (!in_.empty()) {
        size_t used = process(in_.data(), in_.size());
        in_.erase(0, used);
      }
      if (!read_paused_ && !closing_ && !close_when_flushed_ && !reading_) {
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
        reading_ = true;
      }
    }
  }
}

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
      if (out_.capacity() > kShrinkAbove) std::string().swap(out_);
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
  if (!write_in_flight_ && out_.empty() && (close_when_flushed_ && slots_.empty()))
    close();
  else if (draining_ && drained())
    close();
}

void Client::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<Client*>(req->data);
  self->write_in_flight_ = false;
  std::string& data = self->pending_write_->data;
  self->worker_.shared().stats.net_output_bytes.fetch_add(data.size(), std::memory_order_relaxed);
  if (data.capacity() > kShrinkAbove)
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
  // A client that leaves while blocked frees its backend connection at once: closing it is the
  // only way to stop a blocked command on the backend.
  if (!dedicated_.empty()) release_dedicated(false);
  // Replies to what is still in flight are dropped from now on: a transaction mid-commit hands
  // itself to the resolvers instead of waiting out its lease.
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].job && !slots_[i].job->done()) slots_[i].job->abandon();
  txn_release_pins(false);  // closing a connection is what drops its WATCHes on the backend
  unsubscribe_all();
  if (lock_user_) {  // its waiters leave the queues; its KEEPALIVE locks stop being renewed
    Worker* home = worker_.shared().workers.front();
    home->post_task([home, id = id_] { home->locks().client_closed(id); });
  }
  if (config_watcher_ && worker_.shared().cluster != nullptr)
    worker_.shared().cluster->client_closed(&worker_, id_);
  if (monitor_) {
    SharedState& sh = worker_.shared();
    std::lock_guard lock(sh.monitor_mu);
    std::erase(sh.monitor_list, std::make_pair(&worker_, id_));
    sh.monitors.fetch_sub(1);
  }
  worker_.shared().stats.connected_clients.fetch_sub(1, std::memory_order_relaxed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

bool Client::block_on(int backend, std::string_view raw) {
  SharedState& sh = worker_.shared();
  uint64_t seq;
  if (worker_.backend_for(backend, id_, protocol()).failed_recently()) {
    forward(backend, raw);  // answered at once with the reason the backend is down
    return true;
  }
  if (sh.stats.blocked_clients.fetch_add(1) >= sh.cfg.limits.max_blocked_clients) {
    sh.stats.blocked_clients.fetch_sub(1);
    reply_error(fmt::format("ERR too many blocked clients (limits.max_blocked_clients is {})",
                            sh.cfg.limits.max_blocked_clients));
    return false;
  }
  BackendConn* conn = worker_.acquire_dedicated(backend, protocol());
  dedicated_.push_back(conn);
  new_slot(seq);
  send_on(*conn, seq, 0, raw);
  barrier_ = true;  // nothing else runs on this client until the blocking reply is in
  return true;
}

void Client::send_on(BackendConn& conn, uint64_t seq, size_t part, std::string_view request) {
  ++slots_[static_cast<size_t>(seq - head_seq_)].waiting;
  ++inflight_parts_;
  const uint64_t cookie = make_cookie(seq, part);
  if (!conn.send(this, cookie, request))
    worker_.defer_reply(this, cookie, conn.unavailable_error());
}

namespace {
// WAIT through a proxy: each backend is asked, on a connection of its own, to PUBLISH once (a
// replicated write that orders after everything this client wrote there, since those replies
// are already in) and then WAIT, so the count covers the client's earlier writes. The answer is
// the smallest count over the backends: that many replicas have everything, everywhere.
class WaitJob final : public Job {
 public:
  explicit WaitJob(size_t backends) : pending_(backends * 2) {}
  void on_reply(Client&, uint64_t, size_t part, std::string_view reply) override {
    --pending_;
    if (resp::is_error_reply(reply)) {
      if (error_.empty()) error_.assign(reply);
      return;
    }
    if (part % 2 == 0) return;  // the PUBLISH
    int64_t v = 0;
    if (resp::parse_integer_reply(reply, v) && (min_ < 0 || v < min_)) min_ = v;
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override {
    if (!error_.empty())
      out.append(error_);
    else
      resp::append_integer(out, min_ < 0 ? 0 : min_);
  }

 private:
  size_t pending_;
  int64_t min_ = -1;
  std::string error_;
};
}  // namespace

void Client::cmd_wait(std::span<const std::string_view> args, std::string_view raw) {
  int64_t v = 0;
  if (!resp::parse_int64(args[1], v)) {
    reply_error("ERR value is not an integer or out of range");
    return;
  }
  if (!resp::parse_int64(args[2], v)) {
    reply_error("ERR timeout is not an integer or out of range");
    return;
  }
  if (v < 0) {
    reply_error("ERR timeout is negative");
    return;
  }
  SharedState& sh = worker_.shared();
  if (sh.stats.blocked_clients.fetch_add(1) >= sh.cfg.limits.max_blocked_clients) {
    sh.stats.blocked_clients.fetch_sub(1);
    reply_error(fmt::format("ERR too many blocked clients (limits.max_blocked_clients is {})",
                            sh.cfg.limits.max_blocked_clients));
    return;
  }
  const int n = worker_.backend_count();
  uint64_t seq;
  start_job(std::make_unique<WaitJob>(static_cast<size_t>(n)), seq);
  static constexpr std::string_view kPublish =
      "*3\r\n$7\r\nPUBLISH\r\n$15\r\n__lockstep:wait\r\n$1\r\n1\r\n";
  for (int b = 0; b < n; ++b) {
    BackendConn* conn = worker_.acquire_dedicated(b, protocol());
    dedicated_.push_back(conn);
    send_on(*conn, seq, static_cast<size_t>(2 * b), kPublish);
    send_on(*conn, seq, static_cast<size_t>(2 * b + 1), raw);
  }
  barrier_ = true;
}

void Client::release_dedicated(bool reusable) {
  worker_.shared().stats.blocked_clients.fetch_sub(1);
  for (BackendConn* c : dedicated_) worker_.release_dedicated(c, reusable);
  dedicated_.clear();
}

void Client::record(const proxy::CommandInfo* cmd, uint64_t start_us, uint32_t argc,
                    std::string_view reply) {
  SharedState& sh = worker_.shared();
  const uint64_t now_us = worker_.io_now_us();
  const uint64_t dur = now_us > start_us ? now_us - start_us : 0;
  CommandCounters& c = worker_.counters(cmd->id);
  // One writer per worker: plain load+store keeps the atomics cheap (no locked instruction).
  auto bump = [](std::atomic<uint64_t>& a, uint64_t d) {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  };
  bump(c.calls, 1);
  bump(c.usec, dur);
  bump(c.buckets[static_cast<size_t>(latency_bucket(dur))], 1);
  if (resp::is_error_reply(reply)) {
    bump(c.failed, 1);
    worker_.note_error_reply(id_, cmd, reply);
  }
  // Time spent blocked (BLPOP, WAIT ...) is waiting, not slowness: Redis leaves it out too.
  if ((cmd->flags & proxy::kFlagBlocking) != 0 || cmd->name == "wait") return;
  const auto& obs = sh.cfg.slowlog;
  if (obs.slower_than_us >= 0 && dur >= static_cast<uint64_t>(obs.slower_than_us)) {
    // The arguments were forwarded without being copied; the slow log keeps the command name
    // and how many arguments followed.
    SlowLogEntry e;
    e.unix_time = static_cast<int64_t>(time(nullptr));
    e.duration_us = dur;
    std::string name(cmd->name);
    for (char& ch : name)
      if (ch == '|') ch = ' ';
    // "slowlog len" already names two of the arguments.
    const uint32_t named = cmd->name.find('|') == std::string_view::npos ? 1 : 2;
    e.args.push_back(std::move(name));
    if (argc > named) e.args.push_back(fmt::format("... ({} more arguments)", argc - named));
    char host[64] = "?";
    if (peer_.sa.sa_family == AF_INET) {
      uv_ip4_name(&peer_.v4, host, sizeof(host));
      e.client_addr = fmt::format("{}:{}", host, ntohs(peer_.v4.sin_port));
    } else if (peer_.sa.sa_family == AF_INET6) {
      uv_ip6_name(&peer_.v6, host, sizeof(host));
      e.client_addr = fmt::format("[{}]:{}", host, ntohs(peer_.v6.sin6_port));
    }
    {
      std::lock_guard lock(sh.registry_mu);
      e.client_name = meta().name;
    }
    sh.slowlog.add(std::move(e), static_cast<size_t>(obs.max_len));
  }
  const int threshold = sh.cfg.latency.monitor_threshold_ms;
  if (threshold > 0 && dur / 1000 >= static_cast<uint64_t>(threshold))
    sh.latency.add(static_cast<int64_t>(time(nullptr)), dur / 1000);
}

void Client::on_close(uv_handle_t* h) {
  auto* self = static_cast<Client*>(h->data);
  self->handle_closed_ = true;
  self->slots_.release();
  std::string().swap(self->out_);
  std::string().swap(self->in_);
  if (self->removable()) self->worker_.client_closed(self);
}

}  // namespace lockstep::server
