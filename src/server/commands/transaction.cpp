// MULTI / EXEC / DISCARD / WATCH / UNWATCH through the proxy (the client side of
// txn/coordinator.h).
//
// MULTI queues in the proxy: each command is routed when queued (unknown, wrong arity,
// unroutable, refused -> the error now and EXECABORT at EXEC, as Redis does). WATCH is
// forwarded on a connection of this client's own per backend ("pin"), kept until EXEC,
// DISCARD, UNWATCH or disconnect, so the backend itself tracks the watched keys. EXEC hands the
// queue to an ExecJob that runs a Coordinator: one backend -> one guarded MULTI/EXEC there;
// several -> two-phase commit. A transaction that meets keys held by another one is run again
// after a short randomized pause, until transactions.conflict_timeout_ms (no waiting on locks,
// so no deadlock); one with WATCHes cannot be rerun (its WATCHes were consumed), so it answers
// nil, which a WATCH client treats as "retry", as it must anyway.
//
// Ordering: WATCH and EXEC with pins run alone (after every earlier reply, nothing after them
// until they complete), like a blocking command, since pins are other connections than the
// shared ones earlier and later commands use. EXEC always holds later commands back until it
// completes: a secondary may apply after the primary's reply, and a later GET must see both.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <array>

#include "lockstep/txn/coordinator.h"
#include "lockstep/txn/scripts.h"
#include "server/txn/txn_service.h"
#include "server/txn/txn_state.h"
#include "server/net/worker.h"

namespace lockstep::server {

namespace {

constexpr std::string_view kNilArray2 = "*-1\r\n";
constexpr std::string_view kNil3 = "_\r\n";

class DiscardSink final : public ReplySink {
 public:
  void on_backend_reply(uint64_t, std::string_view) override {}
};
DiscardSink g_discard;  // stateless: shared by every worker

// WATCH and UNWATCH over the pins: +OK once every pin answered, else the first error.
class PinJob final : public Job {
 public:
  PinJob(size_t parts, bool release) : pending_(parts), release_(release) {}
  void on_reply(Client& c, uint64_t, size_t, std::string_view reply) override {
    if (resp::is_error_reply(reply) && error_.empty()) error_.assign(reply);
    if (--pending_ == 0 && release_) c.txn_release_pins(true);
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override { out.append(error_.empty() ? "+OK\r\n" : error_); }

 private:
  size_t pending_;
  bool release_;
  std::string error_;
};

// One EXEC: runs attempts of a Coordinator until one concludes.
class ExecJob final : public Job {
 public:
  // `msetnx`: the queue is one MSETNX split into MSETs; each backend's keys must not exist.
  // `unwrap`: a plain command guarded by transactions.isolation: its reply, not an array.
  ExecJob(Worker& w, uint64_t client_id, std::vector<QueuedCommand> queued,
          std::vector<TxnPin> pins, int any_backend, int protocol, bool msetnx = false,
          bool unwrap = false)
      : worker_(w),
        msetnx_(msetnx),
        unwrap_(unwrap),
        client_id_(client_id),
        queued_(std::move(queued)),
        pins_(std::move(pins)),
        any_backend_(any_backend),
        protocol_(protocol) {
    deadline_ms_ =
        w.now_ms() + static_cast<uint64_t>(w.shared().settings()->transactions.conflict_timeout_ms);
  }

  void attempt(Client& c, uint64_t seq) {
    build();
    const auto live = worker_.shared().settings();
    const auto& tcfg = live->transactions;
    txn::CoordinatorSettings s;
    s.txid = TxnService::new_txid();
    s.coord = TxnService::coordinator_id();
    s.poison = std::string(txn::kPoisonPrefix) + s.txid;
    s.lease_ms = static_cast<uint64_t>(tcfg.lease_ms);
    coord_ = std::make_unique<txn::Coordinator>(std::move(s), std::move(participants_));
    cross_ = coord_->participants().size() > 1;
    if (attempts_++ == 0 && !unwrap_)
      (cross_ ? txn_stats().cross : txn_stats().single).fetch_add(1, std::memory_order_relaxed);
    last_phase_ = coord_->phase();
    out_.clear();
    coord_->start(out_);
    if (cross_) {
      if (auto fa = fail_at("txn.before_prepare")) return hold(c, seq, *fa);
    }
    send(c, seq);
  }

  void on_reply(Client& c, uint64_t seq, size_t part, std::string_view reply) override {
    if (!coord_ || done_) return;
    out_.clear();
    coord_->on_reply(static_cast<uint32_t>(part), reply, out_);
    const txn::Phase now = coord_->phase();
    if (now != last_phase_) {
      const char* point = transition(last_phase_, now);
      last_phase_ = now;
      if (point != nullptr) {
        if (auto fa = fail_at(point)) return hold(c, seq, *fa);
      }
    }
    send(c, seq);
    if (coord_->done()) conclude(c, seq);
  }

  bool done() const override { return done_; }
  void finish(std::string& out) override { out.append(reply_); }
  void abandon() override {
    if (!coord_ || done_) return;
    std::vector<txn::Send> out;
    coord_->abandon_requests(out);
    for (auto& s : out)
      worker_.backend_for(coord_->participants()[s.participant].backend, 0, 2)
          .send(&g_discard, 0, s.request);
    if (!out.empty())
      spdlog::info(
          "client {}: disconnected during a cross-backend commit ({}); its intents go "
          "to the resolvers now",
          client_id_, txn::phase_name(coord_->phase()));
  }

  // After a stall failpoint or a retry pause.
  static void resume(Worker& w, uint64_t client_id, uint64_t seq, bool retry) {
    Client* c = w.find_client(client_id);
    if (c == nullptr) return;
    auto* job = dynamic_cast<ExecJob*>(c->job_at(seq));
    if (job == nullptr) return;
    if (retry) {
      job->attempt(*c, seq);
    } else {
      job->send(*c, seq);
      if (job->coord_->done()) job->conclude(*c, seq);
    }
    c->job_progressed(seq);  // outside a reply: the slot completes here if the job is done
  }

 private:
  static const char* transition(txn::Phase from, txn::Phase to) {
    using P = txn::Phase;
    if (from == P::kPreparePrimary && to == P::kPrepareOthers) return "txn.after_prepare_primary";
    if (from == P::kPrepareOthers && to == P::kCommit) return "txn.after_prepare";
    if (from == P::kCommit && to == P::kApply) return "txn.after_commit";
    if (from == P::kApply && to == P::kDone) return "txn.after_apply";
    return nullptr;
  }

  void hold(Client& c, uint64_t seq, const txn::FailAction& fa) {
    if (fa.kind == txn::FailAction::Kind::kDrop) {
      spdlog::warn("failpoint: dropping {} request(s) of a transaction", out_.size());
      out_.clear();
      return;  // never answered: the client times out, the resolver cleans up
    }
    (void)c;
    worker_.txns().schedule(fa.stall_ms,
                            [w = &worker_, id = client_id_, seq] { resume(*w, id, seq, false); });
  }

  void send(Client& c, uint64_t seq) {
    const auto& parts = coord_->participants();
    for (auto& s : out_) {
      const txn::Participant& p = parts[s.participant];
      BackendConn* pin = nullptr;
      if (p.pinned)
        for (const auto& t : pins_)
          if (t.backend == p.backend) pin = t.conn;
      if (pin != nullptr)
        c.send_on(*pin, seq, s.participant, s.request);
      else
        c.send_part(p.backend, seq, s.participant, s.request);
    }
    out_.clear();
  }

  // The participants of this attempt, and where each queued command's replies will be.
  void build() {
    const Topology& topo = worker_.topology();
    std::vector<int> index(topo.backends.size(), -1);
    participants_.clear();
    where_.assign(queued_.size(), {});
    auto add = [&](int b) -> uint32_t {
      if (index[static_cast<size_t>(b)] < 0) {
        index[static_cast<size_t>(b)] = static_cast<int>(participants_.size());
        txn::Participant p;
        p.backend = b;
        p.name = topo.backends[static_cast<size_t>(b)].name;
        for (const auto& t : pins_)
          if (t.backend == b) p.pinned = true;
        participants_.push_back(std::move(p));
      }
      return static_cast<uint32_t>(index[static_cast<size_t>(b)]);
    };
    // Keyless commands go where the rest of the transaction goes (the primary).
    int any = -1;
    for (const auto& t : pins_) any = any < 0 ? t.backend : any;
    for (const auto& q : queued_) {
      if (any >= 0) break;
      if (q.kind == QueuedCommand::Kind::kSingle) any = q.backend;
      if (q.kind == QueuedCommand::Kind::kSplit) any = q.parts[0].backend;
    }
    if (any < 0) any = any_backend_;
    add(any);
    for (const auto& t : pins_) {
      auto& p = participants_[add(t.backend)];
      p.keys.insert(p.keys.end(), t.keys.begin(), t.keys.end());
    }
    for (size_t i = 0; i < queued_.size(); ++i) {
      const QueuedCommand& q = queued_[i];
      auto put = [&](int b, const std::string& req, const std::vector<std::string>& keys) {
        const uint32_t pi = add(b);
        auto& p = participants_[pi];
        where_[i].emplace_back(pi, static_cast<uint32_t>(p.commands.size()));
        p.commands.push_back(req);
        p.keys.insert(p.keys.end(), keys.begin(), keys.end());
        if (msetnx_) p.absent_keys.insert(p.absent_keys.end(), keys.begin(), keys.end());
      };
      switch (q.kind) {
        case QueuedCommand::Kind::kSingle:
          put(q.backend, q.raw, q.keys);
          break;
        case QueuedCommand::Kind::kAny:
          put(any, q.raw, {});
          break;
        case QueuedCommand::Kind::kSplit:
          for (const auto& part : q.parts) put(part.backend, part.request, part.keys);
          break;
        case QueuedCommand::Kind::kLocal:
          break;
      }
    }
  }

  void conclude(Client& c, uint64_t seq) {
    TxnStats& st = txn_stats();
    const txn::Outcome o = coord_->outcome();
    if (o == txn::Outcome::kConflict) {
      st.conflicts.fetch_add(1, std::memory_order_relaxed);
      if (pins_.empty() && worker_.now_ms() < deadline_ms_) {
        // Randomized, growing pause: the holder needs a few round trips to finish.
        const uint64_t base = std::min<uint64_t>(50, 1ULL << std::min(attempts_, 5U));
        const uint64_t delay = base / 2 + worker_.random() % (base / 2 + 1);
        worker_.txns().schedule(
            delay, [w = &worker_, id = client_id_, seq] { resume(*w, id, seq, true); });
        return;
      }
      if (pins_.empty()) {
        st.gave_up.fetch_add(1, std::memory_order_relaxed);
        reply_ = fmt::format(
            "-TXNCONFLICT key '{}' stayed held by another transaction for {} ms "
            "(transactions.conflict_timeout_ms); nothing was applied\r\n",
            coord_->conflict_key(), worker_.shared().settings()->transactions.conflict_timeout_ms);
      } else {
        st.watch_failed.fetch_add(1, std::memory_order_relaxed);
        reply_.assign(protocol_ >= 3 ? kNil3 : kNilArray2);
      }
    } else if (o == txn::Outcome::kCommitted) {
      if (!unwrap_) st.committed.fetch_add(1, std::memory_order_relaxed);
      if (msetnx_) {
        reply_ = ":1\r\n";
      } else {
        assemble();
        if (unwrap_) {  // "*1\r\n<reply>": the command's own reply
          std::vector<std::string_view> el;
          int64_t n = 0;
          if (resp::split_array(reply_, el, n) && el.size() == 1) reply_ = std::string(el[0]);
        }
      }
    } else if (o == txn::Outcome::kKeyExists) {
      reply_ = ":0\r\n";  // MSETNX: a key exists, nothing was set
    } else if (o == txn::Outcome::kWatchFailed) {
      st.watch_failed.fetch_add(1, std::memory_order_relaxed);
      reply_.assign(protocol_ >= 3 ? kNil3 : kNilArray2);
    } else {
      (o == txn::Outcome::kUnknown ? st.unknown : st.aborted)
          .fetch_add(1, std::memory_order_relaxed);
      reply_ = "-" + coord_->error() + "\r\n";
      if (o != txn::Outcome::kExecAbort)
        spdlog::warn("client {}: EXEC failed: {}", client_id_, coord_->error());
    }
    // The primary's record goes once every secondary applied; nobody waits for that.
    std::vector<txn::Send> cleanup;
    coord_->cleanup_requests(cleanup);
    for (auto& s : cleanup)
      worker_.backend_for(coord_->participants()[s.participant].backend, 0, 2)
          .send(&g_discard, 0, s.request);
    done_ = true;
    // A pin's WATCHes are gone only if an EXEC ran on it: after a fast path or a prepare on
    // every participant. Otherwise (aborted early) it may still watch keys: closed, not pooled.
    // (Only an EXEC's job owns the client's pins: a guarded command or an MSETNX between a
    // WATCH and its EXEC must leave them alone.)
    if (!pins_.empty()) c.txn_release_pins(o == txn::Outcome::kCommitted);
  }

  void assemble() {
    reply_.clear();
    resp::append_array_header(reply_, static_cast<int64_t>(queued_.size()));
    auto element = [&](uint32_t p, uint32_t i) -> std::string_view {
      const auto& r = coord_->replies(p);
      if (i < r.size()) return r[i];
      return "-ERR reply lost\r\n";
    };
    for (size_t i = 0; i < queued_.size(); ++i) {
      const QueuedCommand& q = queued_[i];
      if (q.kind == QueuedCommand::Kind::kLocal) {
        reply_ += q.local_reply;
      } else if (q.kind == QueuedCommand::Kind::kSplit) {
        proxy::ReplyMerge m = *q.merge;
        for (size_t j = 0; j < where_[i].size(); ++j)
          m.add(j, element(where_[i][j].first, where_[i][j].second));
        m.finish(reply_);
      } else {
        reply_ += element(where_[i][0].first, where_[i][0].second);
      }
    }
  }

  Worker& worker_;
  bool msetnx_;
  bool unwrap_;
  uint64_t client_id_;
  std::vector<QueuedCommand> queued_;
  std::vector<TxnPin> pins_;  // copies of the client's pins (it releases them)
  int any_backend_;
  int protocol_;
  uint64_t deadline_ms_ = 0;
  unsigned attempts_ = 0;
  bool cross_ = false;
  bool done_ = false;
  std::unique_ptr<txn::Coordinator> coord_;
  std::vector<txn::Participant> participants_;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> where_;
  std::vector<txn::Send> out_;
  txn::Phase last_phase_ = txn::Phase::kDone;
  std::string reply_;
};

// The per-backend sub-requests of a split command, named `name` (MSETNX is sent as MSET).
void split_parts(const proxy::Plan& plan, std::span<const std::string_view> args,
                 std::string_view name, QueuedCommand& q) {
  const bool pairs =
      plan.cmd->route == proxy::Route::kSplitMset || plan.cmd->route == proxy::Route::kSplitMsetnx;
  for (size_t p = 0; p < plan.nparts; ++p) {
    const auto& part = plan.parts[p];
    QueuedCommand::Part qp;
    qp.backend = part.backend;
    resp::append_array_header(qp.request,
                              static_cast<int64_t>(1 + part.keys.size() * (pairs ? 2 : 1)));
    resp::append_bulk(qp.request, name);
    for (uint32_t k : part.keys) {
      resp::append_bulk(qp.request, args[k]);
      qp.keys.emplace_back(args[k]);
      if (pairs) resp::append_bulk(qp.request, args[k + 1]);
    }
    q.parts.push_back(std::move(qp));
  }
}

// A routed keyed command as a queue entry: kSingle forwarded as sent, kSplit as per-backend
// parts whose replies merge as outside a transaction.
void queue_routed(const proxy::Plan& plan, std::span<const std::string_view> args,
                  std::string_view raw, QueuedCommand& q) {
  if (plan.kind == proxy::Plan::Kind::kSingle) {
    q.kind = QueuedCommand::Kind::kSingle;
    q.backend = plan.backend;
    q.raw.assign(raw);
    proxy::KeyPositions keys;
    proxy::extract_keys(*plan.cmd, args, keys);
    for (size_t i = 0; i < keys.size(); ++i) q.keys.emplace_back(args[keys[i]]);
    return;
  }
  q.kind = QueuedCommand::Kind::kSplit;
  const bool mset = plan.cmd->route == proxy::Route::kSplitMset;
  q.merge = std::make_shared<proxy::ReplyMerge>();
  q.merge->start(proxy::ReplyMerge::kind_for(plan.cmd->route), plan.nparts,
                 mset ? (args.size() - 1) / 2 : args.size() - 1);
  split_parts(plan, args, args[0], q);
  if (plan.cmd->route == proxy::Route::kSplitMget)
    for (size_t p = 0; p < plan.nparts; ++p)
      for (uint32_t k : plan.parts[p].keys) q.merge->positions(p).push_back(k - 1);
}

bool is_txn_command(std::string_view n) {
  return n == "multi" || n == "exec" || n == "discard" || n == "watch" || n == "unwatch";
}

}  // namespace

bool Client::in_multi() const {
  return txn_ && txn_->in_multi;
}

void Client::txn_flag_error() {
  if (in_multi()) txn_->dirty = true;
}

void Client::job_progressed(uint64_t seq) {
  if (seq < head_seq_ || seq >= head_seq_ + slots_.size()) return;
  const size_t index = static_cast<size_t>(seq - head_seq_);
  Slot& s = slots_[index];
  if (s.job && s.waiting == 0 && s.job->done()) {
    complete_slot(index);
    update_backpressure();  // lifts the barrier EXEC set, if nothing else is outstanding
  }
}

Job* Client::job_at(uint64_t seq) {
  if (seq < head_seq_ || seq >= head_seq_ + slots_.size()) return nullptr;
  return slots_[static_cast<size_t>(seq - head_seq_)].job.get();
}

void Client::txn_release_pins(bool reusable) {
  if (!txn_) return;
  worker_.shared().stats.watch_connections.fetch_sub(static_cast<int64_t>(txn_->pins.size()),
                                                     std::memory_order_relaxed);
  for (auto& p : txn_->pins) worker_.release_dedicated(p.conn, reusable && !p.switched);
  txn_->pins.clear();
}

bool Client::txn_dispatch(const proxy::Plan& plan, std::span<const std::string_view> args,
                          std::string_view raw, bool& done) {
  done = true;
  const std::string_view name = plan.cmd->name;
  if (plan.kind == proxy::Plan::Kind::kLocal && is_txn_command(name)) {
    if (name == "multi") {
      if (in_multi()) {
        reply_error("ERR MULTI calls can not be nested");
        return true;
      }
      if (!txn_) txn_ = std::make_unique<TxnState>();
      txn_->in_multi = true;
      txn_->dirty = false;
      txn_->queued.clear();
      txn_->queued_bytes = 0;
      if (txn_->pins.empty()) txn_->routed_by = worker_.topology_ptr();
      reply("+OK\r\n");
    } else if (name == "exec") {
      if (!in_multi()) {
        reply_error("ERR EXEC without MULTI");
        return true;
      }
      // A pin is another connection than the shared ones: earlier replies first.
      if (!txn_->pins.empty() && !slots_.empty()) {
        barrier_ = true;
        done = false;
        return true;
      }
      txn_exec();
    } else if (name == "discard") {
      if (!in_multi()) {
        reply_error("ERR DISCARD without MULTI");
        return true;
      }
      txn_->in_multi = false;
      txn_->queued.clear();
      txn_unwatch(true);
    } else if (name == "watch") {
      if (in_multi()) {
        reply_error("ERR WATCH inside MULTI is not allowed");
        return true;
      }
      if (!slots_.empty()) {
        barrier_ = true;
        done = false;
        return true;
      }
      txn_watch(args);
    } else {  // unwatch
      if (in_multi()) {
        txn_queue(plan, args, raw);
        return true;
      }
      txn_unwatch(false);
    }
    return true;
  }
  if (!in_multi()) return false;
  if (name == "reset" || name == "quit") return false;  // as Redis: they act at once
  txn_queue(plan, args, raw);
  return true;
}

void Client::txn_reset() {
  txn_release_pins(false);
  if (txn_) {
    txn_->in_multi = false;
    txn_->dirty = false;
    txn_->queued.clear();
  }
}

void Client::txn_protocol_changed(int protocol) {
  // The pins carry WATCHes, so they stay; they now speak the client's new protocol (and are
  // closed, not pooled, when released: the pool sorts connections by protocol).
  if (!txn_) return;
  std::string hello;
  const std::string p = std::to_string(protocol);
  const std::array<std::string_view, 2> argv{"HELLO", p};
  resp::append_command(hello, argv);
  for (auto& pin : txn_->pins) {
    pin.conn->send(&g_discard, 0, hello);
    pin.switched = true;
  }
}

bool Client::txn_runtime_error(const proxy::Plan& plan, std::span<const std::string_view> args) {
  // MSET/MSETNX with a key but no value: Redis queues it (its arity check passes) and fails it
  // when EXEC runs it; Lockstep's router refuses it before routing, so it becomes that error
  // in place.
  if (!in_multi() || plan.cmd == nullptr || args.size() < 3 ||
      (plan.cmd->route != proxy::Route::kSplitMset &&
       plan.cmd->route != proxy::Route::kSplitMsetnx))
    return false;
  QueuedCommand q;
  q.kind = QueuedCommand::Kind::kLocal;
  resp::append_error(q.local_reply, plan.error);
  txn_->queued.push_back(std::move(q));
  reply("+QUEUED\r\n");
  return true;
}

void Client::txn_queue(const proxy::Plan& plan, std::span<const std::string_view> args,
                       std::string_view raw) {
  TxnState& t = *txn_;
  const auto live = worker_.shared().settings();
  const auto& tcfg = live->transactions;
  if (t.queued.size() >= static_cast<size_t>(tcfg.max_queued)) {
    t.dirty = true;
    reply_error(
        fmt::format("ERR too many commands in one transaction (transactions.max_queued "
                    "is {})",
                    tcfg.max_queued));
    return;
  }
  t.queued_bytes += raw.size();
  if (t.queued_bytes > static_cast<size_t>(tcfg.max_queued_bytes)) {
    t.dirty = true;
    reply_error(fmt::format("ERR transaction too large (transactions.max_queued_bytes is {})",
                            tcfg.max_queued_bytes));
    return;
  }
  const std::string_view name = plan.cmd->name;
  QueuedCommand q;
  switch (plan.kind) {
    case proxy::Plan::Kind::kLocal: {
      q.kind = QueuedCommand::Kind::kLocal;
      if (name == "ping") {
        if (args.size() > 1)
          resp::append_bulk(q.local_reply, args[1]);
        else
          q.local_reply = "+PONG\r\n";
      } else if (name == "echo") {
        resp::append_bulk(q.local_reply, args[1]);
      } else if (name == "unwatch") {
        q.local_reply = "+OK\r\n";  // EXEC drops the WATCHes anyway
      } else {
        t.dirty = true;
        reply_error(fmt::format(
            "ERR '{}' cannot be queued in a transaction through Lockstep: the proxy answers it "
            "itself, outside any backend's MULTI",
            name));
        return;
      }
      break;
    }
    case proxy::Plan::Kind::kSingle:
      queue_routed(plan, args, raw, q);
      break;
    case proxy::Plan::Kind::kAny:
      q.kind = QueuedCommand::Kind::kAny;
      q.raw.assign(raw);
      break;
    case proxy::Plan::Kind::kSplit: {
      if (plan.cmd->route == proxy::Route::kSplitMsetnx) {
        t.dirty = true;
        reply_error(
            "ERR MSETNX across backends cannot be queued in a transaction through Lockstep; use "
            "{hash tags}, or WATCH the keys and MSET");
        return;
      }
      queue_routed(plan, args, raw, q);
      break;
    }
    case proxy::Plan::Kind::kFanout:
    case proxy::Plan::Kind::kError:
      t.dirty = true;
      reply_error(fmt::format(
          "ERR '{}' cannot be queued in a transaction through Lockstep: it runs on every backend",
          name));
      return;
  }
  t.queued.push_back(std::move(q));
  reply("+QUEUED\r\n");
}

void Client::txn_exec() {
  TxnState& t = *txn_;
  t.in_multi = false;
  std::vector<QueuedCommand> queued = std::move(t.queued);
  t.queued.clear();
  if (t.dirty) {
    t.dirty = false;
    txn_release_pins(false);  // EXEC unwatches; a closed connection forgets its WATCHes
    reply_error("EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  if (t.routed_by != nullptr && t.routed_by.get() != &worker_.topology() &&
      !(t.routed_by->slots == worker_.topology().slots)) {
    // The slot map changed since MULTI/WATCH: commands and WATCHes went by the old one.
    txn_release_pins(false);
    txn_stats().watch_failed.fetch_add(1, std::memory_order_relaxed);
    reply(protocol() >= 3 ? kNil3 : kNilArray2);
    return;
  }
  for (const auto& p : t.pins) {
    if (!p.conn->ready()) {
      // The connection that held a WATCH broke: a change may have been missed.
      txn_release_pins(false);
      txn_stats().watch_failed.fetch_add(1, std::memory_order_relaxed);
      reply(protocol() >= 3 ? kNil3 : kNilArray2);
      return;
    }
  }
  const bool all_local = std::all_of(queued.begin(), queued.end(), [](const QueuedCommand& q) {
    return q.kind == QueuedCommand::Kind::kLocal;
  });
  if (all_local && t.pins.empty()) {
    std::string out;
    resp::append_array_header(out, static_cast<int64_t>(queued.size()));
    for (const auto& q : queued) out += q.local_reply;
    reply(out);
    return;
  }
  uint64_t seq;
  auto job =
      std::make_unique<ExecJob>(worker_, id_, std::move(queued), t.pins, any_backend(), protocol());
  ExecJob& j = *job;
  start_job(std::move(job), seq);
  j.attempt(*this, seq);
  barrier_ = true;  // later commands wait for every participant's apply
}

void Client::txn_msetnx(const proxy::Plan& plan, std::span<const std::string_view> args) {
  std::vector<QueuedCommand> queued(1);
  queued[0].kind = QueuedCommand::Kind::kSplit;
  split_parts(plan, args, "MSET", queued[0]);
  uint64_t seq;
  auto job = std::make_unique<ExecJob>(worker_, id_, std::move(queued), std::vector<TxnPin>{},
                                       any_backend(), protocol(), true);
  ExecJob& j = *job;
  start_job(std::move(job), seq);
  j.attempt(*this, seq);
  barrier_ = true;  // a later command must see every backend's keys set
}

bool Client::txn_guarded(const proxy::Plan& plan, std::span<const std::string_view> args,
                         std::string_view raw) {
  if (plan.blocking) return false;  // cannot run inside MULTI (it would not block)
  if (worker_.isolation() == 1 && (plan.cmd->flags & proxy::kFlagWrite) == 0) {
    // Scripts and functions do not declare themselves writes in COMMAND's flags, but may write.
    const Worker::ScriptCommands& sc = worker_.script_commands();
    if (plan.cmd != sc.eval && plan.cmd != sc.evalsha && plan.cmd != sc.fcall) return false;
  }
  if (plan.kind != proxy::Plan::Kind::kSingle && plan.kind != proxy::Plan::Kind::kSplit)
    return false;
  std::vector<QueuedCommand> queued(1);
  queue_routed(plan, args, raw, queued[0]);
  uint64_t seq;
  auto job = std::make_unique<ExecJob>(worker_, id_, std::move(queued), std::vector<TxnPin>{},
                                       any_backend(), protocol(), false, true);
  ExecJob& j = *job;
  start_job(std::move(job), seq);
  j.attempt(*this, seq);
  // Ordered like a transaction: a later command could otherwise overtake a retried attempt.
  barrier_ = true;
  return true;
}

void Client::txn_watch(std::span<const std::string_view> args) {
  if (!txn_) txn_ = std::make_unique<TxnState>();
  TxnState& t = *txn_;
  for (size_t i = 1; i < args.size(); ++i) {
    if (proxy::is_reserved_key(args[i])) {
      reply_error(proxy::kReservedKeyError);
      return;
    }
  }
  const auto& slots = worker_.topology().slots;
  std::vector<std::vector<std::string_view>> by_backend(worker_.topology().backends.size());
  if (t.pins.empty()) {
    // Each backend a client WATCHes costs a connection of its own: capped like blocking ones.
    SharedState& sh = worker_.shared();
    if (sh.stats.watch_connections.load(std::memory_order_relaxed) >=
        sh.cfg.limits.max_blocked_clients) {
      reply_error(fmt::format("ERR too many WATCHing clients (limits.max_blocked_clients is {})",
                              sh.cfg.limits.max_blocked_clients));
      return;
    }
    if (!t.in_multi) t.routed_by = worker_.topology_ptr();
  }
  for (size_t i = 1; i < args.size(); ++i)
    by_backend[static_cast<size_t>(slots.owner_of_key(args[i]))].push_back(args[i]);
  size_t nparts = 0;
  for (const auto& keys : by_backend) nparts += keys.empty() ? 0 : 1;
  uint64_t seq;
  start_job(std::make_unique<PinJob>(nparts, false), seq);
  size_t part = 0;
  for (size_t b = 0; b < by_backend.size(); ++b) {
    if (by_backend[b].empty()) continue;
    TxnPin* pin = nullptr;
    for (auto& p : t.pins)
      if (p.backend == static_cast<int>(b)) pin = &p;
    if (pin == nullptr) {
      t.pins.push_back(TxnPin{
          static_cast<int>(b), worker_.acquire_dedicated(static_cast<int>(b), protocol()), {}});
      worker_.shared().stats.watch_connections.fetch_add(1, std::memory_order_relaxed);
      pin = &t.pins.back();
    }
    std::vector<std::string_view> cmd{"WATCH"};
    cmd.insert(cmd.end(), by_backend[b].begin(), by_backend[b].end());
    for (auto k : by_backend[b])
      if (std::find(pin->keys.begin(), pin->keys.end(), k) == pin->keys.end())
        pin->keys.emplace_back(k);
    std::string req;
    resp::append_command(req, cmd);
    send_on(*pin->conn, seq, part++, req);
  }
  barrier_ = true;  // later commands use other connections: they wait for the WATCH
}

void Client::txn_unwatch(bool discard) {
  (void)discard;
  if (!txn_ || txn_->pins.empty()) {
    reply("+OK\r\n");
    return;
  }
  uint64_t seq;
  start_job(std::make_unique<PinJob>(txn_->pins.size(), true), seq);
  static constexpr std::string_view kUnwatch = "*1\r\n$7\r\nUNWATCH\r\n";
  size_t part = 0;
  for (auto& p : txn_->pins) send_on(*p.conn, seq, part++, kUnwatch);
}

}  // namespace lockstep::server
