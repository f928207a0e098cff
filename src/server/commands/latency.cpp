// LATENCY LATEST/HISTORY/RESET/HISTOGRAM/HELP: the "command" event (stats/latency_monitor.h)
// and per-command latency histograms, measured through Lockstep (backend round trip included).
#include "server/commands/handlers.h"
#include "server/net/shared_state.h"
#include "server/stats/introspect.h"

namespace lockstep::server {
namespace {

using proxy::iequals;

void latency_latest(Client& c, const Request&) {
  LatencyMonitor::Sample last{};
  uint64_t max = 0;
  std::string out;
  if (c.shared().latency.latest(last, max)) {
    resp::append_array_header(out, 1);
    resp::append_array_header(out, 4);
    resp::append_bulk(out, "command");
    resp::append_integer(out, last.unix_time);
    resp::append_integer(out, static_cast<int64_t>(last.ms));
    resp::append_integer(out, static_cast<int64_t>(max));
  } else {
    resp::append_array_header(out, 0);
  }
  c.reply(out);
}

void latency_history(Client& c, const Request& r) {
  auto samples = iequals(r.args[2], "command") ? c.shared().latency.history()
                                               : std::vector<LatencyMonitor::Sample>{};
  std::string out;
  resp::append_array_header(out, static_cast<int64_t>(samples.size()));
  for (const auto& s : samples) {
    resp::append_array_header(out, 2);
    resp::append_integer(out, s.unix_time);
    resp::append_integer(out, static_cast<int64_t>(s.ms));
  }
  c.reply(out);
}

void latency_reset(Client& c, const Request& r) {
  bool ours = r.args.size() == 2;  // no event named: all of them
  for (size_t i = 2; i < r.args.size(); ++i) ours = ours || iequals(r.args[i], "command");
  LatencyMonitor& lm = c.shared().latency;
  const bool had = !lm.history().empty();
  if (ours) lm.reset();
  std::string out;
  resp::append_integer(out, ours && had ? 1 : 0);
  c.reply(out);
}

// One command's entry: calls, and cumulative counts by bucket upper bound (µs), as Redis
// reports them: only buckets that add calls, so the counts strictly increase.
void append_histogram(std::string& body, const SharedState& sh, const proxy::CommandInfo& cmd,
                      uint64_t calls, int protocol) {
  const auto h = command_histogram(sh, cmd.id);
  resp::append_bulk(body, cmd.name);
  resp::append_map_header(body, 2, protocol);
  resp::append_bulk(body, "calls");
  resp::append_integer(body, static_cast<int64_t>(calls));
  resp::append_bulk(body, "histogram_usec");
  int used = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) used += h[static_cast<size_t>(b)] ? 1 : 0;
  resp::append_map_header(body, used, protocol);
  uint64_t cum = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    if (h[static_cast<size_t>(b)] == 0) continue;
    cum += h[static_cast<size_t>(b)];
    resp::append_integer(body, static_cast<int64_t>(uint64_t{1} << (b + 1)));
    resp::append_integer(body, static_cast<int64_t>(cum));
  }
}

void latency_histogram(Client& c, const Request& r) {
  const SharedState& sh = c.shared();
  std::vector<const proxy::CommandInfo*> cmds;
  if (r.args.size() == 2) {
    for (const proxy::CommandInfo& cmd : sh.table->all()) {
      cmds.push_back(&cmd);
      for (const proxy::CommandInfo& sub : cmd.subcommands) cmds.push_back(&sub);
    }
  } else {
    for (size_t i = 2; i < r.args.size(); ++i)
      if (const proxy::CommandInfo* cmd = sh.table->find(r.args[i])) cmds.push_back(cmd);
  }
  std::string body;
  int64_t n = 0;
  for (const proxy::CommandInfo* cmd : cmds) {
    const uint64_t calls = command_calls(sh, cmd->id);
    if (calls == 0) continue;
    ++n;
    append_histogram(body, sh, *cmd, calls, c.protocol());
  }
  std::string out;
  resp::append_map_header(out, n, c.protocol());
  out += body;
  c.reply(out);
}

void latency_help(Client& c, const Request&) {
  static constexpr std::string_view kHelp[] = {
      "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "LATEST",
      "    Return the latest latency samples (event: command).",
      "HISTORY <event>",
      "    Return time-latency samples for the 'command' event.",
      "RESET [<event> ...]",
      "    Reset latency data of one or more events.",
      "HISTOGRAM [COMMAND ...]",
      "    Return a cumulative distribution of latencies in the format of a histogram for the",
      "    specified command names (all by default), measured through Lockstep.",
      "HELP",
      "    Prints this help."};
  reply_help(c, kHelp);
}

}  // namespace

void register_latency_commands(HandlerTable& t) {
  t.add("latency|latest", latency_latest);
  t.add("latency|history", latency_history);
  t.add("latency|reset", latency_reset);
  t.add("latency|histogram", latency_histogram);
  t.add("latency|help", latency_help);
}

}  // namespace lockstep::server
