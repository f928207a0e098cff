// MONITOR: every command through Lockstep (all workers), in Redis' format. The feed
// (monitor_feed.h) formats a request only while someone watches and posts the line to each
// watcher's worker; a watcher's ClientMonitor part unregisters it when it disconnects.
#include <fmt/format.h>

#include <chrono>

#include "server/commands/handlers.h"
#include "server/commands/monitor_feed.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

using proxy::iequals;

class ClientMonitor final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kMonitor;
  bool watching = false;
  void close(Client& c) override {
    if (watching) c.shared().monitors.remove(&c.worker(), c.id());
  }
};

void monitor(Client& c, const Request&) {
  ClientMonitor& m = c.part<ClientMonitor>();
  if (!m.watching) {
    m.watching = true;
    c.shared().monitors.add(&c.worker(), c.id());
  }
  c.reply_ok();
}

// sdscatrepr's escaping, as Redis quotes MONITOR arguments.
void append_quoted(std::string& line, std::string_view arg) {
  line += '"';
  for (unsigned char ch : arg) {
    switch (ch) {
      case '\\':
        line += "\\\\";
        break;
      case '"':
        line += "\\\"";
        break;
      case '\n':
        line += "\\n";
        break;
      case '\r':
        line += "\\r";
        break;
      case '\t':
        line += "\\t";
        break;
      case '\a':
        line += "\\a";
        break;
      case '\b':
        line += "\\b";
        break;
      default:
        if (ch >= 32 && ch < 127)
          line += static_cast<char>(ch);
        else
          line += fmt::format("\\x{:02x}", ch);
    }
  }
  line += '"';
}

}  // namespace

void MonitorFeed::add(Worker* w, uint64_t client_id) {
  {
    std::lock_guard lock(mu_);
    watchers_.emplace_back(w, client_id);
  }
  count_.fetch_add(1);
}

void MonitorFeed::remove(Worker* w, uint64_t client_id) {
  std::lock_guard lock(mu_);
  std::erase(watchers_, std::make_pair(w, client_id));
  count_.fetch_sub(1);
}

std::string MonitorFeed::format(std::span<const std::string_view> args, std::string_view peer) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  std::string line = fmt::format("+{}.{:06d} [0 {}]", us / 1000000, us % 1000000, peer);
  // As Redis: AUTH's arguments, and HELLO's AUTH username and password, are redacted.
  const bool auth = iequals(args[0], "auth");
  size_t hello_auth = 0;
  if (iequals(args[0], "hello"))
    for (size_t i = 2; i < args.size(); ++i)
      if (iequals(args[i], "auth")) {
        hello_auth = i;
        break;
      }
  for (size_t i = 0; i < args.size(); ++i) {
    line += ' ';
    if ((auth && i > 0) || (hello_auth > 0 && (i == hello_auth + 1 || i == hello_auth + 2)))
      line += "\"(redacted)\"";
    else
      append_quoted(line, args[i]);
  }
  line += "\r\n";
  return line;
}

void MonitorFeed::publish(const std::string& line) {
  std::vector<std::pair<Worker*, uint64_t>> targets;
  {
    std::lock_guard lock(mu_);
    targets = watchers_;
  }
  for (auto [w, id] : targets) w->post_monitor_line(id, line);
}

void register_monitor_commands(HandlerTable& t) {
  t.add("monitor", monitor);
}

}  // namespace lockstep::server
