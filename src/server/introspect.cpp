// SLOWLOG, LATENCY and INFO commandstats/latencystats: Lockstep's view of the requests through
// it, in Redis 7.0's reply shapes so existing tools can read them.
#include <fmt/format.h>

#include "lockstep/proxy/router.h"
#include "worker.h"

namespace lockstep::server {

using proxy::iequals;

namespace {

// Sum of one counter over every worker (each worker writes its own).
template <typename F>
uint64_t sum_workers(const SharedState& sh, uint16_t id, F field) {
  uint64_t total = 0;
  for (const Worker* w : sh.workers)
    total += field(w->counters(id)).load(std::memory_order_relaxed);
  return total;
}

template <typename F>
void for_each_command(const proxy::CommandTable& table, F&& f) {
  for (const proxy::CommandInfo& c : table.all()) {
    f(c);
    for (const proxy::CommandInfo& s : c.subcommands) f(s);
  }
}

std::array<uint64_t, kLatencyBuckets> histogram(const SharedState& sh, uint16_t id) {
  std::array<uint64_t, kLatencyBuckets> h{};
  for (const Worker* w : sh.workers)
    for (int b = 0; b < kLatencyBuckets; ++b)
      h[static_cast<size_t>(b)] +=
          w->counters(id).buckets[static_cast<size_t>(b)].load(std::memory_order_relaxed);
  return h;
}

// The upper bound (µs) of the bucket holding the p-th percentile.
uint64_t percentile(const std::array<uint64_t, kLatencyBuckets>& h, uint64_t total, double p) {
  const double want = p / 100.0 * static_cast<double>(total);
  uint64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += h[static_cast<size_t>(b)];
    if (static_cast<double>(seen) >= want) return uint64_t{1} << (b + 1);
  }
  return uint64_t{1} << kLatencyBuckets;
}

}  // namespace

void append_commandstats(const SharedState& sh, std::string& text) {
  text += "# Commandstats\r\n";
  for_each_command(*sh.table, [&](const proxy::CommandInfo& c) {
    const uint64_t calls = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.calls; });
    const uint64_t rejected = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.rejected; });
    if (calls == 0 && rejected == 0) return;
    const uint64_t usec = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.usec; });
    const uint64_t failed = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.failed; });
    fmt::format_to(std::back_inserter(text),
                   "cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls={},"
                   "failed_calls={}\r\n",
                   c.name, calls, usec, calls ? static_cast<double>(usec) / calls : 0.0, rejected,
                   failed);
  });
  text += "\r\n";
}

void append_latencystats(const SharedState& sh, std::string& text) {
  text += "# Latencystats\r\n";
  for_each_command(*sh.table, [&](const proxy::CommandInfo& c) {
    const uint64_t calls = sum_workers(
        sh, c.id, [](const CommandCounters& k) -> auto& { return k.calls; });
    if (calls == 0) return;
    auto h = histogram(sh, c.id);
    fmt::format_to(std::back_inserter(text),
                   "latency_percentiles_usec_{}:p50={},p99={},p99.9={}\r\n", c.name,
                   percentile(h, calls, 50), percentile(h, calls, 99), percentile(h, calls, 99.9));
  });
  text += "\r\n";
}

void Client::cmd_slowlog(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  std::string_view sub = args[1];
  std::string out;
  if (iequals(sub, "get")) {
    int64_t count = 10;
    if (args.size() == 3 && (!resp::parse_int64(args[2], count) || count < -1)) {
      reply_error("ERR count should be greater than or equal to -1");
      return;
    }
    auto entries = sh.slowlog.get(count == -1 ? SIZE_MAX : static_cast<size_t>(count));
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
  } else if (iequals(sub, "len")) {
    resp::append_integer(out, static_cast<int64_t>(sh.slowlog.size()));
  } else if (iequals(sub, "reset")) {
    sh.slowlog.reset();
    out = "+OK\r\n";
  } else {  // help
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
    resp::append_array_header(out, static_cast<int64_t>(std::size(kHelp)));
    for (auto l : kHelp) resp::append_simple(out, l);
  }
  reply(out);
}

void Client::cmd_latency(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  std::string_view sub = args[1];
  std::string out;
  if (iequals(sub, "latest")) {
    LatencyMonitor::Sample last{};
    uint64_t max = 0;
    if (sh.latency.latest(last, max)) {
      resp::append_array_header(out, 1);
      resp::append_array_header(out, 4);
      resp::append_bulk(out, "command");
      resp::append_integer(out, last.unix_time);
      resp::append_integer(out, static_cast<int64_t>(last.ms));
      resp::append_integer(out, static_cast<int64_t>(max));
    } else {
      resp::append_array_header(out, 0);
    }
  } else if (iequals(sub, "history")) {
    if (args.size() != 3) {
      reply_error(proxy::arity_error("latency|history"));
      return;
    }
    auto samples =
        iequals(args[2], "command") ? sh.latency.history() : std::vector<LatencyMonitor::Sample>{};
    resp::append_array_header(out, static_cast<int64_t>(samples.size()));
    for (const auto& s : samples) {
      resp::append_array_header(out, 2);
      resp::append_integer(out, s.unix_time);
      resp::append_integer(out, static_cast<int64_t>(s.ms));
    }
  } else if (iequals(sub, "reset")) {
    bool all = args.size() == 2, ours = all;
    for (size_t i = 2; i < args.size(); ++i) ours = ours || iequals(args[i], "command");
    const bool had = !sh.latency.history().empty();
    if (ours) sh.latency.reset();
    resp::append_integer(out, ours && had ? 1 : 0);
  } else if (iequals(sub, "histogram")) {
    std::vector<const proxy::CommandInfo*> cmds;
    if (args.size() == 2) {
      for_each_command(*sh.table, [&](const proxy::CommandInfo& c) { cmds.push_back(&c); });
    } else {
      for (size_t i = 2; i < args.size(); ++i) {
        const proxy::CommandInfo* c = sh.table->find(args[i]);
        if (c != nullptr) cmds.push_back(c);
      }
    }
    std::string body;
    int64_t n = 0;
    for (const proxy::CommandInfo* c : cmds) {
      const uint64_t calls = sum_workers(
          sh, c->id, [](const CommandCounters& k) -> auto& { return k.calls; });
      if (calls == 0) continue;
      ++n;
      auto h = histogram(sh, c->id);
      resp::append_bulk(body, c->name);
      resp::append_map_header(body, 2, protocol());
      resp::append_bulk(body, "calls");
      resp::append_integer(body, static_cast<int64_t>(calls));
      resp::append_bulk(body, "histogram_usec");
      // Cumulative counts by bucket upper bound (µs), as Redis reports them: only buckets
      // that add calls, so the counts strictly increase.
      int used = 0;
      for (int b = 0; b < kLatencyBuckets; ++b) used += h[static_cast<size_t>(b)] ? 1 : 0;
      resp::append_map_header(body, used, protocol());
      uint64_t cum = 0;
      for (int b = 0; b < kLatencyBuckets; ++b) {
        if (h[static_cast<size_t>(b)] == 0) continue;
        cum += h[static_cast<size_t>(b)];
        resp::append_integer(body, static_cast<int64_t>(uint64_t{1} << (b + 1)));
        resp::append_integer(body, static_cast<int64_t>(cum));
      }
    }
    resp::append_map_header(out, n, protocol());
    out += body;
  } else {  // help
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
    resp::append_array_header(out, static_cast<int64_t>(std::size(kHelp)));
    for (auto l : kHelp) resp::append_simple(out, l);
  }
  reply(out);
}

}  // namespace lockstep::server
