// CLIENT KILL, PAUSE/UNPAUSE and REPLY: they act on Lockstep's own client connections (the
// backends' connections are Lockstep's, not the clients').
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "lockstep/proxy/router.h"
#include "server/pubsub/pubsub_hub.h"
#include "server/net/worker.h"

namespace lockstep::server {

using proxy::iequals;

namespace {
uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string peer_text(const sockaddr* sa) {
  char host[64] = "?";
  if (sa->sa_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(s6, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(s6->sin6_port));
  }
  auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
  uv_ip4_name(s4, host, sizeof(host));
  return fmt::format("{}:{}", host, ntohs(s4->sin_port));
}
}  // namespace

void Client::cmd_client_reply(std::span<const std::string_view> args) {
  if (args.size() != 3) {
    reply_error(proxy::arity_error("client|reply"));
    return;
  }
  if (iequals(args[2], "on")) {
    reply_mode_ = ReplyMode::kOn;
    cur_suppress_ = false;  // ON is answered even when it ends an OFF
    reply("+OK\r\n");
  } else if (iequals(args[2], "off")) {
    reply_mode_ = ReplyMode::kOff;  // no reply, not even to this command
  } else if (iequals(args[2], "skip")) {
    if (reply_mode_ != ReplyMode::kOff) reply_mode_ = ReplyMode::kSkipNext;
  } else {
    reply_error("ERR syntax error");
  }
}

void Client::cmd_client_kill(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  // Old form: CLIENT KILL addr:port -> +OK or an error.
  const bool old_form = args.size() == 3;
  std::string addr, laddr, type;
  uint64_t id = 0;
  bool skipme = true, has_user = false;
  std::string user;
  if (old_form) {
    addr = std::string(args[2]);
  } else {
    if (args.size() % 2 != 0) {
      reply_error("ERR syntax error");
      return;
    }
    for (size_t i = 2; i + 1 < args.size(); i += 2) {
      std::string_view opt = args[i], val = args[i + 1];
      int64_t v = 0;
      if (iequals(opt, "id")) {
        if (!resp::parse_int64(val, v) || v <= 0) {
          reply_error("ERR client-id should be greater than 0");
          return;
        }
        id = static_cast<uint64_t>(v);
      } else if (iequals(opt, "addr")) {
        addr = std::string(val);
      } else if (iequals(opt, "laddr")) {
        laddr = std::string(val);
      } else if (iequals(opt, "type")) {
        type = std::string(val);
        if (!iequals(type, "normal") && !iequals(type, "master") && !iequals(type, "replica") &&
            !iequals(type, "slave") && !iequals(type, "pubsub")) {
          reply_error(fmt::format("ERR Unknown client type '{}'", val));
          return;
        }
      } else if (iequals(opt, "user")) {
        has_user = true;
        user = std::string(val);
        if (sh.acl->find(user) == nullptr) {
          reply_error(fmt::format("ERR No such user '{}'", val));
          return;
        }
      } else if (iequals(opt, "skipme")) {
        if (iequals(val, "yes")) {
          skipme = true;
        } else if (iequals(val, "no")) {
          skipme = false;
        } else {
          reply_error("ERR syntax error");
          return;
        }
      } else {
        reply_error("ERR syntax error");
        return;
      }
    }
  }
  std::vector<std::pair<Worker*, uint64_t>> victims;
  {
    std::lock_guard lock(sh.registry_mu);
    for (auto& [cid, c] : sh.registry) {
      if (c->closing_ && c != this) continue;
      if (id != 0 && cid != id) continue;
      if (!addr.empty() && peer_text(&c->peer_.sa) != addr) continue;
      if (!laddr.empty()) {
        sockaddr_storage local{};
        socklen_t len = sizeof(local);
        if (getsockname(c->fd_, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
            peer_text(reinterpret_cast<sockaddr*>(&local)) != laddr)
          continue;
      }
      if (!type.empty()) {
        const bool pubsub = c->sub_total() > 0;
        if (iequals(type, "pubsub") != pubsub || iequals(type, "master") ||
            iequals(type, "replica") || iequals(type, "slave"))
          continue;
      }
      if (has_user && !iequals(user, c->user_name())) continue;
      if (c == this && skipme && !old_form) continue;
      victims.emplace_back(&c->worker_, cid);
    }
  }
  for (auto [w, cid] : victims) {
    if (w == &worker_ && cid == id_)
      stop_reading_and_close_when_flushed();  // killing itself: after this reply, as Redis
    else
      w->post_kill(cid);
  }
  if (old_form) {
    if (victims.empty())
      reply_error("ERR No such client");
    else
      reply("+OK\r\n");
  } else {
    std::string out;
    resp::append_integer(out, static_cast<int64_t>(victims.size()));
    reply(out);
  }
}

void Client::cmd_client_pause(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  if (iequals(args[1], "unpause")) {
    sh.pause_until_ms.store(0);
    sh.pause_all.store(false);
    for (Worker* w : sh.workers) w->post_pause_changed();
    reply("+OK\r\n");
    return;
  }
  int64_t ms = 0;
  if (!resp::parse_int64(args[2], ms)) {
    reply_error("ERR timeout is not an integer or out of range");
    return;
  }
  if (ms < 0) {
    reply_error("ERR timeout is negative");
    return;
  }
  bool all = true;
  if (args.size() == 4) {
    if (iequals(args[3], "write")) {
      all = false;
    } else if (!iequals(args[3], "all")) {
      reply_error("ERR CLIENT PAUSE mode must be WRITE or ALL");
      return;
    }
  } else if (args.size() > 4) {
    reply_error("ERR syntax error");
    return;
  }
  // As Redis: a new pause never shortens one in progress, and ALL wins over WRITE while both
  // last; a pause that has already ended leaves nothing behind.
  const uint64_t now = steady_ms();
  const uint64_t until = now + static_cast<uint64_t>(ms);
  if (sh.pause_until_ms.load() <= now) {
    sh.pause_until_ms.store(until);
    sh.pause_all.store(all);
  } else {
    if (until > sh.pause_until_ms.load()) sh.pause_until_ms.store(until);
    if (all) sh.pause_all.store(true);
  }
  for (Worker* w : sh.workers) w->post_pause_changed();
  reply("+OK\r\n");
}

void Client::resume_after_pause() {
  held_for_pause_ = false;
  if (closing_ || in_.empty()) return;
  size_t used = process(in_.data(), in_.size());
  in_.erase(0, used);
  update_backpressure();
  mark_dirty();
}

void Client::cmd_monitor() {
  if (monitor_) {
    reply("+OK\r\n");
    return;
  }
  monitor_ = true;
  SharedState& sh = worker_.shared();
  {
    std::lock_guard lock(sh.monitor_mu);
    sh.monitor_list.emplace_back(&worker_, id_);
  }
  sh.monitors.fetch_add(1);
  reply("+OK\r\n");
}

// One MONITOR line, as Redis prints it: +<unix>.<usec> [0 <addr>] "arg" ... with arguments
// quoted and escaped like sdscatrepr. Only built while someone monitors.
void Client::feed_monitors(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  std::string line =
      fmt::format("+{}.{:06d} [0 {}]", us / 1000000, us % 1000000, peer_text(&peer_.sa));
  // As Redis: AUTH's arguments, and HELLO's AUTH username and password, are redacted.
  const bool auth = iequals(args[0], "auth");
  size_t hello_auth = 0;
  if (iequals(args[0], "hello"))
    for (size_t i = 2; i + 2 < args.size() + 1 && i < args.size(); ++i)
      if (iequals(args[i], "auth")) {
        hello_auth = i;
        break;
      }
  for (size_t i = 0; i < args.size(); ++i) {
    line += " \"";
    if ((auth && i > 0) || (hello_auth > 0 && (i == hello_auth + 1 || i == hello_auth + 2))) {
      line += "(redacted)";
    } else {
      for (unsigned char ch : args[i]) {
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
    }
    line += '"';
  }
  line += "\r\n";
  std::vector<std::pair<Worker*, uint64_t>> targets;
  {
    std::lock_guard lock(sh.monitor_mu);
    targets = sh.monitor_list;
  }
  for (auto [w, id] : targets) w->post_monitor_line(id, line);
}

void Worker::post_monitor_line(uint64_t id, std::string line) {
  {
    std::lock_guard lock(mu_);
    monitor_inbox_.emplace_back(id, std::move(line));
  }
  uv_async_send(&async_);
}

void Worker::post_kill(uint64_t client_id) {
  {
    std::lock_guard lock(mu_);
    pending_kills_.push_back(client_id);
  }
  uv_async_send(&async_);
}

void Worker::post_pause_changed() {
  {
    std::lock_guard lock(mu_);
    pause_changed_ = true;
  }
  uv_async_send(&async_);
}

void Worker::hold_for_pause(Client* c) {
  paused_clients_.push_back(c->id());
  const uint64_t until = shared_.pause_until_ms.load();
  const uint64_t now = steady_ms();
  uv_timer_start(&pause_timer_, on_pause_timer, until > now ? until - now : 0, 0);
}

void Worker::on_pause_timer(uv_timer_t* t) {
  static_cast<Worker*>(t->data)->release_paused();
}

void Worker::release_paused() {
  const uint64_t until = shared_.pause_until_ms.load();
  const uint64_t now = steady_ms();
  if (until > now && !paused_clients_.empty()) {  // extended meanwhile: wait again
    uv_timer_start(&pause_timer_, on_pause_timer, until - now, 0);
    return;
  }
  if (until != 0 && until <= now) {
    uint64_t expected = until;
    shared_.pause_until_ms.compare_exchange_strong(expected, 0);
    shared_.pause_all.store(false);
  }
  std::vector<uint64_t> ids;
  ids.swap(paused_clients_);
  for (uint64_t id : ids) {
    auto it = clients_.find(id);
    if (it != clients_.end() && !it->second->closed()) it->second->resume_after_pause();
  }
}

}  // namespace lockstep::server
