// The connection commands Lockstep answers itself, those clients send on connect: PING, ECHO,
// QUIT, SELECT, AUTH, HELLO, RESET, TIME, READONLY/READWRITE, ACL WHOAMI, and COMMAND (answered
// by any backend: the Redis 7.0 command set they run is the one Lockstep routes). Reply shapes
// and error texts are Redis 7.0's, since client libraries match on them.
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <sys/time.h>

#include <algorithm>

#include "server/commands/handlers.h"
#include "server/commands/redis_version.h"
#include "server/net/shared_state.h"
#include "server/pubsub/client_subscriptions.h"
#include "server/txn/client_txn.h"

namespace lockstep::server {
namespace {

using proxy::iequals;

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

const acl::User* check_password(Client& c, std::string_view user, std::string_view password) {
  const acl::User* who = c.shared().acl->authenticate(user, password);
  if (who == nullptr) c.shared().stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
  return who;
}

void ping(Client& c, const Request& r) {
  if (r.args.size() > 2) {
    c.reply_error(proxy::arity_error("ping"));
    return;
  }
  std::string out;
  if (c.protocol() < 3 && c.subscribed()) {  // RESP2 subscribed mode answers PING as a message
    out = "*2\r\n$4\r\npong\r\n";
    resp::append_bulk(out, r.args.size() == 2 ? r.args[1] : std::string_view());
  } else if (r.args.size() == 1) {
    out = "+PONG\r\n";
  } else {
    resp::append_bulk(out, r.args[1]);
  }
  c.reply(out);
}

void echo(Client& c, const Request& r) {
  std::string out;
  resp::append_bulk(out, r.args[1]);
  c.reply(out);
}

void quit(Client& c, const Request&) {
  c.reply_ok();
  c.stop_reading_and_close_when_flushed();
}

void select_db(Client& c, const Request& r) {
  int64_t db = 0;
  if (!resp::parse_int64(r.args[1], db))
    c.reply_error("ERR value is not an integer or out of range");
  else if (db != 0)
    c.reply_error("ERR DB index is out of range (Lockstep exposes only database 0)");
  else
    c.reply_ok();
}

void auth(Client& c, const Request& r) {
  const auto& args = r.args;
  SharedState& sh = c.shared();
  if (args.size() > 3) {
    c.reply_error("ERR syntax error");
    return;
  }
  if (args.size() == 2 && sh.acl->default_user().nopass()) {
    c.reply_error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return;
  }
  const std::string_view user = args.size() == 3 ? args[1] : std::string_view("default");
  const std::string_view pass = args.size() == 3 ? args[2] : args[1];
  // AUTH admin <admin_password> opens the LOCKSTEP admin commands on this connection; it does
  // not change (or grant) the data-plane user.
  if (const std::string& admin = sh.cfg.admin_password;
      args.size() == 3 && user == "admin" && !admin.empty()) {
    if (pass.size() == admin.size() &&
        CRYPTO_memcmp(pass.data(), admin.data(), admin.size()) == 0) {
      c.set_admin();
      c.reply_ok();
    } else {
      sh.stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
      c.reply_error(kWrongPass);
    }
    return;
  }
  if (const acl::User* who = check_password(c, user, pass)) {
    c.set_user(who);
    c.reply_ok();
  } else {
    c.reply_error(kWrongPass);
  }
}

bool valid_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '!' && ch <= '~'; });
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]: its options, checked.
struct HelloArgs {
  int64_t version = 0;
  std::string_view user, pass, setname;
  bool has_auth = false, has_setname = false;
};

bool parse_hello(Client& c, std::span<const std::string_view> args, HelloArgs& h) {
  h.version = c.protocol();
  if (args.size() >= 2) {
    if (!resp::parse_int64(args[1], h.version)) {
      c.reply_error("ERR Protocol version is not an integer or out of range");
      return false;
    }
    if (h.version < 2 || h.version > 3) {
      c.reply_error("NOPROTO unsupported protocol version");
      return false;
    }
  }
  for (size_t i = 2; i < args.size(); ++i) {
    const size_t left = args.size() - i - 1;
    if (iequals(args[i], "auth") && left >= 2) {
      h.user = args[i + 1];
      h.pass = args[i + 2];
      h.has_auth = true;
      i += 2;
    } else if (iequals(args[i], "setname") && left >= 1) {
      h.setname = args[i + 1];
      h.has_setname = true;
      i += 1;
    } else {
      c.reply_error(fmt::format("ERR Syntax error in HELLO option '{}'", args[i]));
      return false;
    }
  }
  return true;
}

void hello(Client& c, const Request& r) {
  HelloArgs h;
  if (!parse_hello(c, r.args, h)) return;
  if (c.user() == nullptr && !h.has_auth) {
    c.reply_error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
        "protocol version at the same time");
    return;
  }
  if (h.has_auth) {
    const acl::User* who = check_password(c, h.user, h.pass);
    if (who == nullptr) {
      c.reply_error(kWrongPass);
      return;
    }
    c.set_user(who);
  }
  if (h.has_setname && !valid_name(h.setname)) {
    c.reply_error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  if (h.has_setname) {
    std::lock_guard lock(c.shared().registry.mutex());
    c.mutable_names().name.assign(h.setname);
  }
  c.set_protocol(static_cast<int>(h.version));
  const int proto = c.protocol();
  std::string out;
  resp::append_map_header(out, 7, proto);
  resp::append_bulk(out, "server");
  resp::append_bulk(out, "redis");
  resp::append_bulk(out, "version");
  resp::append_bulk(out, kRedisVersion);
  resp::append_bulk(out, "proto");
  resp::append_integer(out, proto);
  resp::append_bulk(out, "id");
  resp::append_integer(out, static_cast<int64_t>(c.id()));
  resp::append_bulk(out, "mode");
  resp::append_bulk(out, "standalone");
  resp::append_bulk(out, "role");
  resp::append_bulk(out, "master");
  resp::append_bulk(out, "modules");
  resp::append_array_header(out, 0);
  c.reply(out);
}

void reset(Client& c, const Request&) {
  // RESET switches back to RESP2; it is a protocol switch like HELLO (kTraitProtocolSwitch).
  if (auto* subs = c.find_part<ClientSubscriptions>()) subs->unsubscribe_all(c);
  if (auto* txn = c.find_part<ClientTxn>()) txn->reset(c);
  c.set_protocol(2);
  c.set_user(c.shared().acl->initial_user());
  {
    std::lock_guard lock(c.shared().registry.mutex());
    c.mutable_names().name.clear();
  }
  c.reply("+RESET\r\n");
}

void time_now(Client& c, const Request&) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  std::string out;
  resp::append_array_header(out, 2);
  resp::append_bulk(out, std::to_string(tv.tv_sec));
  resp::append_bulk(out, std::to_string(tv.tv_usec));
  c.reply(out);
}

void whoami(Client& c, const Request&) {
  std::string out;
  resp::append_bulk(out, c.user()->name());
  c.reply(out);
}

}  // namespace

void register_connection_commands(HandlerTable& t) {
  t.add("ping", ping);
  t.add("echo", echo);
  t.add("quit", quit);
  t.add("select", select_db);
  t.add("auth", auth);
  t.add("hello", hello);
  t.add("reset", reset);
  t.add("time", time_now);
  t.add("acl|whoami", whoami);
  // Cluster-client handshakes; harmless no-ops for the proxy.
  t.add("readonly", [](Client& c, const Request&) { c.reply_ok(); });
  t.add("readwrite", [](Client& c, const Request&) { c.reply_ok(); });
  // COMMAND, COUNT, INFO, DOCS, LIST, GETKEYS describe the Redis 7.0 command set that the
  // backends run and Lockstep routes; any backend answers them correctly.
  t.add("command", [](Client& c, const Request& r) { c.forward_any(r.raw); });
}

}  // namespace lockstep::server
