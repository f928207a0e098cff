// CLIENT: it acts on Lockstep's own client connections (the backends' connections are
// Lockstep's, not the clients'). ID, SETNAME/GETNAME, SETINFO (Redis 7.2's, sent on connect by
// redis-py, Jedis and node-redis), INFO, LIST, KILL, PAUSE/UNPAUSE, REPLY, NO-EVICT, HELP.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "server/commands/handlers.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

using proxy::iequals;

bool valid_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '!' && ch <= '~'; });
}

bool known_type(std::string_view t) {
  return iequals(t, "normal") || iequals(t, "pubsub") || iequals(t, "master") ||
         iequals(t, "replica") || iequals(t, "slave");
}

// Every Lockstep client is "normal" or, while subscribed, "pubsub"; none is a master or replica.
bool of_type(const Client& c, std::string_view type) {
  if (iequals(type, "master") || iequals(type, "replica") || iequals(type, "slave")) return false;
  return iequals(type, "pubsub") == c.subscribed();
}

void client_id(Client& c, const Request&) {
  std::string out;
  resp::append_integer(out, static_cast<int64_t>(c.id()));
  c.reply(out);
}

void client_setname(Client& c, const Request& r) {
  if (!valid_name(r.args[2])) {
    c.reply_error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  {
    std::lock_guard lock(c.shared().registry.mutex());
    c.mutable_names().name.assign(r.args[2]);
  }
  c.reply_ok();  // not under the mutex: replying may log a slow request, which reads the name
}

void client_getname(Client& c, const Request&) {
  std::string out;
  {
    std::lock_guard lock(c.shared().registry.mutex());
    if (c.names().name.empty())
      resp::append_null(out, c.protocol());
    else
      resp::append_bulk(out, c.names().name);
  }
  c.reply(out);
}

void client_setinfo(Client& c, const Request& r) {
  const auto& args = r.args;
  if (!valid_name(args[3])) {
    c.reply_error(
        fmt::format("ERR {} cannot contain spaces, newlines or special characters.", args[2]));
    return;
  }
  bool known = true;
  {
    std::lock_guard lock(c.shared().registry.mutex());
    if (iequals(args[2], "lib-name"))
      c.mutable_names().lib_name.assign(args[3]);
    else if (iequals(args[2], "lib-ver"))
      c.mutable_names().lib_ver.assign(args[3]);
    else
      known = false;
  }
  if (known)
    c.reply_ok();
  else
    c.reply_error(fmt::format("ERR Unrecognized option '{}'", args[2]));
}

void client_info(Client& c, const Request&) {
  std::string line;
  {
    std::lock_guard lock(c.shared().registry.mutex());
    line = c.info_line(true);
  }
  std::string out;
  resp::append_verbatim(out, line, c.protocol());
  c.reply(out);
}

void client_list(Client& c, const Request& r) {
  const auto& args = r.args;
  bool only_ids = false;
  std::string_view type;  // empty = any
  std::vector<uint64_t> ids;
  for (size_t i = 2; i < args.size(); ++i) {
    if (iequals(args[i], "type") && i + 1 < args.size()) {
      type = args[++i];
      if (!known_type(type)) {
        c.reply_error(fmt::format("ERR Unknown client type '{}'", type));
        return;
      }
    } else if (iequals(args[i], "id") && i + 1 < args.size()) {
      only_ids = true;
      for (++i; i < args.size(); ++i) {
        int64_t v = 0;
        if (!resp::parse_int64(args[i], v) || v <= 0) {
          c.reply_error("ERR Invalid client ID");
          return;
        }
        ids.push_back(static_cast<uint64_t>(v));
      }
    } else {
      c.reply_error("ERR syntax error");
      return;
    }
  }
  const std::string text = c.shared().registry.locked([&](auto& clients) {
    std::vector<uint64_t> all;
    for (auto& [id, other] : clients) all.push_back(id);
    std::sort(all.begin(), all.end());
    std::string lines;
    for (uint64_t id : all) {
      if (only_ids && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      const Client* other = clients[id];
      if (!type.empty() && !of_type(*other, type)) continue;
      // Buffers of clients on other workers belong to other threads; only report our own.
      lines += other->info_line(&other->worker() == &c.worker());
    }
    return lines;
  });
  std::string out;
  resp::append_verbatim(out, text, c.protocol());
  c.reply(out);
}

// CLIENT KILL's filters (the new form; the old form is one address).
struct KillFilter {
  uint64_t id = 0;
  std::string addr, laddr, type, user;
  bool has_user = false;
  bool skipme = true;
  bool matches(const Client& self, const Client& other) const {
    if (id != 0 && other.id() != id) return false;
    if (!addr.empty() && other.peer_text() != addr) return false;
    if (!laddr.empty() && other.local_text() != laddr) return false;
    if (!type.empty() && !of_type(other, type)) return false;
    if (has_user && !iequals(user, other.user_name())) return false;
    return !(skipme && &other == &self);
  }
};

// False when the filters are malformed (already answered).
bool parse_kill_filter(Client& c, std::span<const std::string_view> args, KillFilter& f) {
  if (args.size() % 2 != 0) {
    c.reply_error("ERR syntax error");
    return false;
  }
  for (size_t i = 2; i + 1 < args.size(); i += 2) {
    const std::string_view opt = args[i], val = args[i + 1];
    int64_t v = 0;
    if (iequals(opt, "id")) {
      if (!resp::parse_int64(val, v) || v <= 0) {
        c.reply_error("ERR client-id should be greater than 0");
        return false;
      }
      f.id = static_cast<uint64_t>(v);
    } else if (iequals(opt, "addr")) {
      f.addr = std::string(val);
    } else if (iequals(opt, "laddr")) {
      f.laddr = std::string(val);
    } else if (iequals(opt, "type")) {
      if (!known_type(val)) {
        c.reply_error(fmt::format("ERR Unknown client type '{}'", val));
        return false;
      }
      f.type = std::string(val);
    } else if (iequals(opt, "user")) {
      if (c.shared().acl->find(std::string(val)) == nullptr) {
        c.reply_error(fmt::format("ERR No such user '{}'", val));
        return false;
      }
      f.has_user = true;
      f.user = std::string(val);
    } else if (iequals(opt, "skipme") && (iequals(val, "yes") || iequals(val, "no"))) {
      f.skipme = iequals(val, "yes");
    } else {
      c.reply_error("ERR syntax error");
      return false;
    }
  }
  return true;
}

void client_kill(Client& c, const Request& r) {
  // Old form: CLIENT KILL addr:port -> +OK or an error.
  const bool old_form = r.args.size() == 3;
  KillFilter f;
  if (old_form) {
    f.addr = std::string(r.args[2]);
    f.skipme = false;
  } else if (!parse_kill_filter(c, r.args, f)) {
    return;
  }
  auto victims = c.shared().registry.locked([&](auto& clients) {
    std::vector<std::pair<Worker*, uint64_t>> out;
    for (auto& [cid, other] : clients) {
      if (other->closed() && other != &c) continue;
      if (f.matches(c, *other)) out.emplace_back(&other->worker(), cid);
    }
    return out;
  });
  for (auto [w, cid] : victims) {
    if (cid == c.id())
      c.stop_reading_and_close_when_flushed();  // killing itself: after this reply, as Redis
    else
      w->post_kill(cid);
  }
  if (!old_form) {
    std::string out;
    resp::append_integer(out, static_cast<int64_t>(victims.size()));
    c.reply(out);
  } else if (victims.empty()) {
    c.reply_error("ERR No such client");
  } else {
    c.reply_ok();
  }
}

void notify_pause_changed(SharedState& sh) {
  for (Worker* w : sh.workers) w->post_pause_changed();
}

void client_pause(Client& c, const Request& r) {
  const auto& args = r.args;
  int64_t ms = 0;
  if (!resp::parse_int64(args[2], ms)) {
    c.reply_error("ERR timeout is not an integer or out of range");
    return;
  }
  if (ms < 0) {
    c.reply_error("ERR timeout is negative");
    return;
  }
  bool all = true;
  if (args.size() == 4) {
    if (iequals(args[3], "write")) {
      all = false;
    } else if (!iequals(args[3], "all")) {
      c.reply_error("ERR CLIENT PAUSE mode must be WRITE or ALL");
      return;
    }
  } else if (args.size() > 4) {
    c.reply_error("ERR syntax error");
    return;
  }
  c.shared().pause.pause(ClientPause::now_ms(), static_cast<uint64_t>(ms), all);
  notify_pause_changed(c.shared());
  c.reply_ok();
}

void client_unpause(Client& c, const Request&) {
  c.shared().pause.unpause();
  notify_pause_changed(c.shared());
  c.reply_ok();
}

void client_reply(Client& c, const Request& r) {
  const std::string_view mode = r.args[2];
  if (iequals(mode, "on")) {
    c.set_reply_mode(Client::ReplyMode::kOn);
    c.answer_this_request();  // ON is answered even when it ends an OFF
    c.reply_ok();
  } else if (iequals(mode, "off")) {
    c.set_reply_mode(Client::ReplyMode::kOff);  // no reply, not even to this command
  } else if (iequals(mode, "skip")) {
    if (c.reply_mode() != Client::ReplyMode::kOff) c.set_reply_mode(Client::ReplyMode::kSkipNext);
  } else {
    c.reply_error("ERR syntax error");
  }
}

void client_no_evict(Client& c, const Request& r) {
  // Lockstep never evicts clients for memory; both settings are honoured trivially.
  if (iequals(r.args[2], "on") || iequals(r.args[2], "off"))
    c.reply_ok();
  else
    c.reply_error("ERR syntax error");
}

void client_help(Client& c, const Request&) {
  static constexpr std::string_view kHelp[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "ID",
      "    Return the ID of the current connection.",
      "GETNAME",
      "    Return the name of the current connection.",
      "SETNAME <name>",
      "    Assign the name <name> to the current connection.",
      "SETINFO <LIB-NAME|LIB-VER> <value>",
      "    Set client library name or version.",
      "INFO",
      "    Return information about the current client connection.",
      "LIST [TYPE normal] [ID <id> [<id> ...]]",
      "    Return information about client connections.",
      "NO-EVICT (ON|OFF)",
      "    Accepted; Lockstep never evicts clients."};
  reply_help(c, kHelp);
}

// CLIENT <sub> that Redis 7.0's table does not know: SETINFO (7.2) or an unknown word.
void client_other(Client& c, const Request& r) {
  const std::string_view sub = r.args[1];
  if (iequals(sub, "setinfo") && r.args.size() == 4) return client_setinfo(c, r);
  if (!iequals(sub, "setinfo")) {
    c.reply_error(proxy::unknown_subcommand_error("client", sub));
    return;
  }
  c.reply_error("ERR CLIENT SETINFO is not supported by Lockstep yet");
}

}  // namespace

void register_client_commands(HandlerTable& t) {
  t.add("client", client_other);
  t.add("client|id", client_id);
  t.add("client|setname", client_setname);
  t.add("client|getname", client_getname);
  t.add("client|info", client_info);
  t.add("client|list", client_list);
  t.add("client|kill", client_kill);
  t.add("client|pause", client_pause);
  t.add("client|unpause", client_unpause);
  t.add("client|reply", client_reply);
  t.add("client|no-evict", client_no_evict);
  t.add("client|help", client_help);
}

}  // namespace lockstep::server
