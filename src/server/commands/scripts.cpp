// Scripts through the proxy. EVAL and SCRIPT LOAD teach the script cache (script_cache.h) the
// bodies they carry, so an EVALSHA that a backend answers with -NOSCRIPT (it never saw the
// script, restarted, or had its cache flushed) is retried there once as EVAL. SCRIPT FLUSH
// empties the cache, so EVALSHA of an earlier script fails again, as on one Redis.
#include "server/commands/handlers.h"
#include "server/commands/noscript_job.h"
#include "server/commands/script_cache.h"
#include "server/net/worker.h"
#include "server/txn/client_txn.h"

namespace lockstep::server {
namespace {

void eval(Client& c, const Request& r) {
  ScriptCache::instance().learn(r.args[1]);
  c.serve_by_route(r);
}

// EVALSHA: forwarded as is; a -NOSCRIPT is retried as EVAL when any client sent the body
// through Lockstep. Until one has, nothing is learned and the retry job is skipped.
void evalsha(Client& c, const Request& r) {
  const proxy::Plan& plan = r.plan;
  if (c.worker().isolation() != Isolation::kNone && ClientTxn::guarded(c, r)) return;
  const int backend = plan.kind == proxy::Plan::Kind::kSingle ? plan.backend : c.any_backend();
  if (r.args.size() < 3 || ScriptCache::instance().empty()) {
    c.forward(backend, r.raw);
    return;
  }
  std::vector<std::string> argv(r.args.begin(), r.args.end());
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
  c.start_job(std::make_unique<NoScriptRetryJob>(backend, std::move(fallback)), seq);
  c.send_part(backend, seq, 0, r.raw);
}

void script_load(Client& c, const Request& r) {
  ScriptCache::instance().learn(r.args[2]);
  c.serve_by_route(r);
}

void script_flush(Client& c, const Request& r) {
  ScriptCache::instance().clear();
  c.serve_by_route(r);
}

}  // namespace

void register_script_commands(HandlerTable& t) {
  t.add("eval", eval);
  t.add("eval_ro", eval);
  t.add("evalsha", evalsha);
  t.add("evalsha_ro", evalsha);
  t.add("script|load", script_load);
  t.add("script|flush", script_flush);
}

}  // namespace lockstep::server
