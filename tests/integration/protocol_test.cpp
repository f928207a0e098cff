// Raw protocol handling: malformed input, inline commands, stalled clients and limits. After
// each abuse the proxy must still be running and serving.
#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

// The first reply line a connection gets for `bytes`, or "<none>".
std::string first_line(uint16_t port, const std::string& bytes, Millis timeout = 3s) {
  RawConn conn(port);
  if (!conn.send(bytes)) return "<send failed>";
  return conn.read_line(timeout).value_or("<none>");
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return std::string_view(s).substr(0, prefix.size()) == prefix;
}

void check_still_serving(Cluster& cluster) {
  CHECK(cluster.proxy().running());
  Client c = cluster.client(3s);
  CHECK(c("PING") == Reply::status("PONG"));
  CHECK(c("SET", "alive", "yes").is_ok());
  CHECK(c("GET", "alive") == Reply::string("yes"));
}

ClusterOptions limits(const std::string& yaml) {
  ClusterOptions o;
  o.extra_yaml = "limits:\n" + yaml;
  return o;
}

}  // namespace

TEST_CASE("malformed RESP gets -ERR Protocol error and the connection is closed",
          "[integration][protocol]") {
  Cluster cluster(limits("  max_bulk_bytes: 1024\n"));
  Client direct_probe = cluster.direct(0);
  struct Case {
    const char* name;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"negative bulk length", "*1\r\n$-5\r\n"},
      {"non-numeric multibulk length", "*abc\r\n"},
      {"integer inside a multibulk", "*1\r\n:1\r\n"},
      {"simple string inside a multibulk", "*2\r\n+GET\r\n$1\r\na\r\n"},
      {"non-numeric bulk length", "*1\r\n$x\r\n"},
      {"bulk over max_bulk_bytes", "*2\r\n$3\r\nSET\r\n$2000\r\n"},
      {"bulk over max_bulk_bytes with data",
       "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n" + std::string(1025, 'x') + "\r\n"},
  };
  for (const auto& tc : cases) {
    RawConn conn(cluster.port());
    REQUIRE(conn.send(tc.bytes));
    auto line = conn.read_line(3s);
    INFO(tc.name << ": lockstep answered " << Reply::string(line.value_or("<nothing>"))
                 << "; redis-server answers "
                 << Reply::string(first_line(cluster.backend(0).port(), tc.bytes, 300ms)));
    REQUIRE(line);
    CHECK(starts_with(*line, "-ERR Protocol error"));
    CHECK(conn.closed_by_peer(3s));
  }

  // A valid command before the bad bytes is answered first.
  RawConn conn(cluster.port());
  REQUIRE(conn.send("*1\r\n$4\r\nPING\r\n*abc\r\n"));
  CHECK(or_none(conn.read_line(3s)) == "+PONG\r\n");
  auto err = conn.read_line(3s);
  REQUIRE(err);
  CHECK(starts_with(*err, "-ERR Protocol error"));
  CHECK(conn.closed_by_peer(3s));

  check_still_serving(cluster);
}

TEST_CASE("inline commands work as in Redis", "[integration][protocol]") {
  Cluster cluster;
  RedisServer reference;
  struct Step {
    std::string send;
    std::string expect;  // exact bytes
  };
  const std::vector<Step> steps = {
      {"PING\r\n", "+PONG\r\n"},
      {"SET a b\r\n", "+OK\r\n"},
      {"GET a\r\n", "$1\r\nb\r\n"},
      {"PING\n", "+PONG\r\n"},  // bare \n is accepted too
      {"set   spaced    value\r\n", "+OK\r\n"},
      {"GET spaced\r\n", "$5\r\nvalue\r\n"},
      {"SET \"k x\" \"hello world\"\r\n", "+OK\r\n"},
      {"GET \"k x\"\r\n", "$11\r\nhello world\r\n"},
      {"ECHO \"a\\nb\"\r\n", "$3\r\na\nb\r\n"},
      {"\r\nPING\r\n", "+PONG\r\n"},  // empty lines are skipped
      {"EXISTS a spaced missing\r\n", ":2\r\n"},
  };
  RawConn proxy(cluster.port());
  RawConn ref(reference.port());
  for (const auto& step : steps) {
    INFO("inline " << Reply::string(step.send));
    REQUIRE(proxy.send(step.send));
    REQUIRE(ref.send(step.send));
    auto expected = ref.read_raw_reply(3s);
    auto actual = proxy.read_raw_reply(3s);
    CHECK(or_none(expected) == step.expect);
    CHECK(actual == expected);
  }
  // Inline and multibulk mixed in one packet.
  REQUIRE(proxy.send("PING\r\n" + encode_command({"GET", "a"}) + "GET a\r\n"));
  CHECK(or_none(proxy.read_raw_reply(3s)) == "+PONG\r\n");
  CHECK(or_none(proxy.read_raw_reply(3s)) == "$1\r\nb\r\n");
  CHECK(or_none(proxy.read_raw_reply(3s)) == "$1\r\nb\r\n");

  // Unbalanced quotes: protocol error, as Redis.
  RawConn bad(cluster.port());
  REQUIRE(bad.send("SET \"a b\r\n"));
  auto line = bad.read_line(3s);
  REQUIRE(line);
  CHECK(*line == first_line(reference.port(), "SET \"a b\r\n"));
  CHECK(bad.closed_by_peer(3s));
  check_still_serving(cluster);
}

TEST_CASE("a client that sends half a command does not block others", "[integration][protocol]") {
  Cluster cluster;
  RawConn stalled(cluster.port());
  REQUIRE(stalled.send("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nval"));
  RawConn stalled_inline(cluster.port());
  REQUIRE(stalled_inline.send("GET hal"));

  Client c = cluster.client(3s);
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    const std::string k = "other:" + std::to_string(i);
    REQUIRE(c("SET", k, "v").is_ok());
    REQUIRE(c("GET", k) == Reply::string("v"));
  }
  CHECK(elapsed_ms(start) < 3000);
  // Nothing was answered to the half commands.
  CHECK_FALSE(stalled.read_more(50ms));
  CHECK(stalled.buffer().empty());

  REQUIRE(stalled.send("ue\r\n"));
  CHECK(or_none(stalled.read_line(3s)) == "+OK\r\n");
  REQUIRE(stalled_inline.send("f\r\n"));
  CHECK(or_none(stalled_inline.read_raw_reply(3s)) == "$5\r\nvalue\r\n");
  // Byte by byte works as well.
  const std::string cmd = encode_command({"GET", "half"});
  for (char ch : cmd) REQUIRE(stalled.send(std::string(1, ch)));
  CHECK(or_none(stalled.read_raw_reply(3s)) == "$5\r\nvalue\r\n");
}

TEST_CASE("max_clients: the next connection gets an error and is closed",
          "[integration][protocol][limits]") {
  constexpr int kMax = 10;
  Cluster cluster(limits("  max_clients: 10\n"));
  const std::string max_error = "-ERR max number of clients reached\r\n";
  std::vector<RawConn> conns;
  for (int i = 0; i < kMax; ++i) {
    // The harness's own readiness probe may take a moment to be counted out: retry.
    bool ok = wait_until(
        [&] {
          RawConn c(cluster.port());
          if (!c.send("PING\r\n")) return false;
          if (or_none(c.read_line(2s)) != "+PONG\r\n") return false;
          conns.push_back(std::move(c));
          return true;
        },
        3s, 20ms);
    INFO("connection " << i);
    REQUIRE(ok);
  }
  RawConn extra(cluster.port());
  auto line = extra.read_line(3s);
  CHECK(or_none(line) == max_error);
  CHECK(extra.closed_by_peer(3s));

  // All accepted connections still work.
  for (auto& c : conns) {
    REQUIRE(c.send("PING\r\n"));
    CHECK(or_none(c.read_line(3s)) == "+PONG\r\n");
  }
  // Closing one makes room for one.
  conns.pop_back();
  bool admitted = wait_until(
      [&] {
        RawConn c(cluster.port());
        if (!c.send("PING\r\n")) return false;
        if (or_none(c.read_line(2s)) != "+PONG\r\n") return false;
        conns.push_back(std::move(c));
        return true;
      },
      3s, 20ms);
  CHECK(admitted);
  conns.clear();
  CHECK(wait_until(
      [&] {
        Client c = cluster.client(1s);
        return c("PING") == Reply::status("PONG");
      },
      3s, 20ms));
  check_still_serving(cluster);
}

TEST_CASE("max_args and max_inline_bytes", "[integration][protocol][limits]") {
  Cluster cluster(limits("  max_args: 8\n  max_inline_bytes: 256\n"));
  {
    Client c = cluster.client();
    CHECK(c("DEL", "a", "b", "c", "d", "e", "f", "g") == Reply::integer_(0));  // 8 args: fine
  }
  {
    RawConn conn(cluster.port());
    REQUIRE(conn.send(encode_command({"DEL", "a", "b", "c", "d", "e", "f", "g", "h"})));
    auto line = conn.read_line(3s);
    INFO("9 args: " << Reply::string(line.value_or("<nothing>")));
    REQUIRE(line);
    CHECK(starts_with(*line, "-ERR"));
    // A protocol error closes the connection; any other error leaves it usable.
    if (starts_with(*line, "-ERR Protocol error")) {
      CHECK(conn.closed_by_peer(3s));
    } else {
      REQUIRE(conn.send("PING\r\n"));
      CHECK(or_none(conn.read_line(3s)) == "+PONG\r\n");
    }
  }
  {
    RawConn conn(cluster.port());
    REQUIRE(conn.send("*1000000\r\n"));  // announcing too many arguments is enough
    auto line = conn.read_line(3s);
    REQUIRE(line);
    CHECK(starts_with(*line, "-ERR"));
  }
  {
    RawConn conn(cluster.port());
    REQUIRE(conn.send("ECHO " + std::string(200, 'x') + "\r\n"));  // under the limit
    auto r = conn.read_reply(3s);
    CHECK(or_none(r) == Reply::string(std::string(200, 'x')));
  }
  {
    RawConn conn(cluster.port());
    REQUIRE(conn.send("SET a " + std::string(1000, 'x') + "\r\n"));
    auto line = conn.read_line(3s);
    INFO("long inline: " << Reply::string(line.value_or("<nothing>")));
    REQUIRE(line);
    CHECK(starts_with(*line, "-ERR Protocol error"));
    CHECK(conn.closed_by_peer(3s));
  }
  {
    // Without any newline: rejected once the limit is passed, not when a newline comes.
    RawConn conn(cluster.port());
    REQUIRE(conn.send(std::string(5000, 'y')));
    auto line = conn.read_line(3s);
    INFO("unterminated inline: " << Reply::string(line.value_or("<nothing>")));
    REQUIRE(line);
    CHECK(starts_with(*line, "-ERR Protocol error"));
    CHECK(conn.closed_by_peer(3s));
  }
  check_still_serving(cluster);
}

TEST_CASE("abrupt disconnects with requests in flight do not hurt the proxy",
          "[integration][protocol]") {
  Cluster cluster;
  for (int i = 0; i < 20; ++i) {
    RawConn conn(cluster.port());
    std::string payload;
    for (int j = 0; j < 200; ++j) {
      payload += encode_command({"SET", "abrupt:" + std::to_string(j), std::string(100, 'v')});
      payload += encode_command({"MGET", "abrupt:1", "abrupt:2", "abrupt:3"});
    }
    REQUIRE(conn.send(payload));
    // Closed without reading anything.
  }
  check_still_serving(cluster);
}

TEST_CASE("empty and null multibulks are skipped as in Redis", "[integration][protocol]") {
  Cluster cluster;
  RedisServer reference;
  const std::string bytes = "*0\r\n*-1\r\n" + encode_command({"PING"}) + "*0\r\nPING\r\n";
  auto transcript = [&](uint16_t port) {
    RawConn conn(port);
    REQUIRE(conn.send(bytes));
    conn.read_until([](std::string_view b) { return b.size() >= 14; }, 3s);
    conn.read_more(50ms);  // anything extra would show up here
    return conn.buffer();
  };
  const std::string expected = transcript(reference.port());
  CHECK(expected == "+PONG\r\n+PONG\r\n");
  CHECK(transcript(cluster.port()) == expected);
}
