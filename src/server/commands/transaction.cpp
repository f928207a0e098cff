// MULTI / EXEC / DISCARD / WATCH / UNWATCH through the proxy, and MULTI's queue (ClientTxn,
// txn/client_txn.h). EXEC itself runs in txn/exec_job.h.
//
// Ordering: WATCH and EXEC with pins run alone (after every earlier reply, nothing after them
// until they complete), like a blocking command, since pins are other connections than the
// shared ones earlier and later commands use. EXEC always holds later commands back until it
// completes: a secondary may apply after the primary's reply, and a later GET must see both.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "server/commands/handlers.h"
#include "server/net/worker.h"
#include "server/txn/client_txn.h"
#include "server/txn/exec_job.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {
namespace {

// WATCH and UNWATCH over the pins: +OK once every pin answered, else the first error.
class PinJob final : public Job {
 public:
  PinJob(size_t parts, bool release) : pending_(parts), release_(release) {}
  void on_reply(Client& c, uint64_t, size_t, std::string_view reply) override {
    if (resp::is_error_reply(reply) && error_.empty()) error_.assign(reply);
    if (--pending_ == 0 && release_) c.part<ClientTxn>().release_pins(c, true);
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override { out.append(error_.empty() ? "+OK\r\n" : error_); }

 private:
  size_t pending_;
  bool release_;
  std::string error_;
};

// A local command queued by MULTI: its reply is computed now (EXEC only repeats it).
bool local_reply_when_queued(const Request& r, std::string& out) {
  const std::string_view name = r.plan.cmd->name;
  if (name == "ping") {
    if (r.args.size() > 1)
      resp::append_bulk(out, r.args[1]);
    else
      out = "+PONG\r\n";
  } else if (name == "echo") {
    resp::append_bulk(out, r.args[1]);
  } else if (name == "unwatch") {
    out = "+OK\r\n";  // EXEC drops the WATCHes anyway
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool ClientTxn::queue_runtime_error(Client& c, const proxy::Plan& plan, size_t nargs) {
  if (!in_multi_ || plan.cmd == nullptr || nargs < 3 ||
      (plan.cmd->route != proxy::Route::kSplitMset &&
       plan.cmd->route != proxy::Route::kSplitMsetnx))
    return false;
  QueuedCommand q;
  q.kind = QueuedCommand::Kind::kLocal;
  resp::append_error(q.local_reply, plan.error);
  queued_.push_back(std::move(q));
  c.reply("+QUEUED\r\n");
  return true;
}

void ClientTxn::queue(Client& c, const Request& r) {
  const auto live = c.shared().settings();
  const auto& tcfg = live->transactions;
  if (queued_.size() >= static_cast<size_t>(tcfg.max_queued)) {
    dirty_ = true;
    c.reply_error(
        fmt::format("ERR too many commands in one transaction (transactions.max_queued is {})",
                    tcfg.max_queued));
    return;
  }
  queued_bytes_ += r.raw.size();
  if (queued_bytes_ > static_cast<size_t>(tcfg.max_queued_bytes)) {
    dirty_ = true;
    c.reply_error(fmt::format("ERR transaction too large (transactions.max_queued_bytes is {})",
                              tcfg.max_queued_bytes));
    return;
  }
  const proxy::Plan& plan = r.plan;
  QueuedCommand q;
  auto refuse = [&](std::string_view why) {
    dirty_ = true;
    c.reply_error(fmt::format("ERR '{}' cannot be queued in a transaction through Lockstep: {}",
                              plan.cmd->name, why));
  };
  switch (plan.kind) {
    case proxy::Plan::Kind::kLocal:
      q.kind = QueuedCommand::Kind::kLocal;
      if (!local_reply_when_queued(r, q.local_reply))
        return refuse("the proxy answers it itself, outside any backend's MULTI");
      break;
    case proxy::Plan::Kind::kSingle:
      queue_routed(plan, r.args, r.raw, q);
      break;
    case proxy::Plan::Kind::kAny:
      q.kind = QueuedCommand::Kind::kAny;
      q.raw.assign(r.raw);
      break;
    case proxy::Plan::Kind::kSplit:
      if (plan.cmd->route == proxy::Route::kSplitMsetnx) {
        dirty_ = true;
        c.reply_error(
            "ERR MSETNX across backends cannot be queued in a transaction through Lockstep; use "
            "{hash tags}, or WATCH the keys and MSET");
        return;
      }
      queue_routed(plan, r.args, r.raw, q);
      break;
    case proxy::Plan::Kind::kFanout:
    case proxy::Plan::Kind::kError:
      return refuse("it runs on every backend");
  }
  queued_.push_back(std::move(q));
  c.reply("+QUEUED\r\n");
}

void ClientTxn::multi(Client& c) {
  if (in_multi_) {
    c.reply_error("ERR MULTI calls can not be nested");
    return;
  }
  in_multi_ = true;
  dirty_ = false;
  queued_.clear();
  queued_bytes_ = 0;
  if (pins_.empty()) routed_by_ = c.worker().topology_ptr();
  c.reply_ok();
}

void ClientTxn::exec(Client& c) {
  if (!in_multi_) {
    c.reply_error("ERR EXEC without MULTI");
    return;
  }
  // A pin is another connection than the shared ones: earlier replies first.
  if (!pins_.empty() && c.replies_owed()) {
    c.parse_again_after_replies();
    return;
  }
  in_multi_ = false;
  std::vector<QueuedCommand> queued = std::move(queued_);
  queued_.clear();
  if (dirty_) {
    dirty_ = false;
    release_pins(c, false);  // EXEC unwatches; a closed connection forgets its WATCHes
    c.reply_error("EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  const Topology& now = c.worker().topology();
  auto watch_failed = [&] {
    release_pins(c, false);
    txn_stats().watch_failed.fetch_add(1, std::memory_order_relaxed);
    c.reply(nil_reply(c.protocol()));
  };
  // The slot map changed since MULTI/WATCH: commands and WATCHes went by the old one.
  if (routed_by_ != nullptr && routed_by_.get() != &now && !(routed_by_->slots == now.slots))
    return watch_failed();
  // The connection that held a WATCH broke: a change may have been missed.
  if (std::any_of(pins_.begin(), pins_.end(), [](const TxnPin& p) { return !p.conn->ready(); }))
    return watch_failed();
  const bool all_local = std::all_of(queued.begin(), queued.end(), [](const QueuedCommand& q) {
    return q.kind == QueuedCommand::Kind::kLocal;
  });
  if (all_local && pins_.empty()) {
    std::string out;
    resp::append_array_header(out, static_cast<int64_t>(queued.size()));
    for (const auto& q : queued) out += q.local_reply;
    c.reply(out);
    return;
  }
  start_exec(c, std::move(queued), pins_, ExecKind::kExec);
}

void ClientTxn::discard(Client& c) {
  if (!in_multi_) {
    c.reply_error("ERR DISCARD without MULTI");
    return;
  }
  in_multi_ = false;
  queued_.clear();
  unwatch(c);
}

void ClientTxn::reset(Client& c) {
  release_pins(c, false);
  in_multi_ = false;
  dirty_ = false;
  queued_.clear();
}

void ClientTxn::release_pins(Client& c, bool reusable) {
  c.shared().stats.watch_connections.fetch_sub(static_cast<int64_t>(pins_.size()),
                                               std::memory_order_relaxed);
  for (auto& p : pins_) c.worker().release_dedicated(p.conn, reusable && !p.switched);
  pins_.clear();
}

void ClientTxn::protocol_changed(int protocol) {
  std::string hello;
  const std::string p = std::to_string(protocol);
  const std::array<std::string_view, 2> argv{"HELLO", p};
  resp::append_command(hello, argv);
  for (auto& pin : pins_) {
    pin.conn->send(&discard_replies(), 0, hello);
    pin.switched = true;  // closed, not pooled, when released: the pool sorts by protocol
  }
}

void ClientTxn::watch(Client& c, std::span<const std::string_view> args) {
  if (in_multi_) {
    c.reply_error("ERR WATCH inside MULTI is not allowed");
    return;
  }
  if (c.replies_owed()) {
    c.parse_again_after_replies();
    return;
  }
  for (size_t i = 1; i < args.size(); ++i) {
    if (proxy::is_reserved_key(args[i])) {
      c.reply_error(proxy::kReservedKeyError);
      return;
    }
  }
  Worker& w = c.worker();
  if (pins_.empty()) {
    // Each backend a client WATCHes costs a connection of its own: capped like blocking ones.
    SharedState& sh = c.shared();
    if (sh.stats.watch_connections.load(std::memory_order_relaxed) >=
        sh.cfg.limits.max_blocked_clients) {
      c.reply_error(fmt::format("ERR too many WATCHing clients (limits.max_blocked_clients is {})",
                                sh.cfg.limits.max_blocked_clients));
      return;
    }
    routed_by_ = w.topology_ptr();
  }
  const auto& slots = w.topology().slots;
  std::vector<std::vector<std::string_view>> by_backend(w.topology().backends.size());
  for (size_t i = 1; i < args.size(); ++i)
    by_backend[static_cast<size_t>(slots.owner_of_key(args[i]))].push_back(args[i]);
  const size_t nparts = static_cast<size_t>(std::count_if(
      by_backend.begin(), by_backend.end(), [](const auto& keys) { return !keys.empty(); }));
  uint64_t seq;
  c.start_job(std::make_unique<PinJob>(nparts, false), seq);
  size_t part = 0;
  for (size_t b = 0; b < by_backend.size(); ++b) {
    if (by_backend[b].empty()) continue;
    auto pin = std::find_if(pins_.begin(), pins_.end(),
                            [&](const TxnPin& p) { return p.backend == static_cast<int>(b); });
    if (pin == pins_.end()) {
      pins_.push_back(
          TxnPin{static_cast<int>(b), w.acquire_dedicated(static_cast<int>(b), c.protocol()), {}});
      c.shared().stats.watch_connections.fetch_add(1, std::memory_order_relaxed);
      pin = pins_.end() - 1;
    }
    std::vector<std::string_view> cmd{"WATCH"};
    cmd.insert(cmd.end(), by_backend[b].begin(), by_backend[b].end());
    for (auto k : by_backend[b])
      if (std::find(pin->keys.begin(), pin->keys.end(), k) == pin->keys.end())
        pin->keys.emplace_back(k);
    std::string req;
    resp::append_command(req, cmd);
    c.send_on(*pin->conn, seq, part++, req);
  }
  c.hold_later_requests();  // later commands use other connections: they wait for the WATCH
}

void ClientTxn::unwatch(Client& c) {
  if (pins_.empty()) {
    c.reply_ok();
    return;
  }
  uint64_t seq;
  c.start_job(std::make_unique<PinJob>(pins_.size(), true), seq);
  static constexpr std::string_view kUnwatch = "*1\r\n$7\r\nUNWATCH\r\n";
  size_t part = 0;
  for (auto& p : pins_) c.send_on(*p.conn, seq, part++, kUnwatch);
}

void ClientTxn::msetnx(Client& c, const Request& r) {
  std::vector<QueuedCommand> queued(1);
  queued[0].kind = QueuedCommand::Kind::kSplit;
  split_parts(r.plan, r.args, "MSET", queued[0]);
  start_exec(c, std::move(queued), {}, ExecKind::kMsetnx);
}

bool ClientTxn::guarded(Client& c, const Request& r) {
  const proxy::Plan& plan = r.plan;
  if (plan.blocking) return false;  // cannot run inside MULTI (it would not block)
  if (c.worker().isolation() == Isolation::kWrites && (plan.cmd->flags & proxy::kFlagWrite) == 0 &&
      (plan.cmd->traits & proxy::kTraitUndeclaredWrite) == 0)
    return false;
  if (plan.kind != proxy::Plan::Kind::kSingle && plan.kind != proxy::Plan::Kind::kSplit)
    return false;
  std::vector<QueuedCommand> queued(1);
  queue_routed(plan, r.args, r.raw, queued[0]);
  start_exec(c, std::move(queued), {}, ExecKind::kGuarded);
  return true;
}

void register_transaction_commands(HandlerTable& t) {
  t.add("multi", [](Client& c, const Request&) { c.part<ClientTxn>().multi(c); });
  t.add("exec", [](Client& c, const Request&) { c.part<ClientTxn>().exec(c); });
  t.add("discard", [](Client& c, const Request&) { c.part<ClientTxn>().discard(c); });
  t.add("watch", [](Client& c, const Request& r) { c.part<ClientTxn>().watch(c, r.args); });
  t.add("unwatch", [](Client& c, const Request& r) {
    ClientTxn& txn = c.part<ClientTxn>();
    if (txn.in_multi())
      txn.queue(c, r);  // queued like any command (its reply is +OK)
    else
      txn.unwatch(c);
  });
}

}  // namespace lockstep::server
