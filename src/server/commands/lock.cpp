// The client side of LOCK.*: arguments are checked here, on the client's worker; the rounds run
// in the process' one LockService (lock_service.h), which answers through deliver_external.
// LOCK.GUARD runs here: it is a data command, sent to the backend that owns its keys.
#include <fmt/format.h>

#include "server/lock/lock_service.h"
#include "lockstep/lock/command.h"
#include "lockstep/lock/scripts.h"
#include "server/commands/noscript_job.h"
#include "server/net/worker.h"

namespace lockstep::server {

namespace {

template <class T>
bool take(std::variant<T, lock::ArgError>& parsed, Client& c, T& out) {
  if (auto* e = std::get_if<lock::ArgError>(&parsed)) {
    c.reply_error_text(e->text);
    return false;
  }
  out = std::move(std::get<T>(parsed));
  return true;
}

}  // namespace

void Client::reply_error_text(std::string_view text) {
  reply_error(text);
}

void Client::cmd_lock(const proxy::CommandInfo& cmd, std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  // A KEEPALIVE lock this connection held was lost: its next LOCK command says so, once.
  if (meta_ && !meta_->lost_locks.empty()) {
    std::string names;
    for (const auto& n : meta_->lost_locks) names += (names.empty() ? "" : ", ") + n;
    meta_->lost_locks.clear();
    reply_error(
        fmt::format("LOCKLOST lock(s) {} held with KEEPALIVE by this connection were "
                    "lost: renewal did not reach a quorum",
                    names));
    return;
  }
  const lock::LockSettings settings = lock_settings(*sh.settings());  // replicated ones live
  if (cmd.name == "lock.guard") {
    lock::GuardArgs g;
    auto parsed = lock::parse_guard(args);
    if (!take(parsed, *this, g)) return;
    // The wrapped command is routed like any request and checked against this user's ACL.
    const proxy::Plan& plan = worker_.router().route(g.command, worker_.topology().slots);
    if (plan.kind == proxy::Plan::Kind::kError) {
      reply_error(plan.error);
      return;
    }
    if (plan.kind != proxy::Plan::Kind::kSingle || plan.blocking) {
      reply_error(
          "ERR LOCK.GUARD needs a non-blocking command with keys, all on one backend (use "
          "{hash tags})");
      return;
    }
    if (const acl::User* user = user_.load(std::memory_order_relaxed)) {
      const acl::Result access = acl::check(*user, *plan.cmd, g.command);
      if (!access.allowed()) {
        reply_error(access.error());
        return;
      }
    }
    proxy::KeyPositions keys;
    proxy::extract_keys(*plan.cmd, g.command, keys);
    std::vector<std::string_view> key_views;
    for (size_t i = 0; i < keys.size(); ++i) key_views.push_back(g.command[keys[i]]);
    const int backend = plan.backend;
    std::string evalsha =
        lock::guard_request(g.name, g.fence, key_views, g.command, lock::ScriptMode::kEvalSha);
    std::string eval =
        lock::guard_request(g.name, g.fence, key_views, g.command, lock::ScriptMode::kEval);
    uint64_t seq;
    // EVALSHA of the guard script; on -NOSCRIPT the same request as EVAL. The reply is the
    // wrapped command's, or -STALEFENCE.
    start_job(
        std::make_unique<NoScriptRetryJob>(
            backend, [eval = std::move(eval)]() -> std::optional<std::string> { return eval; }),
        seq);
    send_part(backend, seq, 0, evalsha);
    return;
  }

  Worker* home = sh.workers.front();  // the LockService's worker
  uint64_t seq;
  new_slot(seq);
  ++slots_[static_cast<size_t>(seq - head_seq_)].waiting;  // answered by deliver_external
  const LockOrigin origin{&worker_, id_, seq, protocol()};
  lock_user_ = true;
  auto fail = [&](const lock::ArgError& e) { deliver(seq, 0, "-" + e.text + "\r\n"); };
  if (cmd.name == "lock.acquire") {
    auto parsed = lock::parse_acquire(args, settings);
    if (auto* e = std::get_if<lock::ArgError>(&parsed)) return fail(*e);
    home->post_task([home, origin, a = std::get<lock::AcquireArgs>(std::move(parsed))]() mutable {
      home->locks().acquire(origin, std::move(a));
    });
  } else if (cmd.name == "lock.release") {
    auto parsed = lock::parse_release(args);
    if (auto* e = std::get_if<lock::ArgError>(&parsed)) return fail(*e);
    home->post_task([home, origin, a = std::get<lock::ReleaseArgs>(std::move(parsed))]() mutable {
      home->locks().release(origin, std::move(a));
    });
  } else if (cmd.name == "lock.extend") {
    auto parsed = lock::parse_extend(args, settings);
    if (auto* e = std::get_if<lock::ArgError>(&parsed)) return fail(*e);
    home->post_task([home, origin, a = std::get<lock::ExtendArgs>(std::move(parsed))]() mutable {
      home->locks().extend(origin, std::move(a));
    });
  } else if (cmd.name == "lock.status") {
    auto parsed = lock::parse_status(args);
    if (auto* e = std::get_if<lock::ArgError>(&parsed)) return fail(*e);
    home->post_task([home, origin, a = std::get<lock::StatusArgs>(std::move(parsed))]() mutable {
      home->locks().status(origin, std::move(a));
    });
  }
}

void Client::deliver_external(uint64_t seq, std::string_view reply) {
  if (closing_ || seq < head_seq_ || seq >= head_seq_ + slots_.size()) return;
  deliver(seq, 0, reply);
  mark_dirty();
}

void Client::lock_lost(const std::string& name) {
  if (closing_) return;
  if (protocol() >= 3) {
    // RESP3: tell the client at once, as a push it can tell apart from replies.
    std::string push = ">3\r\n$4\r\nlock\r\n$4\r\nlost\r\n";
    resp::append_bulk(push, name);
    reply(push);
  } else {
    mutable_meta().lost_locks.push_back(name);
  }
}

}  // namespace lockstep::server
