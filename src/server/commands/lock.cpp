// The client side of LOCK.*: arguments are checked here, on the client's worker; the rounds run
// in the process' one LockService (lock/lock_service.h) on the home worker, which answers
// through deliver_external. LOCK.GUARD runs here: it is a data command, sent to the backend that
// owns its keys.
#include <fmt/format.h>

#include "lockstep/lock/command.h"
#include "lockstep/lock/scripts.h"
#include "server/commands/handlers.h"
#include "server/commands/noscript_job.h"
#include "server/lock/client_locks.h"
#include "server/lock/lock_service.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

// LOCK.GUARD <name> <fence> <command ...>: the wrapped command runs only if no newer holder of
// the lock has written a higher fence (-STALEFENCE otherwise).
// A KEEPALIVE lock this connection held was lost: its next LOCK command says so, once.
bool report_lost(Client& c) {
  auto* locks = c.find_part<ClientLocks>();
  if (locks == nullptr) return false;
  std::string lost = locks->take_lost_error();
  if (lost.empty()) return false;
  c.reply_error(lost);
  return true;
}

void guard(Client& c, const Request& r) {
  if (report_lost(c)) return;
  auto parsed = lock::parse_guard(r.args);
  if (auto* e = std::get_if<lock::ArgError>(&parsed)) {
    c.reply_error(e->text);
    return;
  }
  const lock::GuardArgs& g = std::get<lock::GuardArgs>(parsed);
  // The wrapped command is routed like any request and checked against this user's ACL.
  Worker& w = c.worker();
  const proxy::Plan& plan = w.router().route(g.command, w.topology().slots);
  if (plan.kind == proxy::Plan::Kind::kError) {
    c.reply_error(plan.error);
    return;
  }
  if (plan.kind != proxy::Plan::Kind::kSingle || plan.blocking) {
    c.reply_error(
        "ERR LOCK.GUARD needs a non-blocking command with keys, all on one backend (use "
        "{hash tags})");
    return;
  }
  if (const acl::User* user = c.user()) {
    const acl::Result access = acl::check(*user, *plan.cmd, g.command);
    if (!access.allowed()) {
      c.reply_error(access.error());
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
  // EVALSHA of the guard script; on -NOSCRIPT the same request as EVAL. The reply is the
  // wrapped command's, or -STALEFENCE.
  uint64_t seq;
  c.start_job(
      std::make_unique<NoScriptRetryJob>(
          backend, [eval = std::move(eval)]() -> std::optional<std::string> { return eval; }),
      seq);
  c.send_part(backend, seq, 0, evalsha);
}

// LOCK.ACQUIRE / RELEASE / EXTEND / STATUS: parsed here (`Args` from `parse`), run by the
// LockService's `run` on the home worker, answered in this reply slot.
template <class Args, auto parse, auto run>
void on_lock_worker(Client& c, const Request& r) {
  if (report_lost(c)) return;
  c.part<ClientLocks>();  // from now on, closing the client tells the lock worker
  const lock::LockSettings settings = lock_settings(*c.shared().settings());  // live values
  auto parsed = [&] {
    if constexpr (std::is_invocable_v<decltype(parse), std::span<const std::string_view>,
                                      const lock::LockSettings&>)
      return parse(r.args, settings);
    else
      return parse(r.args);
  }();
  const uint64_t seq = c.open_external_slot();
  if (auto* e = std::get_if<lock::ArgError>(&parsed)) {
    c.deliver_external(seq, "-" + e->text + "\r\n");
    return;
  }
  Worker* home = c.shared().home();
  const LockOrigin origin{&c.worker(), c.id(), seq, c.protocol()};
  home->post_task([home, origin, a = std::get<Args>(std::move(parsed))]() mutable {
    (home->locks().*run)(origin, std::move(a));
  });
}

}  // namespace

void ClientLocks::lost(Client& c, const std::string& name) {
  if (c.closed()) return;
  if (c.protocol() >= 3) {
    // RESP3: tell the client at once, as a push it can tell apart from replies.
    std::string push = ">3\r\n$4\r\nlock\r\n$4\r\nlost\r\n";
    resp::append_bulk(push, name);
    c.deliver_push(push);
  } else {
    c.part<ClientLocks>().lost_.push_back(name);
  }
}

std::string ClientLocks::take_lost_error() {
  if (lost_.empty()) return {};
  std::string names;
  for (const auto& n : lost_) names += (names.empty() ? "" : ", ") + n;
  lost_.clear();
  return fmt::format(
      "LOCKLOST lock(s) {} held with KEEPALIVE by this connection were lost: renewal did not "
      "reach a quorum",
      names);
}

void ClientLocks::close(Client& c) {
  // Its waiters leave the queues; its KEEPALIVE locks stop being renewed.
  Worker* home = c.shared().home();
  home->post_task([home, id = c.id()] { home->locks().client_closed(id); });
}

void register_lock_commands(HandlerTable& t) {
  t.add("lock.guard", guard);
  t.add("lock.acquire",
        on_lock_worker<lock::AcquireArgs, lock::parse_acquire, &LockService::acquire>);
  t.add("lock.release",
        on_lock_worker<lock::ReleaseArgs, lock::parse_release, &LockService::release>);
  t.add("lock.extend", on_lock_worker<lock::ExtendArgs, lock::parse_extend, &LockService::extend>);
  t.add("lock.status", on_lock_worker<lock::StatusArgs, lock::parse_status, &LockService::status>);
}

}  // namespace lockstep::server
