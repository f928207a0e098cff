// Blocking commands (BLPOP, BLMOVE, BZPOPMIN, BLMPOP, XREAD BLOCK, ...) and WAIT. Each blocked
// client holds a backend connection of its own, so it must not delay anyone else, must be
// released when the client leaves, is capped by limits.max_blocked_clients, and fails promptly
// when its backend dies.
#include <algorithm>
#include <cctype>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"
#include "support/resp3.h"

using namespace lockstep::test;

namespace {

constexpr std::string_view kCrossSlot =
    "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

// Redis' own count of blocked clients on a server.
long long server_blocked(uint16_t port) {
  Client c(port, 2s);
  return info_int(c, "clients", "blocked_clients");
}

long long lockstep_blocked(Cluster& cluster) {
  Client c = cluster.client(2s);
  return info_int(c, "clients", "blocked_clients");
}

bool wait_server_blocked(uint16_t port, long long n, Millis timeout = 5s) {
  return wait_until([&] { return server_blocked(port) == n; }, timeout);
}

bool wait_lockstep_blocked(Cluster& cluster, long long n, Millis timeout = 5s) {
  return wait_until([&] { return lockstep_blocked(cluster) == n; }, timeout);
}

// Connections on a server that CLIENT LIST shows blocked (flag b) in `cmd`.
int blocked_in(uint16_t port, std::string_view cmd) {
  Client c(port, 2s);
  const Reply list = c("CLIENT", "LIST");
  int n = 0;
  size_t pos = 0;
  const std::string& text = list.str;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = " " + text.substr(pos, eol - pos) + " ";
    pos = eol + 1;
    const size_t f = line.find(" flags=");
    if (f == std::string::npos) continue;
    const std::string flags = line.substr(f + 7, line.find(' ', f + 1) - f - 7);
    if (flags.find('b') != std::string::npos &&
        line.find(" cmd=" + std::string(cmd) + " ") != std::string::npos)
      ++n;
  }
  return n;
}

long long server_connections(uint16_t port) {
  Client c(port, 2s);
  // Minus this probe connection itself.
  return info_int(c, "clients", "connected_clients") - 1;
}

bool is_backend_unavailable(std::string_view raw) {
  return raw.substr(0, 13) == "-ERR backend " && raw.find("unavailable") != std::string::npos;
}

// Sends argv on a fresh raw connection (without reading).
std::unique_ptr<RawConn> start_command(uint16_t port, const std::vector<std::string>& argv) {
  auto conn = std::make_unique<RawConn>(port);
  REQUIRE(conn->send(encode_command(argv)));
  return conn;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ClusterOptions with_yaml(const std::string& yaml) {
  ClusterOptions o;
  o.extra_yaml = yaml;
  return o;
}

}  // namespace

TEST_CASE("Blocking: timeouts return nil after about the timeout",
          "[integration][issue3][blocking]") {
  // A blocking command may outlive timeouts.request_ms: its connection is its own.
  Cluster cluster(with_yaml("timeouts:\n  request_ms: 200\n"));
  RedisServer reference;
  struct Case {
    std::vector<std::string> argv;
    long long ms;
  };
  // Sorted by timeout: each runs on its own connection, all at once, and replies are read in
  // this order, so a reply is read about when it arrives.
  const std::vector<Case> cases = {
      {{"BRPOP", "t:list", "t:list", "0.3"}, 300},
      {{"BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0.3"}, 300},
      {{"BZPOPMIN", "t:zset", "0.3"}, 300},
      {{"BLMPOP", "0.3", "1", "t:list", "LEFT"}, 300},
      {{"BZMPOP", "0.3", "1", "t:zset", "MAX"}, 300},
      {{"XREAD", "BLOCK", "300", "STREAMS", "t:stream", "$"}, 300},
      {{"BLPOP", "t:list", "0.5"}, 500},
      {{"BLPOP", "t:list", "1"}, 1000},
  };
  struct Running {
    std::unique_ptr<RawConn> proxy, reference;
    Clock::time_point start;
  };
  std::vector<Running> running;
  for (const auto& tc : cases) {
    Running r;
    r.proxy = std::make_unique<RawConn>(cluster.port());
    r.reference = std::make_unique<RawConn>(reference.port());
    r.start = Clock::now();
    REQUIRE(r.proxy->send(encode_command(tc.argv)));
    REQUIRE(r.reference->send(encode_command(tc.argv)));
    running.push_back(std::move(r));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tc = cases[i];
    INFO(show(tc.argv));
    const std::string actual = running[i].proxy->read_raw_reply(5s).value_or("<no reply>");
    const long long took = elapsed_ms(running[i].start);
    const std::string expected = running[i].reference->read_raw_reply(5s).value_or("<no reply>");
    INFO("redis-server: " << escape_bytes(expected) << " lockstep: " << escape_bytes(actual)
                          << " after " << took << " ms");
    CHECK(actual == expected);
    CHECK((actual == "*-1\r\n" || actual == "$-1\r\n"));
    CHECK(took >= tc.ms);
    CHECK(took < tc.ms + 1000);
    CHECK(raw_call(*running[i].proxy, {"PING"}) == "+PONG\r\n");
  }
  CHECK(wait_lockstep_blocked(cluster, 0));
}

TEST_CASE("Blocking: commands woken by another client's write reply as redis-server does",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  RedisServer reference;
  const std::string q3 = cluster.key_on(0, "wq", 0), q4 = cluster.key_on(0, "wq", 1);
  REQUIRE(slot_of(q3) != slot_of(q4));
  struct Case {
    std::vector<std::vector<std::string>> setup;
    std::vector<std::string> block;
    std::vector<std::string> wake;
    std::string key;                 // decides the backend
    std::vector<std::string> after;  // checked on both once woken
  };
  const std::vector<Case> cases = {
      {{},
       {"BLPOP", "w:q1", "0"},
       {"RPUSH", "w:q1", "a", "b"},
       "w:q1",
       {"LRANGE", "w:q1", "0", "-1"}},
      {{},
       {"BRPOP", "w:q2", "0"},
       {"RPUSH", "w:q2", "a", "b"},
       "w:q2",
       {"LRANGE", "w:q2", "0", "-1"}},
      {{},
       {"BLMOVE", "{w}src", "{w}dst", "LEFT", "RIGHT", "0"},
       {"RPUSH", "{w}src", "x", "y"},
       "{w}src",
       {"LRANGE", "{w}dst", "0", "-1"}},
      {{},
       {"BRPOPLPUSH", "{w}a", "{w}b", "0"},
       {"RPUSH", "{w}a", "p"},
       "{w}a",
       {"LRANGE", "{w}b", "0", "-1"}},
      {{},
       {"BZPOPMIN", "w:z1", "0"},
       {"ZADD", "w:z1", "1", "m", "2", "n"},
       "w:z1",
       {"ZCARD", "w:z1"}},
      {{},
       {"BZPOPMAX", "w:z2", "0"},
       {"ZADD", "w:z2", "1", "m", "2", "n"},
       "w:z2",
       {"ZCARD", "w:z2"}},
      {{},
       {"BLMPOP", "0", "2", "{m}a", "{m}b", "LEFT", "COUNT", "2"},
       {"RPUSH", "{m}b", "v", "w", "x"},
       "{m}a",
       {"LLEN", "{m}b"}},
      {{},
       {"BZMPOP", "0", "2", "{n}a", "{n}b", "MIN"},
       {"ZADD", "{n}b", "2", "n", "3", "o"},
       "{n}a",
       {"ZCARD", "{n}b"}},
      {{},
       {"XREAD", "BLOCK", "0", "STREAMS", "w:s1", "$"},
       {"XADD", "w:s1", "5-1", "f", "v"},
       "w:s1",
       {"XLEN", "w:s1"}},
      {{{"XGROUP", "CREATE", "w:s2", "g", "$", "MKSTREAM"}},
       {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "COUNT", "5", "STREAMS", "w:s2", ">"},
       {"XADD", "w:s2", "7-1", "f", "v"},
       "w:s2",
       {"XPENDING", "w:s2", "g"}},
      {{},
       {"BLPOP", q3, q4, "0"},  // two keys in different slots of one backend: fine in Lockstep
       {"RPUSH", q4, "z"},
       q3,
       {"LLEN", q4}},
  };
  Client proxy = cluster.client();
  Client ref = reference.client();
  for (const auto& tc : cases) {
    INFO(show(tc.block));
    const size_t owner = cluster.owner(tc.key);
    for (const auto& s : tc.setup) {
      REQUIRE_FALSE(proxy.command(s).is_error());
      REQUIRE_FALSE(ref.command(s).is_error());
    }
    auto run = [&](uint16_t port, uint16_t blocked_port, Client& writer) {
      auto conn = start_command(port, tc.block);
      REQUIRE(wait_server_blocked(blocked_port, 1));
      CHECK(blocked_in(blocked_port, lower(tc.block[0])) == 1);
      REQUIRE_FALSE(writer.command(tc.wake).is_error());
      std::string reply = conn->read_raw_reply(5s).value_or("<no reply>");
      CHECK(raw_call(*conn, {"PING"}) == "+PONG\r\n");
      return reply;
    };
    const std::string expected = run(reference.port(), reference.port(), ref);
    const std::string actual = run(cluster.port(), cluster.backend(owner).port(), proxy);
    INFO("redis-server: " << escape_bytes(expected) << "\nlockstep:     " << escape_bytes(actual));
    CHECK(actual == expected);
    CHECK(actual.substr(0, 1) != "-");
    CHECK(proxy.command(tc.after) == ref.command(tc.after));
    CHECK(wait_lockstep_blocked(cluster, 0));
    CHECK(wait_server_blocked(cluster.backend(owner).port(), 0));
  }
}

TEST_CASE("Blocking: multi-key blocking commands across backends get CROSSSLOT at once",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  const std::string k0 = cluster.key_on(0, "x"), k1 = cluster.key_on(1, "x");
  const std::vector<std::vector<std::string>> cases = {
      {"BLPOP", k0, k1, "0"},
      {"BRPOP", k0, k1, "0"},
      {"BZPOPMIN", k0, k1, "0"},
      {"BZPOPMAX", k0, k1, "0"},
      {"BLMPOP", "0", "2", k0, k1, "LEFT"},
      {"BZMPOP", "0", "2", k0, k1, "MIN"},
      {"BLMOVE", k0, k1, "LEFT", "RIGHT", "0"},
      {"BRPOPLPUSH", k0, k1, "0"},
      {"XREAD", "BLOCK", "0", "STREAMS", k0, k1, "$", "$"},
      {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", k0, k1, ">", ">"},
  };
  RawConn conn(cluster.port());
  for (const auto& argv : cases) {
    INFO(show(argv));
    const auto start = Clock::now();
    CHECK(raw_call(conn, argv) == kCrossSlot);
    CHECK(elapsed_ms(start) < 1000);
  }
  CHECK(raw_call(conn, {"PING"}) == "+PONG\r\n");
  CHECK(lockstep_blocked(cluster) == 0);
}

TEST_CASE("Blocking: a pipeline around a blocking command keeps its order",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  SECTION("the blocking command is served by the request before it") {
    RawConn conn(cluster.port());
    REQUIRE(conn.send(encode_command({"RPUSH", "p:q", "a"}) +
                      encode_command({"BLPOP", "p:q", "0"}) + encode_command({"GET", "p:x"}) +
                      encode_command({"PING"})));
    CHECK(or_none(conn.read_raw_reply(5s)) == ":1\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "*2\r\n$3\r\np:q\r\n$1\r\na\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "$-1\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "+PONG\r\n");
  }
  SECTION("requests after a blocked command wait for it, as on one Redis connection") {
    const std::string queue = cluster.key_on(1, "pq");
    const std::string before = cluster.key_on(0, "pbefore"), after = cluster.key_on(2, "pafter");
    RawConn conn(cluster.port());
    REQUIRE(conn.send(encode_command({"SET", before, "1"}) + encode_command({"BLPOP", queue, "0"}) +
                      encode_command({"SET", after, "2"}) + encode_command({"GET", after}) +
                      encode_command({"GET", before}) + encode_command({"PING"})));
    REQUIRE(wait_server_blocked(cluster.backend(1).port(), 1));
    CHECK(or_none(conn.read_raw_reply(5s)) == "+OK\r\n");
    Client other = cluster.client();
    CHECK(other("GET", before) == Reply::string("1"));
    CHECK(other("GET", after).is_nil());  // not run yet: it comes after the BLPOP
    REQUIRE(other("RPUSH", queue, "v") == Reply::integer_(1));
    CHECK(or_none(conn.read_raw_reply(5s)) ==
          "*2\r\n$" + std::to_string(queue.size()) + "\r\n" + queue + "\r\n$1\r\nv\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "+OK\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "$1\r\n2\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "$1\r\n1\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "+PONG\r\n");
  }
  SECTION("several blocking commands in one pipeline, each timing out in turn") {
    RawConn conn(cluster.port());
    const auto start = Clock::now();
    REQUIRE(conn.send(encode_command({"BLPOP", cluster.key_on(0, "pt"), "0.2"}) +
                      encode_command({"BLPOP", cluster.key_on(1, "pt"), "0.2"}) +
                      encode_command({"PING"})));
    CHECK(or_none(conn.read_raw_reply(5s)) == "*-1\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "*-1\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "+PONG\r\n");
    CHECK(elapsed_ms(start) >= 400);  // one after the other, as Redis runs them
  }
}

TEST_CASE("Blocking: a client that disconnects while blocked releases its backend connection",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  const std::string key = cluster.key_on(2, "gone");
  const uint16_t backend = cluster.backend(2).port();
  const long long connections_before = server_connections(backend);

  for (int round = 0; round < 10; ++round) {
    INFO("round " << round);
    auto conn = start_command(cluster.port(), {"BLPOP", key, "0"});
    REQUIRE(wait_server_blocked(backend, 1));
    CHECK(blocked_in(backend, "blpop") == 1);
    CHECK(lockstep_blocked(cluster) == 1);
    conn->close();
    // At once: no connection is left blocked in BLPOP on the backend.
    CHECK(wait_until([&] { return blocked_in(backend, "blpop") == 0; }, 2s));
    CHECK(wait_server_blocked(backend, 0, 2s));
    CHECK(wait_lockstep_blocked(cluster, 0, 2s));
  }
  // Nothing is left behind on the backend: the blocked connections were closed, not pooled.
  CHECK(wait_until([&] { return server_connections(backend) <= connections_before; }, 2s));

  // No ghost BLPOP consumes what is pushed now.
  Client c = cluster.client();
  REQUIRE(c("RPUSH", key, "v") == Reply::integer_(1));
  CHECK(c("LLEN", key) == Reply::integer_(1));
  CHECK(c("LPOP", key) == Reply::string("v"));

  // The same for WAIT (blocked on every backend, forever without replicas).
  auto waiting = start_command(cluster.port(), {"WAIT", "1", "0"});
  for (size_t b = 0; b < cluster.size(); ++b)
    REQUIRE(wait_server_blocked(cluster.backend(b).port(), 1));
  CHECK(lockstep_blocked(cluster) == 1);
  waiting->close();
  for (size_t b = 0; b < cluster.size(); ++b) {
    INFO("backend " << b);
    CHECK(wait_server_blocked(cluster.backend(b).port(), 0, 2s));
    CHECK(blocked_in(cluster.backend(b).port(), "wait") == 0);
  }
  CHECK(wait_lockstep_blocked(cluster, 0, 2s));
}

namespace {

// A client blocked in BLPOP queues megabytes of requests behind it, then disconnects.
// `overflows`: the queue passes limits.client_max_queued_bytes, so Lockstep closes the client
// itself (as Redis closes a client past its query buffer limit) before it disconnects.
void leave_with_queued_pipeline(const ClusterOptions& options, size_t min_queued,
                                bool overflows = false) {
  Cluster cluster(options);
  const std::string key = cluster.key_on(0, "leaveq");
  const uint16_t backend = cluster.backend(0).port();
  RawConn conn(cluster.port());
  REQUIRE(conn.send(encode_command({"BLPOP", key, "0"})));
  REQUIRE(wait_server_blocked(backend, 1));
  // Lockstep holds these back (as Redis holds back a blocked client's pipeline) and may stop
  // reading once it holds enough; the rest waits in the socket buffers.
  std::string behind;
  for (int i = 0; i < 20000; ++i)
    behind += encode_command({"SET", "queued:" + std::to_string(i), std::string(100, 'x')});
  size_t sent = 0;
  while (sent < behind.size()) {
    const size_t n = conn.send_some(std::string_view(behind).substr(sent));
    if (n == 0) break;  // the socket buffers are full
    sent += n;
  }
  INFO("queued " << sent << " bytes behind the BLPOP");
  REQUIRE(sent > min_queued);
  if (!overflows) CHECK(lockstep_blocked(cluster) == 1);

  conn.close();
  // Redis frees such a client at once (it keeps reading a blocked client, up to its 1 GB query
  // buffer limit, and closes it beyond); so must Lockstep, or the backend connection stays
  // blocked in BLPOP for good, holding a max_blocked_clients slot and eating the next element.
  CHECK(wait_server_blocked(backend, 0, 3s));
  CHECK(blocked_in(backend, "blpop") == 0);
  CHECK(wait_lockstep_blocked(cluster, 0, 1s));
  Client c = cluster.client();
  REQUIRE(c("RPUSH", key, "v") == Reply::integer_(1));
  CHECK(c("LLEN", key) == Reply::integer_(1));
  // What the client queued behind the BLPOP is not run for a client that has gone.
  CHECK(c("EXISTS", "queued:19999") == Reply::integer_(0));
}

}  // namespace

TEST_CASE("Blocking: a blocked client with a long pipeline queued behind it can still leave",
          "[integration][issue3][blocking]") {
  SECTION("default limits") {
    leave_with_queued_pipeline(ClusterOptions{}, 256 * 1024);
  }
  SECTION("more queued than limits.client_max_queued_bytes") {
    leave_with_queued_pipeline(with_yaml("limits:\n  client_max_queued_bytes: 64kb\n"), 256 * 1024,
                               true);
  }
}

TEST_CASE("Blocking: requests pipelined behind a blocked command are all served after it",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  const std::string queue = cluster.key_on(1, "bq");
  // Far more than one read buffer of requests queued behind the BLPOP: Lockstep stops reading
  // them until it unblocks (so the writer thread blocks on a full socket), then serves them all.
  constexpr int kBehind = 20000;
  std::string payload = encode_command({"BLPOP", queue, "0"});
  for (int i = 0; i < kBehind; ++i)
    payload += encode_command({"SET", "behind:" + std::to_string(i), std::string(100, 'x')});
  payload += encode_command({"PING"});
  RawConn conn(cluster.port());
  bool sent = false;
  std::thread writer([&] { sent = conn.send(payload, 30s); });
  REQUIRE(wait_server_blocked(cluster.backend(1).port(), 1));
  Client c = cluster.client();
  CHECK(c("EXISTS", "behind:0") == Reply::integer_(0));  // nothing behind the BLPOP ran
  REQUIRE(c("RPUSH", queue, "go") == Reply::integer_(1));
  const auto first = conn.read_reply(10s);
  CHECK(or_none(first) == Reply::strings({queue, "go"}));
  int ok = 0;
  for (int i = 0; i < kBehind; ++i) {
    const auto r = conn.read_raw_reply(10s);
    if (!r) break;
    if (*r == "+OK\r\n") ++ok;
  }
  CHECK(ok == kBehind);
  CHECK(or_none(conn.read_raw_reply(10s)) == "+PONG\r\n");
  writer.join();
  CHECK(sent);
  CHECK(c("GET", "behind:" + std::to_string(kBehind - 1)) == Reply::string(std::string(100, 'x')));
}

TEST_CASE("Blocking: limits.max_blocked_clients caps clients blocked at once",
          "[integration][issue3][blocking]") {
  Cluster cluster(with_yaml("limits:\n  max_blocked_clients: 2\n"));
  const std::string k0 = cluster.key_on(0, "cap"), k1 = cluster.key_on(1, "cap"),
                    k2 = cluster.key_on(2, "cap");
  auto first = start_command(cluster.port(), {"BLPOP", k0, "0"});
  auto second = start_command(cluster.port(), {"BLPOP", k1, "0"});
  REQUIRE(wait_server_blocked(cluster.backend(0).port(), 1));
  REQUIRE(wait_server_blocked(cluster.backend(1).port(), 1));
  Client c = cluster.client();
  CHECK(info_int(c, "clients", "blocked_clients") == 2);

  RawConn third(cluster.port());
  const auto start = Clock::now();
  const std::string refused = raw_call(third, {"BLPOP", k2, "0"});
  INFO("third client: " << escape_bytes(refused));
  CHECK(refused.starts_with("-ERR too many blocked clients"));
  CHECK(elapsed_ms(start) < 1000);
  CHECK(server_blocked(cluster.backend(2).port()) == 0);
  // The refused client is fine and not blocked; so is everyone else.
  CHECK(raw_call(third, {"PING"}) == "+PONG\r\n");
  CHECK(raw_call(third, {"SET", k2, "x"}) == "+OK\r\n");
  CHECK(raw_call(third, {"DEL", k2}) == ":1\r\n");
  CHECK(c("PING") == Reply::status("PONG"));
  // WAIT is a blocking command too.
  CHECK(c("WAIT", "0", "0").error_starts_with("ERR too many blocked clients"));
  CHECK(info_int(c, "clients", "blocked_clients") == 2);

  // One unblocks: a new one can block.
  REQUIRE(c("RPUSH", k0, "a") == Reply::integer_(1));
  CHECK(or_none(first->read_reply(5s)) == Reply::strings({k0, "a"}));
  REQUIRE(wait_lockstep_blocked(cluster, 1));
  REQUIRE(third.send(encode_command({"BLPOP", k2, "0"})));
  REQUIRE(wait_server_blocked(cluster.backend(2).port(), 1));
  CHECK(lockstep_blocked(cluster) == 2);
  REQUIRE(c("RPUSH", k2, "b") == Reply::integer_(1));
  CHECK(or_none(third.read_reply(5s)) == Reply::strings({k2, "b"}));
  REQUIRE(c("RPUSH", k1, "c") == Reply::integer_(1));
  CHECK(or_none(second->read_reply(5s)) == Reply::strings({k1, "c"}));
  CHECK(wait_lockstep_blocked(cluster, 0));
}

TEST_CASE("Blocking: INFO clients blocked_clients counts blocked clients",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  Client c = cluster.client();
  CHECK(info_int(c, "clients", "blocked_clients") == 0);
  std::vector<std::unique_ptr<RawConn>> conns;
  std::vector<std::string> keys;
  for (size_t i = 0; i < 3; ++i) {
    keys.push_back(cluster.key_on(i, "cnt"));
    conns.push_back(start_command(cluster.port(), {"BLPOP", keys.back(), "0"}));
  }
  conns.push_back(start_command(cluster.port(),
                                {"XREAD", "BLOCK", "0", "STREAMS", cluster.key_on(0, "cs"), "$"}));
  CHECK(wait_lockstep_blocked(cluster, 4));
  REQUIRE(c("RPUSH", keys[0], "a") == Reply::integer_(1));
  CHECK(or_none(conns[0]->read_reply(5s)) == Reply::strings({keys[0], "a"}));
  CHECK(wait_lockstep_blocked(cluster, 3));
  conns[1]->close();
  CHECK(wait_lockstep_blocked(cluster, 2));
  REQUIRE(c("XADD", cluster.key_on(0, "cs"), "1-1", "f", "v").is_string());
  CHECK(conns[3]->read_reply(5s).has_value());
  CHECK(wait_lockstep_blocked(cluster, 1));
  REQUIRE(c("RPUSH", keys[2], "c") == Reply::integer_(1));
  CHECK(or_none(conns[2]->read_reply(5s)) == Reply::strings({keys[2], "c"}));
  CHECK(wait_lockstep_blocked(cluster, 0));
}

TEST_CASE("Blocking: 20 blocked clients do not slow other clients",
          "[integration][issue3][blocking]") {
  Cluster cluster;
  constexpr int kBlocked = 20;
  std::vector<std::unique_ptr<RawConn>> blocked;
  std::vector<std::string> keys;
  for (int i = 0; i < kBlocked; ++i) {
    keys.push_back(
        cluster.key_on(static_cast<size_t>(i) % cluster.size(), "slow", static_cast<size_t>(i)));
    blocked.push_back(start_command(cluster.port(), {"BLPOP", keys.back(), "0"}));
  }
  REQUIRE(wait_lockstep_blocked(cluster, kBlocked));
  // Lockstep counts a client blocked when it sends the BLPOP; the backend when it has read it.
  long long on_backends = 0;
  wait_until(
      [&] {
        on_backends = 0;
        for (size_t b = 0; b < cluster.size(); ++b)
          on_backends += server_blocked(cluster.backend(b).port());
        return on_backends == kBlocked;
      },
      5s);
  CHECK(on_backends == kBlocked);

  // Other clients, old and new, on every backend: prompt answers.
  Client c = cluster.client();
  long long worst = 0;
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    const std::string k = cluster.key_on(static_cast<size_t>(i) % cluster.size(), "fast");
    auto t = Clock::now();
    REQUIRE(c("PING") == Reply::status("PONG"));
    REQUIRE(c("SET", k, std::to_string(i)).is_ok());
    REQUIRE(c("GET", k) == Reply::string(std::to_string(i)));
    worst = std::max(worst, elapsed_ms(t));
  }
  for (int i = 0; i < 10; ++i) {
    Client fresh = cluster.client(2s);
    auto t = Clock::now();
    REQUIRE(fresh("PING") == Reply::status("PONG"));
    REQUIRE(fresh("MGET", keys[0], keys[1], keys[2]).is_array());
    worst = std::max(worst, elapsed_ms(t));
  }
  INFO("slowest round trip: " << worst << " ms; all: " << elapsed_ms(start) << " ms");
  CHECK(worst < 500);
  CHECK(elapsed_ms(start) < 3000);

  // Every blocked client gets its own element.
  for (int i = 0; i < kBlocked; ++i)
    REQUIRE(c("RPUSH", keys[i], "e" + std::to_string(i)) == Reply::integer_(1));
  for (int i = 0; i < kBlocked; ++i)
    CHECK(or_none(blocked[i]->read_reply(5s)) ==
          Reply::strings({keys[i], "e" + std::to_string(i)}));
  CHECK(wait_lockstep_blocked(cluster, 0));
}

TEST_CASE("Blocking: a backend killed under blocked clients fails them promptly",
          "[integration][issue3][blocking]") {
  Cluster cluster(
      with_yaml("timeouts:\n  connect_ms: 300\n  request_ms: 1000\n  backend_retry_max_ms: 300\n"));
  std::vector<std::unique_ptr<RawConn>> on_dead;
  for (size_t i = 0; i < 3; ++i)
    on_dead.push_back(start_command(cluster.port(), {"BLPOP", cluster.key_on(2, "dead", i), "0"}));
  on_dead.push_back(start_command(
      cluster.port(), {"XREAD", "BLOCK", "0", "STREAMS", cluster.key_on(2, "deads"), "$"}));
  const std::string alive_key = cluster.key_on(0, "alive");
  auto on_alive = start_command(cluster.port(), {"BLPOP", alive_key, "0"});
  REQUIRE(wait_server_blocked(cluster.backend(2).port(), 4));
  REQUIRE(wait_server_blocked(cluster.backend(0).port(), 1));

  cluster.backend(2).kill9();
  const auto start = Clock::now();
  for (auto& conn : on_dead) {
    const std::string reply = conn->read_raw_reply(3s).value_or("<no reply>");
    INFO("reply: " << escape_bytes(reply) << " after " << elapsed_ms(start) << " ms");
    CHECK(is_backend_unavailable(reply));
  }
  CHECK(elapsed_ms(start) < 1500);
  // Those clients can go on; a new blocking command on the dead backend fails at once too.
  for (auto& conn : on_dead) CHECK(raw_call(*conn, {"PING"}) == "+PONG\r\n");
  {
    const auto t = Clock::now();
    CHECK(is_backend_unavailable(raw_call(*on_dead[0], {"BLPOP", cluster.key_on(2, "dead"), "0"})));
    CHECK(elapsed_ms(t) < 1500);
  }
  CHECK(wait_lockstep_blocked(cluster, 1));

  // The client blocked on a healthy backend is untouched.
  Client c = cluster.client();
  REQUIRE(c("RPUSH", alive_key, "ok") == Reply::integer_(1));
  CHECK(or_none(on_alive->read_reply(5s)) == Reply::strings({alive_key, "ok"}));

  // Once the backend is back, blocking commands on it work again.
  cluster.backend(2).restart();
  RawConn conn(cluster.port());
  CHECK(wait_until(
      [&] {
        return raw_call(conn, {"BLPOP", cluster.key_on(2, "dead"), "0.01"}) == "*-1\r\n";
      },
      10s, 50ms));
  CHECK(wait_lockstep_blocked(cluster, 0));
}

TEST_CASE("WAIT without replicas", "[integration][issue3][blocking][wait]") {
  Cluster cluster;
  RedisServer reference;
  Client c = cluster.client();
  REQUIRE(c("SET", "w", "1").is_ok());
  {
    const auto start = Clock::now();
    CHECK(c("WAIT", "0", "0") == Reply::integer_(0));
    CHECK(elapsed_ms(start) < 500);
  }
  {
    const auto start = Clock::now();
    CHECK(c("WAIT", "1", "200") == Reply::integer_(0));
    const long long took = elapsed_ms(start);
    CHECK(took >= 200);
    CHECK(took < 1200);
  }
  Compare cmp(reference.client(), cluster.client());
  cmp.same({"WAIT", "0", "0"});
  cmp.same_error({"WAIT", "1", "-1"});
  cmp.same_error({"WAIT", "x", "1"});
  cmp.same_error({"WAIT", "1", "x"});
  cmp.same_error({"WAIT", "1"});
  CHECK(lockstep_blocked(cluster) == 0);
  CHECK(c("PING") == Reply::status("PONG"));

  // Pipelined after writes on every backend, it answers in order.
  RawConn conn(cluster.port());
  std::string payload;
  for (size_t b = 0; b < cluster.size(); ++b)
    payload += encode_command({"SET", cluster.key_on(b, "wp"), "v"});
  payload += encode_command({"WAIT", "0", "100"}) + encode_command({"PING"});
  REQUIRE(conn.send(payload));
  for (size_t b = 0; b < cluster.size(); ++b) CHECK(or_none(conn.read_raw_reply(5s)) == "+OK\r\n");
  CHECK(or_none(conn.read_raw_reply(5s)) == ":0\r\n");
  CHECK(or_none(conn.read_raw_reply(5s)) == "+PONG\r\n");
}

TEST_CASE("WAIT with one replica per backend", "[integration][issue3][blocking][wait]") {
  Cluster cluster;
  std::vector<std::unique_ptr<RedisServer>> replicas;
  for (size_t b = 0; b < cluster.size(); ++b) {
    // Full syncs start at once instead of after Redis' default 5 s diskless-sync delay.
    REQUIRE(cluster.direct(b)("CONFIG", "SET", "repl-diskless-sync-delay", "0").is_ok());
  }
  for (size_t b = 0; b < cluster.size(); ++b) {
    RedisOptions o;
    o.extra_args = {"--replicaof", "127.0.0.1", std::to_string(cluster.backend(b).port())};
    replicas.push_back(std::make_unique<RedisServer>(o));
  }
  for (size_t b = 0; b < cluster.size(); ++b) {
    INFO("backend " << b);
    REQUIRE(wait_until(
        [&] {
          Client d = cluster.direct(b, 2s);
          const Reply r = d("INFO", "replication");
          const auto slave = info_field(r.str, "slave0");
          return info_field(r.str, "connected_slaves") == "1" && slave &&
                 slave->find("state=online") != std::string::npos;
        },
        10s, 20ms));
  }

  Client c = cluster.client();
  for (size_t b = 0; b < cluster.size(); ++b) {
    INFO("backend " << b);
    const std::string k = cluster.key_on(b, "rep");
    REQUIRE(c("SET", k, "v" + std::to_string(b)).is_ok());
    const auto start = Clock::now();
    CHECK(c("WAIT", "1", "2000") == Reply::integer_(1));
    CHECK(elapsed_ms(start) < 1500);
    // Acknowledged means the replica has it.
    Client r = replicas[b]->client();
    CHECK(r("GET", k) == Reply::string("v" + std::to_string(b)));
  }

  // Writes to every backend, then one WAIT: every replica has every write once it returns.
  RawConn conn(cluster.port());
  std::string payload;
  std::vector<std::string> keys;
  for (size_t b = 0; b < cluster.size(); ++b) {
    for (size_t i = 0; i < 20; ++i) {
      keys.push_back(cluster.key_on(b, "all", i));
      payload += encode_command({"SET", keys.back(), "x" + std::to_string(keys.size())});
    }
  }
  payload += encode_command({"WAIT", "1", "2000"});
  REQUIRE(conn.send(payload));
  for (size_t i = 0; i < keys.size(); ++i) REQUIRE(or_none(conn.read_raw_reply(5s)) == "+OK\r\n");
  CHECK(or_none(conn.read_raw_reply(5s)) == ":1\r\n");
  for (size_t i = 0; i < keys.size(); ++i) {
    Client r = replicas[cluster.owner(keys[i])]->client();
    CHECK(r("GET", keys[i]) == Reply::string("x" + std::to_string(i + 1)));
  }

  // More replicas than there are: times out with the count there is.
  const auto start = Clock::now();
  CHECK(c("WAIT", "2", "300") == Reply::integer_(1));
  CHECK(elapsed_ms(start) >= 300);
  CHECK(elapsed_ms(start) < 1300);
  CHECK(lockstep_blocked(cluster) == 0);
}
