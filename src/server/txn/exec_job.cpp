// One EXEC through the proxy: runs attempts of a txn::Coordinator until one concludes (see
// exec_job.h for the cases it serves).
#include "server/txn/exec_job.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "lockstep/txn/coordinator.h"
#include "lockstep/txn/scripts.h"
#include "server/net/worker.h"
#include "server/txn/client_txn.h"
#include "server/txn/txn_service.h"

namespace lockstep::server {
namespace {

constexpr std::string_view kNilArray2 = "*-1\r\n";
constexpr std::string_view kNil3 = "_\r\n";

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
          .send(&discard_replies(), 0, s.request);
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
          .send(&discard_replies(), 0, s.request);
    done_ = true;
    // A pin's WATCHes are gone only if an EXEC ran on it: after a fast path or a prepare on
    // every participant. Otherwise (aborted early) it may still watch keys: closed, not pooled.
    // (Only an EXEC's job owns the client's pins: a guarded command or an MSETNX between a
    // WATCH and its EXEC must leave them alone.)
    if (!pins_.empty()) c.part<ClientTxn>().release_pins(c, o == txn::Outcome::kCommitted);
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

}  // namespace

void start_exec(Client& c, std::vector<QueuedCommand> queued, std::vector<TxnPin> pins,
                ExecKind kind) {
  uint64_t seq;
  auto job = std::make_unique<ExecJob>(c.worker(), c.id(), std::move(queued), std::move(pins),
                                       c.any_backend(), c.protocol(), kind == ExecKind::kMsetnx,
                                       kind == ExecKind::kGuarded);
  ExecJob& j = *job;
  c.start_job(std::move(job), seq);
  j.attempt(c, seq);
  // Later commands wait for every participant's apply (a secondary may apply after the
  // primary's reply, and a later GET must see both), and cannot overtake a retried attempt.
  c.hold_later_requests();
}

std::string_view nil_reply(int protocol) {
  return protocol >= 3 ? kNil3 : kNilArray2;
}

}  // namespace lockstep::server
