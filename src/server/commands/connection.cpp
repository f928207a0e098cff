// Commands Lockstep answers itself: the ones clients send on connect (AUTH, HELLO, CLIENT,
// SELECT, PING, INFO, ...) and introspection that must describe the proxy, not one backend.
// Reply shapes and error texts are Redis 7.0's, since client libraries match on them.
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "lockstep/proxy/router.h"
#include "server/net/worker.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "0.0.0"
#endif

namespace lockstep::server {

using proxy::iequals;

namespace {
// The Redis version Lockstep speaks: its command table is Redis 7.0's.
constexpr std::string_view kRedisVersion = "7.0.0";

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '!' && c <= '~'; });
}

uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

void Client::dispatch_local(const proxy::CommandInfo& cmd, std::span<const std::string_view> args,
                            std::string_view raw) {
  std::string_view name = cmd.name;
  std::string out;
  if (name == "ping") {
    cmd_ping(args);
  } else if (name == "echo") {
    resp::append_bulk(out, args[1]);
    reply(out);
  } else if (name == "quit") {
    reply("+OK\r\n");
    stop_reading_and_close_when_flushed();
  } else if (name == "select") {
    cmd_select(args);
  } else if (name == "acl|whoami") {
    resp::append_bulk(out, user_.load()->name());
    reply(out);
  } else if (name == "auth") {
    cmd_auth(args);
  } else if (name == "hello") {
    cmd_hello(args);
  } else if (name == "client" || name.starts_with("client|")) {
    cmd_client(args);
  } else if (name == "info") {
    cmd_info(args);
  } else if ((name == "subscribe" || name == "ssubscribe" || name == "publish") &&
             std::any_of(args.begin() + 1, name == "publish" ? args.begin() + 2 : args.end(),
                         [](std::string_view ch) { return proxy::is_reserved_key(ch); })) {
    // Lockstep's own notifications (lock releases, WAIT) use these channels.
    reply_error("ERR channels starting with '__lockstep:' are reserved for Lockstep");
  } else if (name == "subscribe" || name == "psubscribe" || name == "ssubscribe") {
    cmd_subscribe(name[0] == 's' && name[1] == 's' ? 2 : (name[0] == 'p' ? 1 : 0), args);
  } else if (name == "unsubscribe" || name == "punsubscribe" || name == "sunsubscribe") {
    cmd_unsubscribe(name[0] == 's' ? 2 : (name[0] == 'p' ? 1 : 0), args);
  } else if (name == "publish") {
    // A channel lives on the backend its name hashes to (like a key); subscribers are there.
    forward(worker_.topology().slots.owner_of_key(args[1]), raw);
  } else if (name.starts_with("slowlog|")) {
    cmd_slowlog(args);
  } else if (name.starts_with("latency|")) {
    cmd_latency(args);
  } else if (name.starts_with("lock.")) {
    cmd_lock(cmd, args);
  } else if (name == "lockstep") {
    cmd_lockstep(args);
  } else if (name == "monitor") {
    cmd_monitor();
  } else if (name == "scan") {
    cmd_scan(args);
  } else if (name == "readonly" || name == "readwrite") {
    reply("+OK\r\n");
  } else if (name == "time") {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    resp::append_array_header(out, 2);
    resp::append_bulk(out, std::to_string(tv.tv_sec));
    resp::append_bulk(out, std::to_string(tv.tv_usec));
    reply(out);
  } else if (name == "reset") {
    // RESET switches back to RESP2; it is a protocol switch like HELLO (see dispatch).
    unsubscribe_all();
    txn_reset();
    protocol_ = 2;
    user_ = worker_.shared().acl->initial_user();
    authenticated_ = user_.load() != nullptr;
    {
      std::lock_guard lock(worker_.shared().registry_mu);
      if (meta_) meta_->name.clear();
    }
    reply("+RESET\r\n");
  } else if (name == "command" || name.starts_with("command|")) {
    // COMMAND, COUNT, INFO, DOCS, LIST, GETKEYS describe the Redis 7.0 command set that the
    // backends run and Lockstep routes; any backend answers them correctly.
    forward_any(raw);
  } else {
    reply_error(fmt::format("ERR '{}' has no local handler in Lockstep", name));
  }
}

void Client::cmd_ping(std::span<const std::string_view> args) {
  if (args.size() > 2) {
    reply_error(proxy::arity_error("ping"));
    return;
  }
  if (protocol() < 3 && subscribed()) {  // RESP2 subscribed mode answers PING as a message
    std::string out = "*2\r\n$4\r\npong\r\n";
    resp::append_bulk(out, args.size() == 2 ? args[1] : std::string_view());
    reply(out);
  } else if (args.size() == 1) {
    reply("+PONG\r\n");
  } else {
    std::string out;
    resp::append_bulk(out, args[1]);
    reply(out);
  }
}

void Client::cmd_select(std::span<const std::string_view> args) {
  int64_t db = 0;
  if (!resp::parse_int64(args[1], db)) {
    reply_error("ERR value is not an integer or out of range");
  } else if (db != 0) {
    reply_error("ERR DB index is out of range (Lockstep exposes only database 0)");
  } else {
    reply("+OK\r\n");
  }
}

const acl::User* Client::check_password(std::string_view user, std::string_view password) {
  const acl::User* who = worker_.shared().acl->authenticate(user, password);
  if (who == nullptr) worker_.shared().stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
  return who;
}

void Client::cmd_auth(std::span<const std::string_view> args) {
  if (args.size() > 3) {
    reply_error("ERR syntax error");
    return;
  }
  if (args.size() == 2 && worker_.shared().acl->default_user().nopass()) {
    reply_error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return;
  }
  std::string_view user = args.size() == 3 ? args[1] : std::string_view("default");
  std::string_view pass = args.size() == 3 ? args[2] : args[1];
  // AUTH admin <admin_password> opens the LOCKSTEP admin commands on this connection; it does
  // not change (or grant) the data-plane user.
  if (const std::string& admin = worker_.shared().cfg.admin_password;
      args.size() == 3 && user == "admin" && !admin.empty()) {
    if (pass.size() == admin.size() &&
        CRYPTO_memcmp(pass.data(), admin.data(), admin.size()) == 0) {
      admin_ = true;
      reply("+OK\r\n");
    } else {
      worker_.shared().stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
      reply_error(kWrongPass);
    }
    return;
  }
  if (const acl::User* who = check_password(user, pass)) {
    user_ = who;
    authenticated_ = true;
    reply("+OK\r\n");
  } else {
    reply_error(kWrongPass);
  }
}

void Client::cmd_hello(std::span<const std::string_view> args) {
  int64_t ver = protocol_;
  if (args.size() >= 2) {
    if (!resp::parse_int64(args[1], ver)) {
      reply_error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (ver < 2 || ver > 3) {
      reply_error("NOPROTO unsupported protocol version");
      return;
    }
  }
  std::string_view user, pass, setname;
  bool has_auth = false, has_setname = false;
  for (size_t i = 2; i < args.size(); ++i) {
    bool more = args.size() - i - 1 > 0;
    if (iequals(args[i], "auth") && args.size() - i - 1 >= 2) {
      user = args[i + 1];
      pass = args[i + 2];
      has_auth = true;
      i += 2;
    } else if (iequals(args[i], "setname") && more) {
      setname = args[i + 1];
      has_setname = true;
      i += 1;
    } else {
      reply_error(fmt::format("ERR Syntax error in HELLO option '{}'", args[i]));
      return;
    }
  }
  if (!authenticated_ && !has_auth) {
    reply_error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "AUTH "
        "<user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return;
  }
  if (has_auth) {
    const acl::User* who = check_password(user, pass);
    if (who == nullptr) {
      reply_error(kWrongPass);
      return;
    }
    user_ = who;
    authenticated_ = true;
  }
  if (has_setname && !valid_client_name(setname)) {
    reply_error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  if (has_setname) {
    std::lock_guard lock(worker_.shared().registry_mu);
    mutable_meta().name.assign(setname);
  }
  // RESP3 clients use RESP3 backend connections from now on, so every reply they get is produced
  // in RESP3 by Redis itself (dispatch held this request until earlier replies were complete).
  if (protocol_ != static_cast<int>(ver)) txn_protocol_changed(static_cast<int>(ver));
  protocol_ = static_cast<int>(ver);
  std::string out;
  resp::append_map_header(out, 7, protocol_);
  resp::append_bulk(out, "server");
  resp::append_bulk(out, "redis");
  resp::append_bulk(out, "version");
  resp::append_bulk(out, kRedisVersion);
  resp::append_bulk(out, "proto");
  resp::append_integer(out, protocol_);
  resp::append_bulk(out, "id");
  resp::append_integer(out, static_cast<int64_t>(id_));
  resp::append_bulk(out, "mode");
  resp::append_bulk(out, "standalone");
  resp::append_bulk(out, "role");
  resp::append_bulk(out, "master");
  resp::append_bulk(out, "modules");
  resp::append_array_header(out, 0);
  reply(out);
}

const Client::Meta& Client::meta() const {
  static const Meta kEmpty;
  return meta_ ? *meta_ : kEmpty;
}

Client::Meta& Client::mutable_meta() {
  if (!meta_) meta_ = std::make_unique<Meta>();
  return *meta_;
}

namespace {
std::string format_addr(const sockaddr* sa) {
  char host[64] = "?";
  if (sa->sa_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(s6, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(s6->sin6_port));
  }
  if (sa->sa_family == AF_INET) {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
    uv_ip4_name(s4, host, sizeof(host));
    return fmt::format("{}:{}", host, ntohs(s4->sin_port));
  }
  return "?";
}
}  // namespace

std::string Client::info_line(bool same_worker) const {
  const auto now = worker_.now_ms();
  const proxy::CommandInfo* last = last_cmd_.load(std::memory_order_relaxed);
  // The local address is looked up when asked for rather than stored per connection.
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  std::string laddr = "?";
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) == 0)
    laddr = format_addr(reinterpret_cast<const sockaddr*>(&local));
  const Meta& m = meta();
  const size_t pending = same_worker && write_in_flight_ ? pending_write_->data.size() : 0;
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} "
      "multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs={} rbp=0 obl={} oll={} omem={} "
      "tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}\n",
      id_, format_addr(&peer_.sa), laddr, fd_, m.name, (now - created_ms_) / 1000,
      (now - last_interaction_ms()) / 1000, sub_total() > 0 ? "P" : "N",
      nsub_[0].load(std::memory_order_relaxed), nsub_[1].load(std::memory_order_relaxed),
      nsub_[2].load(std::memory_order_relaxed), same_worker ? in_.size() : 0,
      same_worker ? in_.capacity() : 0, same_worker ? out_.size() : 0,
      same_worker ? slots_.size() : 0, same_worker ? out_.capacity() + pending : 0,
      last ? last->name : "NULL", user_name(), protocol_.load(), m.lib_name, m.lib_ver);
}

void Client::cmd_client(std::span<const std::string_view> args) {
  std::string_view sub = args[1];
  std::string out;
  SharedState& sh = worker_.shared();
  if (iequals(sub, "id") && args.size() == 2) {
    resp::append_integer(out, static_cast<int64_t>(id_));
    reply(out);
  } else if (iequals(sub, "setname") && args.size() == 3) {
    if (!valid_client_name(args[2])) {
      reply_error("ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    {
      std::lock_guard lock(sh.registry_mu);
      mutable_meta().name.assign(args[2]);
    }
    reply("+OK\r\n");  // not under registry_mu: replying may log a slow request, which reads it
  } else if (iequals(sub, "getname") && args.size() == 2) {
    {
      std::lock_guard lock(sh.registry_mu);
      if (meta().name.empty())
        resp::append_null(out, protocol_);
      else
        resp::append_bulk(out, meta().name);
    }
    reply(out);
  } else if (iequals(sub, "setinfo") && args.size() == 4) {
    // Redis 7.2's CLIENT SETINFO; redis-py, Jedis and node-redis send it on connect.
    if (!valid_client_name(args[3])) {
      reply_error(
          fmt::format("ERR {} cannot contain spaces, newlines or special characters.", args[2]));
      return;
    }
    bool known = true;
    {
      std::lock_guard lock(sh.registry_mu);
      if (iequals(args[2], "lib-name"))
        mutable_meta().lib_name.assign(args[3]);
      else if (iequals(args[2], "lib-ver"))
        mutable_meta().lib_ver.assign(args[3]);
      else
        known = false;
    }
    if (known)
      reply("+OK\r\n");
    else
      reply_error(fmt::format("ERR Unrecognized option '{}'", args[2]));
  } else if (iequals(sub, "info") && args.size() == 2) {
    std::string line;
    {
      std::lock_guard lock(sh.registry_mu);
      line = info_line(true);
    }
    resp::append_verbatim(out, line, protocol_);
    reply(out);
  } else if (iequals(sub, "list")) {
    bool only_ids = false;
    std::string type;  // "" = any
    std::vector<uint64_t> ids;
    for (size_t i = 2; i < args.size(); ++i) {
      if (iequals(args[i], "type") && i + 1 < args.size()) {
        ++i;
        if (!iequals(args[i], "normal") && !iequals(args[i], "pubsub") &&
            !iequals(args[i], "master") && !iequals(args[i], "replica") &&
            !iequals(args[i], "slave")) {
          reply_error(fmt::format("ERR Unknown client type '{}'", args[i]));
          return;
        }
        type.assign(args[i]);
        for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      } else if (iequals(args[i], "id") && i + 1 < args.size()) {
        only_ids = true;
        for (++i; i < args.size(); ++i) {
          int64_t v = 0;
          if (!resp::parse_int64(args[i], v) || v <= 0) {
            reply_error("ERR Invalid client ID");
            return;
          }
          ids.push_back(static_cast<uint64_t>(v));
        }
      } else {
        reply_error("ERR syntax error");
        return;
      }
    }
    std::string text;
    {
      std::lock_guard lock(sh.registry_mu);
      std::vector<uint64_t> all;
      for (auto& [id, c] : sh.registry) all.push_back(id);
      std::sort(all.begin(), all.end());
      for (uint64_t id : all) {
        if (only_ids && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
        const Client* c = sh.registry[id];
        // Every Lockstep client is "normal" or, while subscribed, "pubsub"; none is a
        // master or replica.
        const bool pubsub = c->sub_total() > 0;
        if (!type.empty() && (type == "pubsub") != pubsub) continue;
        if (type == "master" || type == "replica" || type == "slave") continue;
        // Buffers of clients on other workers belong to other threads; only report our own.
        text += c->info_line(&c->worker_ == &worker_);
      }
    }
    resp::append_verbatim(out, text, protocol_);
    reply(out);
  } else if (iequals(sub, "kill") && args.size() >= 3) {
    cmd_client_kill(args);
  } else if ((iequals(sub, "pause") && (args.size() == 3 || args.size() == 4)) ||
             (iequals(sub, "unpause") && args.size() == 2)) {
    cmd_client_pause(args);
  } else if (iequals(sub, "reply")) {
    cmd_client_reply(args);
  } else if (iequals(sub, "no-evict") && args.size() == 3) {
    // Lockstep never evicts clients for memory; both settings are honoured trivially.
    if (iequals(args[2], "on") || iequals(args[2], "off"))
      reply("+OK\r\n");
    else
      reply_error("ERR syntax error");
  } else if (iequals(sub, "help")) {
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
    resp::append_array_header(out, static_cast<int64_t>(std::size(kHelp)));
    for (auto line : kHelp) resp::append_simple(out, line);
    reply(out);
  } else {
    std::string upper(sub);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (worker_.shared().table->find("client") != nullptr &&
        proxy::CommandTable::find_sub(*worker_.shared().table->find("client"), sub) == nullptr &&
        !iequals(sub, "setinfo"))
      reply_error(proxy::unknown_subcommand_error("client", sub));
    else
      reply_error(fmt::format("ERR CLIENT {} is not supported by Lockstep yet", upper));
  }
}

void Client::cmd_info(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  auto wants = [&](std::string_view section, bool in_default) {
    if (args.size() == 1) return in_default;
    for (size_t i = 1; i < args.size(); ++i) {
      if (iequals(args[i], section) || iequals(args[i], "all") || iequals(args[i], "everything") ||
          (in_default && iequals(args[i], "default")))
        return true;
    }
    return false;
  };
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 sh.started)
                    .count();
  std::string text;
  auto out = std::back_inserter(text);
  if (wants("server", true)) {
    fmt::format_to(out,
                   "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\n"
                   "lockstep_version:{}\r\nos:Linux\r\narch_bits:64\r\nprocess_id:{}\r\n"
                   "tcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n"
                   "executable:lockstep\r\nconfig_file:{}\r\n\r\n",
                   kRedisVersion, LOCKSTEP_VERSION, getpid(), sh.cfg.listen.port, uptime,
                   uptime / 86400, sh.config_path);
  }
  if (wants("clients", true)) {
    fmt::format_to(out,
                   "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n"
                   "\r\n",
                   sh.stats.connected_clients.load(), sh.cfg.limits.max_clients,
                   sh.stats.blocked_clients.load());
  }
  if (wants("memory", true)) {
    uint64_t rss = rss_bytes();
    fmt::format_to(out, "# Memory\r\nused_memory:{}\r\nused_memory_rss:{}\r\n\r\n", rss, rss);
  }
  if (wants("persistence", true)) {
    // ioredis waits for loading:0 before it considers the connection ready.
    text += "# Persistence\r\nloading:0\r\n\r\n";
  }
  if (wants("stats", true)) {
    fmt::format_to(out,
                   "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n"
                   "total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n"
                   "rejected_connections:{}\r\nauth_failures:{}\r\nacl_access_denied:{}\r\n"
                   "protocol_errors:{}\r\n\r\n",
                   sh.stats.connections_received.load(), sh.stats.commands_processed.load(),
                   sh.stats.net_input_bytes.load(), sh.stats.net_output_bytes.load(),
                   sh.stats.rejected_connections.load(), sh.stats.auth_failures.load(),
                   sh.stats.acl_denied.load(), sh.stats.protocol_errors.load());
  }
  if (wants("replication", true))
    text += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  if (wants("commandstats", false)) append_commandstats(sh, text);
  if (wants("latencystats", false)) append_latencystats(sh, text);
  if (wants("errorstats", true)) append_errorstats(sh, text);
  std::string head;
  const bool keyspace = wants("keyspace", true);
  if (keyspace) head.swap(text);  // the keyspace section is summed from the backends
  if (wants("lockstep", true)) {
    const Topology& topo = worker_.topology();
    fmt::format_to(out, "# Lockstep\r\nworkers:{}\r\nbackends:{}\r\nconfig_epoch:{}\r\n",
                   sh.workers.size(), topo.backends.size(), topo.epoch);
    auto ranges = topo.slots.ranges();
    const std::vector<admin::BackendFigures> figures = gather_backends(sh);
    for (size_t b = 0; b < topo.backends.size(); ++b) {
      const BackendStats& bs = sh.backend_stats[b];
      std::string slots;
      for (const auto& r : ranges) {
        if (r.backend != static_cast<int>(b)) continue;
        if (!slots.empty()) slots += ',';
        slots += r.from == r.to ? std::to_string(r.from) : fmt::format("{}-{}", r.from, r.to);
      }
      const int up = bs.pool_up.load();
      const int expected = static_cast<int>(sh.workers.size()) * sh.cfg.backend_connections;
      fmt::format_to(out,
                     "backend{}:name={},addr={},state={},connections={},requests={},"
                     "failures={},reconnects={},timeouts={},inflight={},usec_per_reply={:.2f},"
                     "slots={}\r\n",
                     b, topo.backends[b].name, topo.backends[b].address,
                     up == expected ? "up" : (up == 0 ? "down" : "degraded"),
                     bs.connections_up.load(), bs.requests.load(), bs.failures.load(),
                     bs.reconnects.load(), bs.timeouts.load(), figures[b].inflight,
                     figures[b].replies ? static_cast<double>(figures[b].latency_usec) /
                                              static_cast<double>(figures[b].replies)
                                        : 0.0,
                     slots);
    }
    text += "\r\n";
  }
  if (wants("locks", true)) append_lockstats(sh, text);
  if (wants("transactions", true)) append_txnstats(text);
  if (wants("cluster", true)) append_clusterstats(text);
  if (keyspace) {
    info_with_keyspace(std::move(head), std::move(text));
    return;
  }
  if (text.size() >= 2) text.resize(text.size() - 2);  // no blank line after the last section
  std::string reply_bytes;
  resp::append_verbatim(reply_bytes, text, protocol_);
  reply(reply_bytes);
}

}  // namespace lockstep::server
