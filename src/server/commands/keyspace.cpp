// Fan-out commands that need more than sending the request everywhere: FLUSHALL/FLUSHDB (keep
// Lockstep's own keys) and CONFIG RESETSTAT (Lockstep's statistics are reset too).
#include "server/commands/handlers.h"
#include "server/net/worker.h"

namespace lockstep::server {
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

void flush(Client& c, const Request& r) {
  std::vector<std::string_view> eval = {"EVAL", kFlushKeepingInternalLua, "0"};
  if (r.args.size() == 2) {
    if (!proxy::iequals(r.args[1], "async") && !proxy::iequals(r.args[1], "sync")) {
      c.reply_error("ERR syntax error");
      return;
    }
    eval.push_back(r.args[1]);
  }
  std::string request;
  resp::append_command(request, eval);
  c.fan_out(*r.plan.cmd, request);
}

void config_resetstat(Client& c, const Request& r) {
  // Each worker clears the counters it writes, on its own thread.
  SharedState& sh = c.shared();
  sh.stats.reset_totals();
  for (Worker* w : sh.workers) w->post_task([w] { w->reset_counters(); });
  c.serve_by_route(r);
}

}  // namespace

void register_keyspace_commands(HandlerTable& t) {
  t.add("flushall", flush);
  t.add("flushdb", flush);
  t.add("config|resetstat", config_resetstat);
}

}  // namespace lockstep::server
