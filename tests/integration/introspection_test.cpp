// Introspection through Lockstep: CLIENT (ID, SETNAME, INFO, LIST, KILL, PAUSE, REPLY ...),
// MONITOR, SLOWLOG, LATENCY, INFO commandstats/latencystats/stats, scripts and functions on
// every backend, and CONFIG GET/SET. Where the behaviour is Redis' own (reply bytes, MONITOR
// quoting, CLIENT REPLY, error texts) it is compared with a direct redis-server.
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"
#include "support/resp3.h"

using namespace lockstep::test;
using namespace std::string_literals;

namespace {

constexpr const char* kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";

// "127.0.0.1:port" of a socket's local (ours) or remote end.
std::string sock_addr(int fd, bool local) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  auto* p = reinterpret_cast<sockaddr*>(&sa);
  if ((local ? ::getsockname(fd, p, &len) : ::getpeername(fd, p, &len)) != 0) return "?";
  char host[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
  return std::string(host) + ":" + std::to_string(ntohs(sa.sin_port));
}
// The address Lockstep sees for this connection (CLIENT LIST addr=).
std::string addr_of(Client& c) {
  return sock_addr(c.raw()->fd, true);
}
std::string addr_of(const RawConn& c) {
  return sock_addr(c.fd(), true);
}

using Fields = std::map<std::string, std::string>;

std::string field(const Fields& f, const std::string& name) {
  auto it = f.find(name);
  return it == f.end() ? "<no " + name + ">" : it->second;
}

ClusterOptions with_yaml(std::string yaml) {
  ClusterOptions o;
  o.extra_yaml = std::move(yaml);
  return o;
}

// "id=3 addr=... name= ..." -> {id: 3, addr: ..., name: ""}.
Fields client_fields(std::string_view line) {
  Fields out;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    const std::string_view word = line.substr(pos, end - pos);
    const size_t eq = word.find('=');
    if (eq != std::string_view::npos)
      out[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
    pos = end + 1;
  }
  return out;
}

// CLIENT LIST text -> one Fields per line.
std::vector<Fields> client_lines(const std::string& text) {
  std::vector<Fields> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.push_back(client_fields(line));
    pos = eol + 1;
  }
  return out;
}

std::vector<std::string> ids_of(const std::vector<Fields>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.count("id") ? l.at("id") : "<no id>");
  return out;
}

// Sends argv on a raw connection and parses its reply (kIoError when none arrives).
Reply call(RawConn& c, const std::vector<std::string>& argv, Millis timeout = 3s) {
  if (!c.send(encode_command(argv), timeout)) return Reply::io_error("send failed");
  return or_none(c.read_reply(timeout));
}

// A raw connection that Lockstep has registered (it answered a PING).
RawConn ready_raw(uint16_t port) {
  RawConn c(port);
  const Reply r = call(c, {"PING"});
  INFO("PING on a new connection -> " << r);
  REQUIRE(r == Reply::status("PONG"));
  return c;
}

std::string id_of(Client& c) {
  const Reply r = c("CLIENT", "ID");
  INFO("CLIENT ID -> " << r);
  REQUIRE(r.is_integer());
  return std::to_string(r.integer);
}
std::string id_of(RawConn& c) {
  const Reply r = call(c, {"CLIENT", "ID"});
  INFO("CLIENT ID -> " << r);
  REQUIRE(r.is_integer());
  return std::to_string(r.integer);
}

// Pauses end on Lockstep's event-loop timer, whose clock is read once per loop iteration, and
// elapsed times here are truncated to whole milliseconds: a held reply may show up to this much
// under the pause length.
constexpr long long kTimerSlackMs = 2;

// One reply with how long it took from `since`.
struct Timed {
  Reply reply;
  long long ms;
};
Timed timed_reply(RawConn& c, Clock::time_point since, Millis timeout = 5s) {
  Reply r = or_none(c.read_reply(timeout));
  return {std::move(r), elapsed_ms(since)};
}

// "calls=6,usec=10,usec_per_call=1.67,..." -> {calls: 6, ...}.
std::map<std::string, std::string> comma_fields(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(pos, end - pos);
    const size_t eq = part.find('=');
    if (eq != std::string::npos) out[part.substr(0, eq)] = part.substr(eq + 1);
    pos = end + 1;
  }
  return out;
}

// One counter of `cmdstat_<cmd>` in INFO commandstats; -1 when the line or field is missing.
long long cmdstat(Client& c, const std::string& cmd, const std::string& field) {
  const Reply r = c("INFO", "commandstats");
  if (!r.is_string()) return -1;
  const auto line = info_field(r.str, "cmdstat_" + cmd);
  if (!line) return -1;
  const auto f = comma_fields(*line);
  auto it = f.find(field);
  return it == f.end() ? -1 : std::stoll(it->second);
}

// Reads MONITOR lines (without CRLF) until one contains `marker` (included).
std::vector<std::string> monitor_until(RawConn& m, std::string_view marker, Millis timeout = 3s) {
  std::vector<std::string> lines;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto line = m.read_line(std::chrono::duration_cast<Millis>(deadline - Clock::now()));
    if (!line) break;
    if (line->size() >= 2) line->resize(line->size() - 2);
    lines.push_back(*line);
    if (line->find(marker) != std::string::npos) return lines;
  }
  lines.push_back("<timed out waiting for " + std::string(marker) + ">");
  return lines;
}

// A MONITOR line split as +<sec>.<usec> [0 <addr>] <args>.
struct MonitorLine {
  bool ok = false;
  long long sec = 0;
  std::string addr, args;
};
MonitorLine parse_monitor(const std::string& line) {
  static const std::regex re(R"(^\+([0-9]+)\.([0-9]{6}) \[0 ([0-9.]+:[0-9]+)\] (.*)$)");
  std::smatch m;
  MonitorLine out;
  if (!std::regex_match(line, m, re)) return out;
  out.ok = true;
  out.sec = std::stoll(m[1].str());
  out.addr = m[3].str();
  out.args = m[4].str();
  return out;
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sends the commands as one pipeline followed by CLIENT REPLY ON and ECHO <marker>, and returns
// every byte received up to and including the marker's reply.
std::string reply_stream(uint16_t port, const std::vector<std::vector<std::string>>& commands) {
  const std::string marker = "end-of-stream-marker";
  std::string payload;
  for (const auto& c : commands) payload += encode_command(c);
  payload += encode_command({"CLIENT", "REPLY", "ON"});
  payload += encode_command({"ECHO", marker});
  RawConn conn(port);
  if (!conn.send(payload)) return "<send failed>";
  const std::string tail = "$" + std::to_string(marker.size()) + "\r\n" + marker + "\r\n";
  conn.read_until([&](std::string_view b) { return b.ends_with(tail); }, 3s);
  return std::string(conn.pending());
}

// FUNCTION LIST with each library's functions sorted.
Reply sort_functions(Reply r) {
  for (Reply& lib : r.elements) {
    for (size_t i = 0; i + 1 < lib.elements.size(); ++i) {
      if (lib.elements[i].str != "functions") continue;
      auto& fns = lib.elements[i + 1].elements;
      std::sort(fns.begin(), fns.end(),
                [](const Reply& x, const Reply& y) { return x.to_string() < y.to_string(); });
    }
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CLIENT ID / SETNAME / GETNAME / SETINFO / INFO / LIST / NO-EVICT

TEST_CASE("CLIENT ID, SETNAME, GETNAME, SETINFO and INFO describe the connection",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client c = cluster.client();
  const std::string id = id_of(c);
  CHECK(c("CLIENT", "GETNAME").is_nil());
  CHECK(c("CLIENT", "SETNAME", "intro-main").is_ok());
  CHECK(c("CLIENT", "GETNAME") == Reply::string("intro-main"));
  CHECK(c("CLIENT", "SETINFO", "lib-name", "intro-lib").is_ok());
  CHECK(c("CLIENT", "SETINFO", "lib-ver", "4.5.6").is_ok());

  const Reply info = c("CLIENT", "INFO");
  INFO(info);
  REQUIRE(info.is_string());
  CHECK(info.str.ends_with("\n"));
  CHECK(std::count(info.str.begin(), info.str.end(), '\n') == 1);
  const Fields f = client_fields(info.str.substr(0, info.str.size() - 1));
  CHECK(field(f, "id") == id);
  CHECK(field(f, "addr") == addr_of(c));
  CHECK(field(f, "laddr") == "127.0.0.1:" + std::to_string(cluster.port()));
  CHECK(field(f, "name") == "intro-main");
  CHECK(field(f, "cmd") == "client|info");
  CHECK(field(f, "user") == "default");
  CHECK(field(f, "resp") == "2");
  CHECK(field(f, "lib-name") == "intro-lib");
  CHECK(field(f, "lib-ver") == "4.5.6");

  // A RESP3 connection says resp=3.
  RawConn r3 = ready_raw(cluster.port());
  const Reply hello = call(r3, {"HELLO", "3"});
  INFO(hello);
  REQUIRE(hello.type == Reply::Type::kMap);
  const Reply info3 = call(r3, {"CLIENT", "INFO"});
  INFO(info3);
  CHECK(client_fields(info3.str)["resp"] == "3");

  // Names: the same validation as Redis; an empty name clears it.
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  cmp.same_error({"CLIENT", "SETNAME", "has space"});
  cmp.same_error({"CLIENT", "SETNAME", "new\nline"});
  cmp.same({"CLIENT", "SETNAME", "x"});
  cmp.same({"CLIENT", "GETNAME"});
  cmp.same({"CLIENT", "SETNAME", ""});
  cmp.same({"CLIENT", "GETNAME"});
  CHECK(c("CLIENT", "SETINFO", "lib-name", "has space").is_error());
  CHECK(c("CLIENT", "SETINFO", "no-such-attr", "x").is_error());

  // NO-EVICT: accepted on and off, anything else is Redis' syntax error.
  cmp.same({"CLIENT", "NO-EVICT", "on"});
  cmp.same({"CLIENT", "NO-EVICT", "off"});
  cmp.same({"CLIENT", "NO-EVICT", "ON"});
  cmp.same_error({"CLIENT", "NO-EVICT", "maybe"});
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("CLIENT LIST shows every client of both workers with their own fields",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  // Consecutive connections alternate between the two workers.
  std::vector<Client> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(cluster.client());
    Client& c = clients.back();
    REQUIRE(c("CLIENT", "SETNAME", "cl-" + std::to_string(i)).is_ok());
    REQUIRE(c("CLIENT", "SETINFO", "lib-name", "lib-" + std::to_string(i)).is_ok());
    REQUIRE(c("CLIENT", "SETINFO", "lib-ver", std::to_string(i) + ".0").is_ok());
    ids.push_back(id_of(c));
  }
  REQUIRE(clients[1]("GET", "cl:key").is_nil());  // its last command is then get
  REQUIRE(clients[2]("SET", "cl:key", "v").is_ok());

  std::set<std::string> unique(ids.begin(), ids.end());
  CHECK(unique.size() == ids.size());

  for (size_t asker = 0; asker < clients.size(); ++asker) {
    const Reply list = clients[asker]("CLIENT", "LIST");
    INFO("asked by client " << asker << ": " << list);
    REQUIRE(list.is_string());
    const auto lines = client_lines(list.str);
    CHECK(lines.size() == clients.size());
    for (size_t i = 0; i < clients.size(); ++i) {
      auto it = std::find_if(lines.begin(), lines.end(), [&](const Fields& l) {
        return l.count("id") && l.at("id") == ids[i];
      });
      INFO("client " << i << " id " << ids[i]);
      REQUIRE(it != lines.end());
      const Fields& l = *it;
      for (const char* name :
           {"id", "addr", "laddr", "name", "cmd", "user", "resp", "lib-name", "lib-ver"})
        CHECK(l.count(name) == 1);
      CHECK(l.at("addr") == addr_of(clients[i]));
      CHECK(l.at("laddr") == "127.0.0.1:" + std::to_string(cluster.port()));
      CHECK(l.at("name") == "cl-" + std::to_string(i));
      CHECK(l.at("user") == "default");
      CHECK(l.at("resp") == "2");
      CHECK(l.at("lib-name") == "lib-" + std::to_string(i));
      CHECK(l.at("lib-ver") == std::to_string(i) + ".0");
      // The clients that have asked already last ran CLIENT LIST.
      const std::string want_cmd =
          i <= asker ? "client|list" : (i == 1 ? "get" : (i == 2 ? "set" : "client|id"));
      CHECK(l.at("cmd") == want_cmd);
    }
  }

  // TYPE normal: all of them; ID a b: exactly those, in id order.
  Client& c = clients[0];
  const Reply normal = c("CLIENT", "LIST", "TYPE", "normal");
  INFO(normal);
  REQUIRE(normal.is_string());
  auto normal_ids = ids_of(client_lines(normal.str));
  std::sort(normal_ids.begin(), normal_ids.end());
  auto sorted_ids = ids;
  std::sort(sorted_ids.begin(), sorted_ids.end());
  CHECK(normal_ids == sorted_ids);

  const Reply two = c("CLIENT", "LIST", "ID", ids[3], ids[1]);
  INFO(two);
  REQUIRE(two.is_string());
  auto two_ids = ids_of(client_lines(two.str));
  std::sort(two_ids.begin(), two_ids.end(), [](const std::string& a, const std::string& b) {
    return std::stoll(a) < std::stoll(b);
  });
  std::vector<std::string> want{ids[1], ids[3]};
  std::sort(want.begin(), want.end(), [](const std::string& a, const std::string& b) {
    return std::stoll(a) < std::stoll(b);
  });
  CHECK(two_ids == want);
  CHECK(c("CLIENT", "LIST", "ID", "999999") == Reply::string(""));

  // A client that leaves is no longer listed.
  const std::string gone = ids[3];
  clients.pop_back();
  CHECK(wait_until(
      [&] {
        const Reply l = c("CLIENT", "LIST");
        const auto got = ids_of(client_lines(l.str));
        return std::find(got.begin(), got.end(), gone) == got.end();
      },
      3s));
}

TEST_CASE("CLIENT LIST TYPE and its argument errors as Redis",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  cmp.same_error({"CLIENT", "LIST", "TYPE", "bogus"});
  cmp.same_error({"CLIENT", "LIST", "ID", "abc"});
  cmp.same_error({"CLIENT", "LIST", "ID"});
  cmp.same_error({"CLIENT", "LIST", "FOO"});
  cmp.same({"CLIENT", "LIST", "TYPE", "master"});
  cmp.same({"CLIENT", "LIST", "TYPE", "replica"});

  // A subscribed client is of type pubsub, not normal (both on Redis and through Lockstep).
  for (uint16_t port : {reference.port(), cluster.port()}) {
    INFO((port == reference.port() ? "redis-server" : "lockstep"));
    RawConn sub(port);
    const std::string sub_id = id_of(sub);
    REQUIRE(sub.send(encode_command({"SUBSCRIBE", "cl:chan"})));
    const Reply confirm = or_none(sub.read_reply(3s));
    INFO(confirm);
    REQUIRE(confirm.is_array());
    Client c(port);
    const std::string my_id = id_of(c);
    const Reply normal = c("CLIENT", "LIST", "TYPE", "normal");
    const Reply pubsub = c("CLIENT", "LIST", "TYPE", "pubsub");
    INFO("TYPE normal: " << normal << "\nTYPE pubsub: " << pubsub);
    const auto normal_ids = ids_of(client_lines(normal.str));
    CHECK(std::count(normal_ids.begin(), normal_ids.end(), my_id) == 1);
    CHECK(std::count(normal_ids.begin(), normal_ids.end(), sub_id) == 0);
    CHECK(ids_of(client_lines(pubsub.str)) == std::vector<std::string>{sub_id});
  }
}

// ---------------------------------------------------------------------------------------------
// CLIENT KILL

TEST_CASE("CLIENT KILL ip:port (old form) closes that client",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  RedisServer reference;
  Client killer = cluster.client();
  REQUIRE(killer("PING") == Reply::status("PONG"));
  // Two victims in a row: one of them is on the other worker than the killer.
  RawConn v1 = ready_raw(cluster.port());
  RawConn v2 = ready_raw(cluster.port());
  for (RawConn* v : {&v1, &v2}) {
    const std::string addr = addr_of(*v);
    INFO("victim " << addr);
    CHECK(killer("CLIENT", "KILL", addr).is_ok());
    CHECK(v->closed_by_peer(3s));
    CHECK(killer("CLIENT", "KILL", addr) == Reply::error("ERR No such client"));
  }
  Client direct = reference.client();
  const Reply none = direct("CLIENT", "KILL", "10.1.2.3:4567");
  CHECK(killer("CLIENT", "KILL", "10.1.2.3:4567") == none);
  CHECK(none == Reply::error("ERR No such client"));
  CHECK(killer("PING") == Reply::status("PONG"));
}

TEST_CASE("CLIENT KILL filters: ID, ADDR, LADDR, USER, TYPE, SKIPME",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client killer = cluster.client();
  const std::string killer_id = id_of(killer);

  SECTION("ID, on both workers") {
    RawConn v1 = ready_raw(cluster.port());
    RawConn v2 = ready_raw(cluster.port());
    for (RawConn* v : {&v1, &v2}) {
      const std::string id = id_of(*v);
      INFO("victim id " << id);
      CHECK(killer("CLIENT", "KILL", "ID", id) == Reply::integer_(1));
      CHECK(v->closed_by_peer(3s));
      CHECK(killer("CLIENT", "KILL", "ID", id) == Reply::integer_(0));
    }
    CHECK(killer("CLIENT", "KILL", "ID", "987654") == Reply::integer_(0));
  }

  SECTION("ADDR") {
    RawConn v1 = ready_raw(cluster.port());
    RawConn v2 = ready_raw(cluster.port());
    CHECK(killer("CLIENT", "KILL", "ADDR", addr_of(v2)) == Reply::integer_(1));
    CHECK(v2.closed_by_peer(3s));
    CHECK(killer("CLIENT", "KILL", "ADDR", "10.9.9.9:1") == Reply::integer_(0));
    CHECK(call(v1, {"PING"}) == Reply::status("PONG"));  // the other one is untouched
  }

  SECTION("LADDR: every client of that listener but the caller") {
    RawConn v1 = ready_raw(cluster.port());
    RawConn v2 = ready_raw(cluster.port());
    RawConn v3 = ready_raw(cluster.port());
    CHECK(killer("CLIENT", "KILL", "LADDR", "127.0.0.1:1") == Reply::integer_(0));
    CHECK(killer("CLIENT", "KILL", "LADDR", "127.0.0.1:" + std::to_string(cluster.port())) ==
          Reply::integer_(3));
    CHECK(v1.closed_by_peer(3s));
    CHECK(v2.closed_by_peer(3s));
    CHECK(v3.closed_by_peer(3s));
    CHECK(killer("PING") == Reply::status("PONG"));
  }

  SECTION("USER default, SKIPME yes") {
    RawConn v1 = ready_raw(cluster.port());
    RawConn v2 = ready_raw(cluster.port());
    CHECK(killer("CLIENT", "KILL", "USER", "default", "SKIPME", "yes") == Reply::integer_(2));
    CHECK(v1.closed_by_peer(3s));
    CHECK(v2.closed_by_peer(3s));
    CHECK(killer("PING") == Reply::status("PONG"));
  }

  SECTION("TYPE normal spares subscribers, TYPE pubsub kills only them") {
    RawConn normal = ready_raw(cluster.port());
    RawConn sub = ready_raw(cluster.port());
    REQUIRE(call(sub, {"SUBSCRIBE", "kill:chan"}).is_array());
    CHECK(killer("CLIENT", "KILL", "TYPE", "pubsub") == Reply::integer_(1));
    CHECK(sub.closed_by_peer(3s));
    CHECK(call(normal, {"PING"}) == Reply::status("PONG"));

    RawConn sub2 = ready_raw(cluster.port());
    REQUIRE(call(sub2, {"SUBSCRIBE", "kill:chan"}).is_array());
    CHECK(killer("CLIENT", "KILL", "TYPE", "normal") == Reply::integer_(1));  // `normal`
    CHECK(normal.closed_by_peer(3s));
    CHECK(call(sub2, {"PING"}).is_array());  // still subscribed and alive
    CHECK(killer("CLIENT", "KILL", "TYPE", "master") == Reply::integer_(0));
  }

  SECTION("SKIPME no: the caller gets its reply, then its connection is closed") {
    RawConn self = ready_raw(cluster.port());
    const std::string id = id_of(self);
    REQUIRE(self.send(encode_command({"CLIENT", "KILL", "ID", id, "SKIPME", "no"}) +
                      encode_command({"PING"})));
    CHECK(or_none(self.read_reply(3s)) == Reply::integer_(1));
    CHECK(self.closed_by_peer(3s));
    CHECK(self.pending().empty());  // nothing after the kill is answered
    // SKIPME yes (the default) with its own ID kills nobody.
    CHECK(killer("CLIENT", "KILL", "ID", killer_id) == Reply::integer_(0));
    CHECK(killer("PING") == Reply::status("PONG"));
  }

  SECTION("argument errors as Redis") {
    RedisServer reference;
    Compare cmp(reference.client(), cluster.client());
    cmp.same_error({"CLIENT", "KILL", "ID", "0"});
    cmp.same_error({"CLIENT", "KILL", "ID", "abc"});
    cmp.same_error({"CLIENT", "KILL", "TYPE", "bogus"});
    cmp.same_error({"CLIENT", "KILL", "SKIPME", "maybe"});
    cmp.same_error({"CLIENT", "KILL", "NOSUCHFILTER", "1"});
    cmp.same_error({"CLIENT", "KILL", "ID", "5", "SKIPME"});
    cmp.same_error({"CLIENT", "KILL", "USER", "nosuchuser"});
    cmp.same({"CLIENT", "KILL", "ADDR", "10.9.9.9:1"});
  }
}

// ---------------------------------------------------------------------------------------------
// CLIENT PAUSE / UNPAUSE

TEST_CASE("CLIENT PAUSE WRITE: reads answer at once, writes wait for the end of the pause",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client pauser = cluster.client();
  REQUIRE(pauser("SET", "pw:k", "old").is_ok());
  RawConn r1 = ready_raw(cluster.port());  // r1 and r2 are on different workers
  RawConn r2 = ready_raw(cluster.port());
  constexpr long long kPause = 400;

  const auto start = Clock::now();
  REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause), "WRITE").is_ok());
  for (RawConn* r : {&r1, &r2}) {
    REQUIRE(r->send(encode_command({"GET", "pw:k"})));
    const Timed read = timed_reply(*r, start);
    INFO("GET during the write pause after " << read.ms << " ms: " << read.reply);
    CHECK(read.reply == Reply::string("old"));
    CHECK(read.ms < kPause / 2);
  }
  REQUIRE(r1.send(encode_command({"SET", "pw:k", "new"})));
  REQUIRE(r2.send(encode_command({"INCR", "pw:n"})));
  const Timed w1 = timed_reply(r1, start);
  const Timed w2 = timed_reply(r2, start);
  INFO("SET after " << w1.ms << " ms: " << w1.reply << "; INCR after " << w2.ms
                    << " ms: " << w2.reply);
  CHECK(w1.reply.is_ok());
  CHECK(w2.reply == Reply::integer_(1));
  CHECK(w1.ms >= kPause - kTimerSlackMs);
  CHECK(w1.ms < kPause + 1000);
  CHECK(w2.ms >= kPause - kTimerSlackMs);
  CHECK(w2.ms < kPause + 1000);
  CHECK(pauser("GET", "pw:k") == Reply::string("new"));
}

TEST_CASE("CLIENT PAUSE WRITE holds may-replicate commands (EVAL, PUBLISH, PFCOUNT) as Redis",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  constexpr long long kPause = 200;
  const std::vector<std::vector<std::string>> commands = {
      {"EVAL", "return 1", "0"}, {"PUBLISH", "pw:chan", "m"}, {"PFCOUNT", "pw:hll"}};
  for (uint16_t port : {reference.port(), cluster.port()}) {
    const char* who = port == reference.port() ? "redis-server" : "lockstep";
    Client pauser(port);
    RawConn r = ready_raw(port);
    for (const auto& cmd : commands) {
      const auto start = Clock::now();
      REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause), "WRITE").is_ok());
      REQUIRE(r.send(encode_command(cmd)));
      const Timed t = timed_reply(r, start);
      INFO(who << ": " << show(cmd) << " -> " << t.reply << " after " << t.ms << " ms");
      CHECK_FALSE(t.reply.is_io_error());
      CHECK(t.ms >= kPause - kTimerSlackMs);
      // Let this pause end before the next command is tried.
      REQUIRE(wait_until([&] { return elapsed_ms(start) > kPause; }, 2s));
    }
  }
}

TEST_CASE("CLIENT PAUSE ALL: every command of every worker waits; UNPAUSE releases at once",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client pauser = cluster.client();
  REQUIRE(pauser("SET", "pa:k", "v").is_ok());
  RawConn r1 = ready_raw(cluster.port());
  RawConn r2 = ready_raw(cluster.port());

  {
    constexpr long long kPause = 300;
    const auto start = Clock::now();
    REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause)).is_ok());
    REQUIRE(r1.send(encode_command({"GET", "pa:k"})));
    REQUIRE(r2.send(encode_command({"PING"})));
    const Timed t1 = timed_reply(r1, start);
    const Timed t2 = timed_reply(r2, start);
    INFO("GET after " << t1.ms << " ms: " << t1.reply << "; PING after " << t2.ms
                      << " ms: " << t2.reply);
    CHECK(t1.reply == Reply::string("v"));
    CHECK(t2.reply == Reply::status("PONG"));
    CHECK(t1.ms >= kPause - kTimerSlackMs);
    CHECK(t1.ms < kPause + 1000);
    CHECK(t2.ms >= kPause - kTimerSlackMs);
    CHECK(t2.ms < kPause + 1000);
  }
  {
    // ALL is the default; ask explicitly this time. A long pause ended early by UNPAUSE.
    const auto start = Clock::now();
    REQUIRE(pauser("CLIENT", "PAUSE", "20000", "ALL").is_ok());
    REQUIRE(r1.send(encode_command({"GET", "pa:k"})));
    REQUIRE(r2.send(encode_command({"SET", "pa:other", "w"})));  // (no order across clients)
    // Still held a while later (measuring the intended hold, not waiting for correctness).
    CHECK_FALSE(r1.read_more(150ms));
    CHECK(r1.pending().empty());
    RawConn unpauser(cluster.port());  // even a new client may UNPAUSE (its first command)
    const auto unpause_at = Clock::now();
    CHECK(call(unpauser, {"CLIENT", "UNPAUSE"}).is_ok());
    const Timed t1 = timed_reply(r1, unpause_at);
    const Timed t2 = timed_reply(r2, unpause_at);
    INFO("after UNPAUSE: GET in " << t1.ms << " ms: " << t1.reply << ", SET in " << t2.ms
                                  << " ms: " << t2.reply);
    CHECK(t1.reply == Reply::string("v"));
    CHECK(t2.reply.is_ok());
    CHECK(t1.ms < 1000);
    CHECK(t2.ms < 1000);
    CHECK(elapsed_ms(start) < 5000);
  }
}

TEST_CASE("CLIENT PAUSE WRITE after an ALL pause (expired or unpaused) still lets reads through",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  Client pauser = cluster.client();
  REQUIRE(pauser("SET", "pr:k", "v").is_ok());
  RawConn r = ready_raw(cluster.port());
  constexpr long long kPause = 400;

  // An ALL pause that nobody was held by, left to expire.
  auto start = Clock::now();
  REQUIRE(pauser("CLIENT", "PAUSE", "50").is_ok());
  REQUIRE(wait_until([&] { return elapsed_ms(start) > 80; }, 1s));
  start = Clock::now();
  REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause), "WRITE").is_ok());
  REQUIRE(r.send(encode_command({"GET", "pr:k"})));
  Timed t = timed_reply(r, start);
  INFO("GET in a WRITE pause after an expired ALL pause: " << t.ms << " ms: " << t.reply);
  CHECK(t.reply == Reply::string("v"));
  CHECK(t.ms < kPause / 2);
  REQUIRE(pauser("CLIENT", "UNPAUSE").is_ok());

  // An ALL pause ended by UNPAUSE.
  REQUIRE(pauser("CLIENT", "PAUSE", "10000").is_ok());
  REQUIRE(pauser("CLIENT", "UNPAUSE").is_ok());
  start = Clock::now();
  REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause), "WRITE").is_ok());
  REQUIRE(r.send(encode_command({"GET", "pr:k"})));
  t = timed_reply(r, start);
  INFO("GET in a WRITE pause after an unpaused ALL pause: " << t.ms << " ms: " << t.reply);
  CHECK(t.reply == Reply::string("v"));
  CHECK(t.ms < kPause / 2);
  REQUIRE(pauser("CLIENT", "UNPAUSE").is_ok());
}

TEST_CASE("CLIENT PAUSE: a paused client's pipelined replies keep their order",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  Client pauser = cluster.client();
  const std::string a = cluster.key_on(0, "po"), b = cluster.key_on(2, "po");
  REQUIRE(pauser("SET", a, "1").is_ok());
  RawConn r = ready_raw(cluster.port());
  constexpr long long kPause = 300;
  const std::vector<std::vector<std::string>> pipeline = {
      {"GET", a}, {"SET", a, "2"}, {"GET", a},    {"INCR", b},     {"MGET", a, b},
      {"GET", a}, {"PING"},        {"DEL", a, b}, {"EXISTS", a, b}};
  const std::vector<Reply> want = {
      Reply::string("1"),    Reply::status("OK"),        Reply::string("2"),
      Reply::integer_(1),    Reply::strings({"2", "1"}), Reply::string("2"),
      Reply::status("PONG"), Reply::integer_(2),         Reply::integer_(0)};
  std::string payload;
  for (const auto& c : pipeline) payload += encode_command(c);
  const auto start = Clock::now();
  REQUIRE(pauser("CLIENT", "PAUSE", std::to_string(kPause), "WRITE").is_ok());
  REQUIRE(r.send(payload));
  std::vector<Timed> got;
  for (size_t i = 0; i < pipeline.size(); ++i) got.push_back(timed_reply(r, start));
  for (size_t i = 0; i < pipeline.size(); ++i) {
    INFO(show(pipeline[i]) << " -> " << got[i].reply << " after " << got[i].ms << " ms");
    CHECK(got[i].reply == want[i]);
    if (i == 0) {
      CHECK(got[i].ms < kPause);  // the read before the first write is not held
    } else {
      // Everything after the held write waits behind it.
      CHECK(got[i].ms >= kPause - kTimerSlackMs);
      CHECK(got[i].ms < kPause + 1000);
    }
  }
}

TEST_CASE("CLIENT PAUSE argument errors as Redis", "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  cmp.same_error({"CLIENT", "PAUSE", "abc"});
  cmp.same_error({"CLIENT", "PAUSE", "-1"});
  cmp.same_error({"CLIENT", "PAUSE", "10", "SOMETIMES"});
  cmp.same_error({"CLIENT", "PAUSE"});
  cmp.same({"CLIENT", "UNPAUSE"});
}

// ---------------------------------------------------------------------------------------------
// CLIENT REPLY

TEST_CASE("CLIENT REPLY OFF, ON and SKIP: the same reply bytes as Redis",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  const std::vector<std::vector<std::vector<std::string>>> pipelines = {
      // The basic sequence.
      {words("CLIENT REPLY OFF"), words("SET a 1"), words("GET a"), words("CLIENT REPLY ON"),
       words("GET a"), words("CLIENT REPLY SKIP"), words("GET a"), words("GET a")},
      // SKIP twice, SKIP while OFF, multi-backend commands skipped and not.
      {words("CLIENT REPLY SKIP"), words("CLIENT REPLY SKIP"), words("GET a"), words("GET a"),
       words("CLIENT REPLY OFF"), words("CLIENT REPLY SKIP"), words("GET a"),
       words("CLIENT REPLY ON"), words("CLIENT REPLY SKIP"), words("MGET a b c d e"),
       words("MSET a 1 b 2 c 3"), words("CLIENT REPLY SKIP"), words("DEL b c"),
       words("EXISTS a b c"), words("CLIENT REPLY OFF"), words("MGET a b c"), words("KEYS *"),
       words("CLIENT REPLY ON"), words("DBSIZE")},
      // Errors of CLIENT REPLY itself.
      {words("CLIENT REPLY BAD"), words("CLIENT REPLY"), words("CLIENT REPLY ON ON"),
       words("PING")},
      // A skipped or silenced request that fails is silent too.
      {words("CLIENT REPLY SKIP"), words("NOSUCHCOMMAND x"), words("PING"),
       words("CLIENT REPLY SKIP"), words("GET a b"), words("PING"), words("CLIENT REPLY SKIP"),
       words("LPUSH a x"), words("PING")},
      {words("CLIENT REPLY OFF"), words("NOSUCHCOMMAND"), words("GET"), words("CLIENT REPLY BAD"),
       words("CLIENT REPLY ON"), words("PING")},
  };
  for (size_t i = 0; i < pipelines.size(); ++i) {
    std::string text;
    for (const auto& c : pipelines[i]) text += show(c) + "; ";
    INFO("pipeline " << i << ": " << text);
    const std::string want = reply_stream(reference.port(), pipelines[i]);
    const std::string got = reply_stream(cluster.port(), pipelines[i]);
    INFO("redis-server: " << escape_bytes(want) << "\nlockstep:     " << escape_bytes(got));
    CHECK(got == want);
  }
}

// ---------------------------------------------------------------------------------------------
// MONITOR

TEST_CASE("MONITOR: the same lines as Redis for the same commands",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  const std::vector<std::vector<std::string>> commands = {
      {"SET", "mon:k", "a b\"c\\d\ne\r\t\a\b\x01\x7f\xff\x00z"s},
      {"GET", "mon:k"},
      {"MGET", "mon:a", "mon:b", "mon:c"},
      {"DEL", "mon:a", "mon:b"},
      {"PING"},
      {"ECHO", "hello world"},
      {"CLIENT", "SETNAME", "monclient"},
      {"AUTH", "not-the-password"},
      {"AUTH", "someone", "not-the-password"},
      {"HELLO", "2", "AUTH", "default", "any-password"},
      {"HELLO", "2", "SETNAME", "renamed"},
      {"SLOWLOG", "LEN"},
      {"CONFIG", "GET", "maxmemory"},
      {"EVAL", "return 1", "0"},
      {"NOSUCHCOMMAND", "arg"},
      {"ECHO", "monitor-end"},
  };
  std::map<uint16_t, std::vector<std::string>> bodies;
  for (uint16_t port : {reference.port(), cluster.port()}) {
    const char* who = port == reference.port() ? "redis-server" : "lockstep";
    INFO(who);
    RawConn mon(port);
    REQUIRE(call(mon, {"MONITOR"}).is_ok());
    RawConn sender(port);
    const std::string sender_addr = addr_of(sender);
    for (const auto& c : commands) CHECK_FALSE(call(sender, c).is_io_error());
    const auto lines = monitor_until(mon, "monitor-end");
    const long long now = unix_now();
    for (const auto& l : lines) {
      const MonitorLine m = parse_monitor(l);
      INFO(who << " line: " << escape_bytes(l));
      CHECK(m.ok);
      CHECK(m.addr == sender_addr);
      CHECK(m.sec >= now - 10);
      CHECK(m.sec <= now + 1);
      bodies[port].push_back(m.args);
    }
  }
  const auto& want = bodies[reference.port()];
  const auto& got = bodies[cluster.port()];
  std::string want_text, got_text;
  for (const auto& l : want) want_text += escape_bytes(l) + "\n";
  for (const auto& l : got) got_text += escape_bytes(l) + "\n";
  INFO("redis-server:\n" << want_text << "lockstep:\n" << got_text);
  CHECK(got == want);
  // Whatever the redaction details, no password reaches a monitor.
  CHECK(got_text.find("not-the-password") == std::string::npos);
  CHECK(got_text.find("any-password") == std::string::npos);
  // The escaping of the binary argument, as Redis' sdscatrepr.
  CHECK(std::find(got.begin(), got.end(),
                  R"("SET" "mon:k" "a b\"c\\d\ne\r\t\a\b\x01\x7f\xff\x00z")") != got.end());
}

TEST_CASE("MONITOR sees the clients of both workers; a monitor that leaves disturbs nobody",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  RawConn a = ready_raw(cluster.port());  // a and b are on different workers
  RawConn b = ready_raw(cluster.port());
  RawConn mon = ready_raw(cluster.port());
  REQUIRE(call(mon, {"MONITOR"}).is_ok());
  const std::string addr_a = addr_of(a), addr_b = addr_of(b);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(call(a, {"SET", "mw:" + std::to_string(i), "from a"}).is_ok());
    REQUIRE(call(b, {"GET", "mw:" + std::to_string(i)}) == Reply::string("from a"));
  }
  REQUIRE(call(b, {"ECHO", "end-1"}) == Reply::string("end-1"));
  auto lines = monitor_until(mon, "end-1");
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    want.push_back(addr_a + "] \"SET\" \"mw:" + std::to_string(i) + "\" \"from a\"");
    want.push_back(addr_b + "] \"GET\" \"mw:" + std::to_string(i) + "\"");
  }
  want.push_back(addr_b + "] \"ECHO\" \"end-1\"");
  std::vector<std::string> got;
  for (const auto& l : lines) {
    const MonitorLine m = parse_monitor(l);
    got.push_back(m.ok ? m.addr + "] " + m.args : "<unparsed> " + l);
  }
  CHECK(got == want);

  // A second monitor on the other worker; then the first one leaves.
  RawConn mon2 = ready_raw(cluster.port());
  REQUIRE(call(mon2, {"MONITOR"}).is_ok());
  mon.close();
  for (int i = 0; i < 50; ++i) REQUIRE(call(a, {"INCR", "mw:n"}) == Reply::integer_(i + 1));
  REQUIRE(call(b, {"ECHO", "end-2"}) == Reply::string("end-2"));
  lines = monitor_until(mon2, "end-2");
  CHECK(lines.size() == 51);
  mon2.close();
  // Nobody monitors now; everything still works.
  for (int i = 0; i < 20; ++i) REQUIRE(call(b, {"GET", "mw:n"}) == Reply::string("50"));
  Client c = cluster.client();
  CHECK(c("PING") == Reply::status("PONG"));
  RawConn mon3 = ready_raw(cluster.port());
  REQUIRE(call(mon3, {"MONITOR"}).is_ok());
  REQUIRE(call(a, {"ECHO", "end-3"}) == Reply::string("end-3"));
  lines = monitor_until(mon3, "end-3");
  REQUIRE(lines.size() == 1);
  CHECK(parse_monitor(lines[0]).args == "\"ECHO\" \"end-3\"");
  CHECK(cluster.proxy().running());
}

// ---------------------------------------------------------------------------------------------
// SLOWLOG

TEST_CASE("SLOWLOG with slower_than_us 0 logs every request",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("slowlog: {slower_than_us: 0, max_len: 5}"));
  Client c = cluster.client(3s);
  // HELLO SETNAME names the connection (see the CLIENT SETNAME test below for CLIENT SETNAME).
  REQUIRE(c("HELLO", "2", "SETNAME", "slow-client").is_array());
  CHECK(c("SLOWLOG", "RESET").is_ok());
  CHECK(c("SLOWLOG", "LEN") == Reply::integer_(1));  // the RESET itself, as Redis
  REQUIRE(c("GET", "sl:k").is_nil());
  const Reply one = c("SLOWLOG", "GET", "1");
  INFO(one);
  REQUIRE(one.is_array());
  REQUIRE(one.elements.size() == 1);
  const Reply& e = one.elements[0];
  REQUIRE(e.is_array());
  REQUIRE(e.elements.size() == 6);
  CHECK(e.elements[0].is_integer());
  CHECK(e.elements[1].is_integer());
  CHECK(e.elements[1].integer >= unix_now() - 10);
  CHECK(e.elements[1].integer <= unix_now() + 1);
  CHECK(e.elements[2].is_integer());
  CHECK(e.elements[2].integer >= 0);
  CHECK(e.elements[2].integer < 5'000'000);
  REQUIRE(e.elements[3].is_array());
  REQUIRE(e.elements[3].elements.size() == 2);
  CHECK(Catch::toLower(e.elements[3].elements[0].str) == "get");
  CHECK(e.elements[3].elements[1] == Reply::string("... (1 more arguments)"));
  CHECK(e.elements[4] == Reply::string(addr_of(c)));
  CHECK(e.elements[5] == Reply::string("slow-client"));

  // Ids grow; the newest entry comes first; a command without arguments has just its name.
  REQUIRE(c("PING") == Reply::status("PONG"));
  REQUIRE(c("MSET", "sl:a", "1", "sl:b", "2").is_ok());
  const Reply three = c("SLOWLOG", "GET", "3");
  INFO(three);
  REQUIRE(three.is_array());
  REQUIRE(three.elements.size() == 3);
  for (const auto& x : three.elements) REQUIRE(x.elements.size() == 6);
  CHECK(three.elements[0].elements[0].integer == three.elements[1].elements[0].integer + 1);
  CHECK(three.elements[1].elements[0].integer == three.elements[2].elements[0].integer + 1);
  CHECK(Catch::toLower(three.elements[0].elements[3].elements[0].str) == "mset");
  CHECK(three.elements[0].elements[3].elements[1] == Reply::string("... (4 more arguments)"));
  CHECK(three.elements[1].elements[3].elements.size() == 1);
  CHECK(Catch::toLower(three.elements[1].elements[3].elements[0].str) == "ping");

  // A client without a name: "".
  Client anon = cluster.client(3s);
  REQUIRE(anon("ECHO", "x") == Reply::string("x"));
  const Reply anon_entry = c("SLOWLOG", "GET", "1");
  INFO(anon_entry);
  REQUIRE(anon_entry.is_array());
  REQUIRE(anon_entry.elements.size() == 1);
  REQUIRE(anon_entry.elements[0].elements.size() == 6);
  CHECK(anon_entry.elements[0].elements[4] == Reply::string(addr_of(anon)));
  CHECK(anon_entry.elements[0].elements[5] == Reply::string(""));

  // max_len: 5 entries at most.
  for (int i = 0; i < 10; ++i) REQUIRE(c("INCR", "sl:n").is_integer());
  CHECK(c("SLOWLOG", "LEN") == Reply::integer_(5));
  const Reply all = c("SLOWLOG", "GET", "-1");
  INFO(all);
  REQUIRE(all.is_array());
  CHECK(all.elements.size() == 5);
  CHECK(c("SLOWLOG", "GET", "0") == Reply::array({}));

  // RESET empties it (then logs itself).
  CHECK(c("SLOWLOG", "RESET").is_ok());
  const Reply after = c("SLOWLOG", "GET", "-1");
  INFO(after);
  REQUIRE(after.is_array());
  REQUIRE(after.elements.size() == 1);
  CHECK(Catch::toLower(after.elements[0].elements[3].elements[0].str) == "slowlog reset");

  // The same answers as Redis for the argument errors.
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client(3s));
  cmp.same_error({"SLOWLOG", "GET", "-2"});
  cmp.same_error({"SLOWLOG", "GET", "abc"});
  cmp.same_error({"SLOWLOG", "NOSUCH"});
}

TEST_CASE("SLOWLOG leaves out the time a blocking command waits",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("slowlog: {slower_than_us: 0}"));
  Client c = cluster.client(3s);
  REQUIRE(c("SLOWLOG", "RESET").is_ok());
  CHECK(c("BLPOP", "sl:nolist", "0.1").is_nil());
  CHECK(c("BRPOP", "sl:nolist", "0.1").is_nil());
  REQUIRE(c("RPUSH", "sl:list", "x").is_integer());
  CHECK(c("BLPOP", "sl:list", "1") == Reply::strings({"sl:list", "x"}));
  const Reply all = c("SLOWLOG", "GET", "-1");
  INFO(all);
  REQUIRE(all.is_array());
  std::vector<std::string> names;
  for (const auto& e : all.elements)
    if (e.elements.size() == 6 && !e.elements[3].elements.empty())
      names.push_back(Catch::toLower(e.elements[3].elements[0].str));
  CHECK(std::count(names.begin(), names.end(), "blpop") == 0);
  CHECK(std::count(names.begin(), names.end(), "brpop") == 0);
  CHECK(std::count(names.begin(), names.end(), "rpush") == 1);
}

TEST_CASE("SLOWLOG with slower_than_us -1 logs nothing", "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("slowlog: {slower_than_us: -1}"));
  Client c = cluster.client();
  for (int i = 0; i < 20; ++i) REQUIRE(c("SET", "sn:" + std::to_string(i), "v").is_ok());
  REQUIRE(c("MGET", "sn:1", "sn:2", "sn:3").is_array());
  CHECK(c("SLOWLOG", "LEN") == Reply::integer_(0));
  CHECK(c("SLOWLOG", "GET", "-1") == Reply::array({}));
}

TEST_CASE("SLOWLOG on: CLIENT SETNAME, GETNAME and SETINFO still answer",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("slowlog: {slower_than_us: 0}\nworkers: 2"));
  // Short timeouts: a hung proxy should fail this test quickly.
  Client c = cluster.client(2s);
  const Reply set = c("CLIENT", "SETNAME", "logged");
  INFO("CLIENT SETNAME -> " << set);
  REQUIRE(set.is_ok());
  REQUIRE(c("CLIENT", "GETNAME") == Reply::string("logged"));
  REQUIRE(c("CLIENT", "SETINFO", "lib-name", "x").is_ok());
  REQUIRE(c("CLIENT", "SETINFO", "lib-ver", "1").is_ok());
  // The newest entry is the SETINFO above, logged with the name.
  const Reply entry = c("SLOWLOG", "GET", "1");
  INFO(entry);
  REQUIRE(entry.is_array());
  REQUIRE(entry.elements.size() == 1);
  REQUIRE(entry.elements[0].elements.size() == 6);
  CHECK(entry.elements[0].elements[4] == Reply::string(addr_of(c)));
  CHECK(entry.elements[0].elements[5] == Reply::string("logged"));
  // Other clients (and the other worker's) are not held up.
  Client other = cluster.client(2s);
  CHECK(other("PING") == Reply::status("PONG"));
  CHECK(c("PING") == Reply::status("PONG"));
}

// ---------------------------------------------------------------------------------------------
// LATENCY

TEST_CASE("LATENCY LATEST, HISTORY and RESET report the 'command' event",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("latency: {monitor_threshold_ms: 1}"));
  Client c = cluster.client();
  const std::string key = cluster.key_on(0, "lat");
  REQUIRE(c("SET", key, "v").is_ok());
  c("LATENCY", "RESET");  // anything slow so far (startup) is not this test's
  CHECK(c("LATENCY", "LATEST") == Reply::array({}));
  CHECK(c("LATENCY", "HISTORY", "command") == Reply::array({}));

  // A GET made slow: its backend stops while the request is in flight.
  RawConn r = ready_raw(cluster.port());
  const long long before = unix_now();
  cluster.backend(0).pause();
  REQUIRE(r.send(encode_command({"GET", key})));
  const auto stopped = Clock::now();
  // Measuring an intended delay: the backend stays stopped ~60 ms.
  std::this_thread::sleep_for(60ms);
  cluster.backend(0).resume();
  const Reply got = or_none(r.read_reply(5s));
  const long long slow_ms = elapsed_ms(stopped);
  INFO("GET -> " << got << " after " << slow_ms << " ms");
  REQUIRE(got == Reply::string("v"));

  const Reply latest = c("LATENCY", "LATEST");
  INFO(latest);
  REQUIRE(latest.is_array());
  REQUIRE(latest.elements.size() == 1);
  const Reply& ev = latest.elements[0];
  REQUIRE(ev.elements.size() == 4);
  CHECK(ev.elements[0] == Reply::string("command"));
  CHECK(ev.elements[1].integer >= before);
  CHECK(ev.elements[1].integer <= unix_now());
  CHECK(ev.elements[2].integer >= 50);  // latest, ms
  CHECK(ev.elements[2].integer <= slow_ms + 100);
  CHECK(ev.elements[3].integer >= ev.elements[2].integer);  // max

  const Reply history = c("LATENCY", "HISTORY", "command");
  INFO(history);
  REQUIRE(history.is_array());
  REQUIRE_FALSE(history.elements.empty());
  bool found = false;
  for (const auto& s : history.elements) {
    REQUIRE(s.elements.size() == 2);
    CHECK(s.elements[0].integer >= before);
    found = found || s.elements[1].integer >= 50;
  }
  CHECK(found);
  CHECK(c("LATENCY", "HISTORY", "no-such-event") == Reply::array({}));

  CHECK(c("LATENCY", "RESET") == Reply::integer_(1));
  CHECK(c("LATENCY", "RESET") == Reply::integer_(0));
  CHECK(c("LATENCY", "LATEST") == Reply::array({}));
  CHECK(c("LATENCY", "HISTORY", "command") == Reply::array({}));
}

TEST_CASE("LATENCY HISTOGRAM: calls and cumulative increasing counts per command; DOCTOR refused",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client c1 = cluster.client();
  Client c2 = cluster.client();  // the other worker
  for (int i = 0; i < 7; ++i) REQUIRE(c1("GET", "lh:" + std::to_string(i)).is_nil());
  for (int i = 0; i < 5; ++i) REQUIRE(c2("GET", "lh:" + std::to_string(i)).is_nil());
  for (int i = 0; i < 4; ++i) REQUIRE(c2("SET", "lh:" + std::to_string(i), "v").is_ok());

  const Reply h = c1("LATENCY", "HISTOGRAM", "get", "set", "nosuchcommand");
  INFO(h);
  REQUIRE(h.is_array());  // RESP2 map: name, details, name, details
  REQUIRE(h.elements.size() == 4);
  std::map<std::string, long long> want_calls{{"get", 12}, {"set", 4}};
  for (size_t i = 0; i < h.elements.size(); i += 2) {
    const std::string name = h.elements[i].str;
    INFO(name);
    REQUIRE(want_calls.count(name) == 1);
    const auto fields = hello_fields(h.elements[i + 1]);
    REQUIRE(fields.count("calls") == 1);
    REQUIRE(fields.count("histogram_usec") == 1);
    CHECK(fields.at("calls") == Reply::integer_(want_calls[name]));
    const Reply& hist = fields.at("histogram_usec");
    REQUIRE(hist.is_array());
    REQUIRE(hist.elements.size() % 2 == 0);
    REQUIRE_FALSE(hist.elements.empty());
    // As Redis: buckets (µs, powers of two) grow, and only buckets that add calls are listed,
    // so the cumulative counts strictly increase up to `calls`.
    long long prev_bucket = 0, prev_count = 0;
    bool buckets_grow = true, powers_of_two = true, counts_increase = true;
    for (size_t j = 0; j < hist.elements.size(); j += 2) {
      const long long bucket = hist.elements[j].integer, count = hist.elements[j + 1].integer;
      buckets_grow = buckets_grow && bucket > prev_bucket;
      powers_of_two = powers_of_two && bucket > 0 && (bucket & (bucket - 1)) == 0;
      counts_increase = counts_increase && count > prev_count;
      prev_bucket = bucket;
      prev_count = count;
    }
    CHECK(buckets_grow);
    CHECK(powers_of_two);
    CHECK(counts_increase);
    CHECK(prev_count == want_calls[name]);
  }

  // RESP3: maps.
  RawConn r3 = ready_raw(cluster.port());
  REQUIRE(call(r3, {"HELLO", "3"}).type == Reply::Type::kMap);
  const Reply h3 = call(r3, {"LATENCY", "HISTOGRAM", "set"});
  INFO(h3);
  REQUIRE(h3.type == Reply::Type::kMap);
  REQUIRE(h3.elements.size() == 2);
  CHECK(h3.elements[1].type == Reply::Type::kMap);

  const std::string refusal =
      "ERR LATENCY DOCTOR and GRAPH are not supported by Lockstep; use LATENCY LATEST, HISTORY "
      "and HISTOGRAM";
  CHECK(c1("LATENCY", "DOCTOR") == Reply::error(refusal));
  CHECK(c1("LATENCY", "GRAPH", "command") == Reply::error(refusal));
}

// ---------------------------------------------------------------------------------------------
// INFO commandstats / latencystats / stats

TEST_CASE("INFO commandstats counts calls over both workers, rejected and failed calls",
          "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("workers: 2"));
  Client c1 = cluster.client();
  Client c2 = cluster.client();  // the other worker
  const long long processed_before = info_int(c1, "stats", "total_commands_processed");
  CHECK(processed_before >= 0);

  for (int i = 0; i < 3; ++i) REQUIRE(c1("GET", "cs:" + std::to_string(i)).is_nil());
  for (int i = 0; i < 4; ++i) REQUIRE(c2("GET", "cs:" + std::to_string(i)).is_nil());
  CHECK(cmdstat(c1, "get", "calls") == 7);
  CHECK(cmdstat(c1, "get", "rejected_calls") == 0);
  CHECK(cmdstat(c1, "get", "failed_calls") == 0);
  CHECK(cmdstat(c1, "get", "usec") >= 0);

  // Wrong arity: rejected, not a call.
  CHECK(c1("GET").error_starts_with("ERR wrong number of arguments"));
  CHECK(cmdstat(c1, "get", "rejected_calls") == 1);
  CHECK(cmdstat(c1, "get", "calls") == 7);
  // CROSSSLOT: rejected.
  const std::string a = cluster.key_on(0, "cs"), b = cluster.key_on(1, "cs");
  CHECK(c2("SINTER", a, b) == Reply::error(kCrossSlot));
  CHECK(cmdstat(c1, "sinter", "rejected_calls") == 1);
  CHECK(cmdstat(c1, "sinter", "calls") == 0);
  // WRONGTYPE: a call that failed.
  REQUIRE(c2("LPUSH", a, "x") == Reply::integer_(1));
  CHECK(c2("GET", a).error_starts_with("WRONGTYPE"));
  CHECK(cmdstat(c1, "get", "calls") == 8);
  CHECK(cmdstat(c1, "get", "failed_calls") == 1);
  CHECK(cmdstat(c1, "get", "rejected_calls") == 1);
  CHECK(cmdstat(c1, "lpush", "calls") == 1);

  // The line's shape is Redis'.
  const Reply stats = c1("INFO", "commandstats");
  INFO(stats);
  REQUIRE(stats.is_string());
  CHECK(stats.str.rfind("# Commandstats\r\n", 0) == 0);
  const auto get_line = info_field(stats.str, "cmdstat_get");
  REQUIRE(get_line);
  CHECK(std::regex_match(
      *get_line,
      std::regex(
          R"(calls=8,usec=[0-9]+,usec_per_call=[0-9]+\.[0-9]{2},rejected_calls=1,failed_calls=1)")));

  const Reply lat = c1("INFO", "latencystats");
  INFO(lat);
  REQUIRE(lat.is_string());
  CHECK(lat.str.rfind("# Latencystats\r\n", 0) == 0);
  const auto p = info_field(lat.str, "latency_percentiles_usec_get");
  REQUIRE(p);
  CHECK(std::regex_match(*p, std::regex(R"(p50=[0-9.]+,p99=[0-9.]+,p99\.9=[0-9.]+)")));

  const long long processed_after = info_int(c2, "stats", "total_commands_processed");
  CHECK(processed_after >= processed_before + 13);
  // Default INFO leaves these two sections out, as Redis does.
  const Reply def = c1("INFO");
  REQUIRE(def.is_string());
  CHECK(def.str.find("# Commandstats") == std::string::npos);
  CHECK(def.str.find("# Latencystats") == std::string::npos);
  const Reply everything = c1("INFO", "everything");
  REQUIRE(everything.is_string());
  CHECK(everything.str.find("# Commandstats") != std::string::npos);
}

TEST_CASE("INFO stats auth_failures counts failed AUTH", "[integration][issue3][introspection]") {
  Cluster cluster(with_yaml("password: intro-secret\nworkers: 2"));
  Client admin = cluster.client();
  REQUIRE(admin("AUTH", "intro-secret").is_ok());
  CHECK(info_int(admin, "stats", "auth_failures") == 0);
  Client bad1 = cluster.client();
  Client bad2 = cluster.client();
  CHECK(bad1("AUTH", "wrong").error_starts_with("WRONGPASS"));
  CHECK(bad2("AUTH", "default", "wrong").error_starts_with("WRONGPASS"));
  CHECK(bad2("HELLO", "2", "AUTH", "default", "wrong").error_starts_with("WRONGPASS"));
  CHECK(info_int(admin, "stats", "auth_failures") == 3);
  CHECK(bad1("AUTH", "intro-secret").is_ok());
  CHECK(info_int(admin, "stats", "auth_failures") == 3);
}

TEST_CASE("CONFIG RESETSTAT through Lockstep resets Lockstep's INFO commandstats",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  Client c = cluster.client();
  for (int i = 0; i < 3; ++i) REQUIRE(c("GET", "rs:" + std::to_string(i)).is_nil());
  REQUIRE(cmdstat(c, "get", "calls") == 3);
  CHECK(c("CONFIG", "RESETSTAT").is_ok());
  // As on Redis: the counters start again (only CONFIG RESETSTAT/INFO may have run since).
  CHECK(cmdstat(c, "get", "calls") == -1);
  REQUIRE(c("GET", "rs:x").is_nil());
  CHECK(cmdstat(c, "get", "calls") == 1);
}

// ---------------------------------------------------------------------------------------------
// Scripts and functions

TEST_CASE("SCRIPT LOAD, EXISTS, FLUSH and EVALSHA on every backend",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  Client& c = cmp.proxy();
  const std::string script = "return redis.call('GET', KEYS[1])";
  const Reply sha = cmp.same({"SCRIPT", "LOAD", script});
  REQUIRE(sha.is_string());
  REQUIRE(sha.str.size() == 40);
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client d = cluster.direct(b);
    CHECK(d("SCRIPT", "EXISTS", sha.str) == Reply::array({Reply::integer_(1)}));
    const std::string key = cluster.key_on(b, "sc");
    REQUIRE(c("SET", key, "v" + std::to_string(b)).is_ok());
    CHECK(c("EVALSHA", sha.str, "1", key) == Reply::string("v" + std::to_string(b)));
    CHECK(c("EVALSHA_RO", sha.str, "1", key) == Reply::string("v" + std::to_string(b)));
  }
  cmp.same({"SCRIPT", "EXISTS", sha.str, std::string(40, '0')});
  cmp.same({"SCRIPT", "FLUSH"});
  cmp.same({"SCRIPT", "EXISTS", sha.str});
  for (size_t b = 0; b < cluster.size(); ++b) {
    const std::string key = cluster.key_on(b, "sc");
    cmp.same_error({"EVALSHA", sha.str, "1", key});
    cmp.same_error({"EVALSHA_RO", sha.str, "1", key});
  }
  cmp.same({"SCRIPT", "LOAD", script});
  cmp.same({"SCRIPT", "FLUSH", "ASYNC"});
  cmp.same_error({"EVALSHA", sha.str, "0"});
  // Two keys on different backends.
  CHECK(c("EVALSHA", sha.str, "2", cluster.key_on(0, "sc"), cluster.key_on(1, "sc")) ==
        Reply::error(kCrossSlot));
}

TEST_CASE("FUNCTION LOAD, FCALL, FCALL_RO, LIST, DELETE and FLUSH",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  Client& c = cmp.proxy();
  const std::string lib =
      "#!lua name=introlib\n"
      "redis.register_function('intro_get', function(keys, args) "
      "return redis.call('GET', keys[1]) end)\n"
      "redis.register_function{function_name='intro_get_ro', callback=function(keys, args) "
      "return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n";
  CHECK(cmp.same({"FUNCTION", "LOAD", lib}) == Reply::string("introlib"));
  cmp.same_error({"FUNCTION", "LOAD", lib});
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client d = cluster.direct(b);
    const Reply listed = d("FUNCTION", "LIST", "LIBRARYNAME", "introlib");
    INFO("backend " << b << ": " << listed);
    CHECK(listed.is_array());
    CHECK(listed.elements.size() == 1);
    const std::string key = cluster.key_on(b, "fn");
    REQUIRE(c("SET", key, "f" + std::to_string(b)).is_ok());
    CHECK(c("FCALL", "intro_get", "1", key) == Reply::string("f" + std::to_string(b)));
    CHECK(c("FCALL_RO", "intro_get_ro", "1", key) == Reply::string("f" + std::to_string(b)));
    CHECK(c("FCALL_RO", "intro_get", "1", key).is_error());  // not flagged no-writes
  }
  // Redis lists a library's functions in its dict's (seeded, so per process) order.
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{"FUNCTION", "LIST"},
                                             {"FUNCTION", "LIST", "WITHCODE"},
                                             {"FUNCTION", "LIST", "LIBRARYNAME", "intro"},
                                             {"FUNCTION", "LIST", "LIBRARYNAME", "nomatch"}}) {
    const Reply want = cmp.reference().command(argv);
    const Reply got = c.command(argv);
    INFO(show(argv) << "\nredis-server: " << want << "\nlockstep:     " << got);
    CHECK_FALSE(want.is_error());
    CHECK(sort_functions(got) == sort_functions(want));
  }

  // Two keys on different backends: CROSSSLOT; on one backend (hash tags): fine.
  CHECK(c("FCALL", "intro_get", "2", cluster.key_on(0, "fn"), cluster.key_on(2, "fn")) ==
        Reply::error(kCrossSlot));
  REQUIRE(c("SET", "{fn}a", "tagged").is_ok());
  CHECK(c("FCALL", "intro_get", "2", "{fn}a", "{fn}b") == Reply::string("tagged"));

  cmp.same({"FUNCTION", "DELETE", "introlib"});
  cmp.same_error({"FUNCTION", "DELETE", "introlib"});
  cmp.same_error({"FCALL", "intro_get", "1", cluster.key_on(1, "fn")});
  cmp.same({"FUNCTION", "LIST"});
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client d = cluster.direct(b);
    CHECK(d("FUNCTION", "LIST") == Reply::array({}));
  }

  cmp.same({"FUNCTION", "LOAD", lib});
  cmp.same({"FUNCTION", "FLUSH"});
  cmp.same({"FUNCTION", "LIST"});
  cmp.same_error({"FCALL_RO", "intro_get_ro", "1", cluster.key_on(0, "fn")});
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client d = cluster.direct(b);
    CHECK(d("FUNCTION", "LIST") == Reply::array({}));
  }
}

// ---------------------------------------------------------------------------------------------
// CONFIG

TEST_CASE("CONFIG GET answers from a backend; CONFIG SET is refused",
          "[integration][issue3][introspection]") {
  Cluster cluster;
  Client c = cluster.client();
  Client d = cluster.direct(0);
  const Reply policy = c("CONFIG", "GET", "maxmemory-policy");
  INFO(policy);
  CHECK(policy == d("CONFIG", "GET", "maxmemory-policy"));
  CHECK(policy == Reply::strings({"maxmemory-policy", "noeviction"}));
  CHECK(c("CONFIG", "GET", "no-such-parameter") == Reply::array({}));
  const std::string refusal =
      "ERR CONFIG SET/REWRITE are not supported by Lockstep: each backend has its own "
      "configuration file";
  CHECK(c("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == Reply::error(refusal));
  CHECK(c("CONFIG", "REWRITE") == Reply::error(refusal));
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client db = cluster.direct(b);
    CHECK(db("CONFIG", "GET", "maxmemory-policy") ==
          Reply::strings({"maxmemory-policy", "noeviction"}));
  }
}
