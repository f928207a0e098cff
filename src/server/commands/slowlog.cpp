// SLOWLOG GET/LEN/RESET/HELP: Lockstep's slow log (stats/slow_log.h), in Redis 7.0's reply
// shape: the command name and argument count of slow requests (arguments are forwarded
// without being copied, so they are not kept).
#include "server/commands/handlers.h"
#include "server/net/shared_state.h"

namespace lockstep::server {
namespace {

void slowlog_get(Client& c, const Request& r) {
  int64_t count = 10;
  if (r.args.size() == 3 && (!resp::parse_int64(r.args[2], count) || count < -1)) {
    c.reply_error("ERR count should be greater than or equal to -1");
    return;
  }
  auto entries = c.shared().slowlog.get(count == -1 ? SIZE_MAX : static_cast<size_t>(count));
  std::string out;
  resp::append_array_header(out, static_cast<int64_t>(entries.size()));
  for (const auto& e : entries) {
    resp::append_array_header(out, 6);
    resp::append_integer(out, static_cast<int64_t>(e.id));
    resp::append_integer(out, e.unix_time);
    resp::append_integer(out, static_cast<int64_t>(e.duration_us));
    resp::append_array_header(out, static_cast<int64_t>(e.args.size()));
    for (const auto& a : e.args) resp::append_bulk(out, a);
    resp::append_bulk(out, e.client_addr);
    resp::append_bulk(out, e.client_name);
  }
  c.reply(out);
}

void slowlog_len(Client& c, const Request&) {
  std::string out;
  resp::append_integer(out, static_cast<int64_t>(c.shared().slowlog.size()));
  c.reply(out);
}

void slowlog_reset(Client& c, const Request&) {
  c.shared().slowlog.reset();
  c.reply_ok();
}

void slowlog_help(Client& c, const Request&) {
  static constexpr std::string_view kHelp[] = {
      "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET [<count>]",
      "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
      "    Entries are made of: id, timestamp, time in microseconds, arguments array,",
      "    client IP and port, client name. Lockstep keeps the command name and the",
      "    argument count (arguments are forwarded without being copied).",
      "LEN",
      "    Return the length of the slowlog.",
      "RESET",
      "    Reset the slowlog.",
      "HELP",
      "    Print this help."};
  reply_help(c, kHelp);
}

}  // namespace

void register_slowlog_commands(HandlerTable& t) {
  t.add("slowlog|get", slowlog_get);
  t.add("slowlog|len", slowlog_len);
  t.add("slowlog|reset", slowlog_reset);
  t.add("slowlog|help", slowlog_help);
}

}  // namespace lockstep::server
