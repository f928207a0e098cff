// RESP3: after HELLO 3 every reply must be byte-for-byte what a redis-server gives a RESP3
// connection (maps, sets, doubles, nulls), including replies Lockstep merges from several
// backends; HELLO 2 switches back; HELLO is ordered after everything pipelined before it.
#include <set>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"
#include "support/resp3.h"

using namespace lockstep::test;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

TEST_CASE("RESP3: replies after HELLO 3 are byte-for-byte those of redis-server",
          "[integration][issue3][resp3]") {
  Cluster cluster;
  RedisServer reference;
  RawCompare cmp(reference.port(), cluster.port());

  const Reply hello = cmp.hello({"HELLO", "3"});
  CHECK(hello.type == Reply::Type::kMap);
  CHECK(hello_fields(hello)["proto"] == Reply::integer_(3));
  CHECK(hello_fields(hello)["server"] == Reply::string("redis"));
  // The id in HELLO's reply is the connection's CLIENT ID.
  CHECK(raw_call(cmp.proxy(), {"CLIENT", "ID"}) ==
        ":" + std::to_string(hello_fields(hello)["id"].integer) + "\r\n");

  // Maps, sets, doubles.
  cmp.same({"HSET", "h", "f", "v", "g", "w"});
  CHECK(cmp.same({"HGETALL", "h"}) == "%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n");
  CHECK(cmp.same({"HGETALL", "nohash"}) == "%0\r\n");
  cmp.same({"SADD", "s", "m"});
  CHECK(cmp.same({"SMEMBERS", "s"}) == "~1\r\n$1\r\nm\r\n");
  cmp.same({"SMISMEMBER", "s", "m", "x"});
  cmp.same({"ZADD", "z", "1.5", "a"});
  CHECK(cmp.same({"ZSCORE", "z", "a"}) == ",1.5\r\n");
  CHECK(cmp.same({"ZINCRBY", "z", "2.25", "a"}) == ",3.75\r\n");
  CHECK(cmp.same({"ZRANGE", "z", "0", "-1", "WITHSCORES"}) == "*1\r\n*2\r\n$1\r\na\r\n,3.75\r\n");
  CHECK(cmp.same({"ZSCORE", "z", "nomember"}) == "_\r\n");
  cmp.same({"ZMSCORE", "z", "a", "nomember"});
  cmp.same({"ZRANDMEMBER", "z", "1", "WITHSCORES"});
  cmp.same({"ZADD", "z2", "2", "m"});
  cmp.same({"ZPOPMIN", "z2"});
  cmp.same({"INCRBYFLOAT", "fl", "1.5"});

  // Nulls, alone and inside arrays merged from several backends.
  CHECK(cmp.same({"GET", "missing"}) == "_\r\n");
  const std::string k0 = cluster.key_on(0, "m"), k1 = cluster.key_on(1, "m"),
                    k2 = cluster.key_on(2, "m");
  const std::string n0 = cluster.key_on(0, "none"), n1 = cluster.key_on(1, "none"),
                    n2 = cluster.key_on(2, "none");
  cmp.same({"MSET", k0, "v0", k1, "v1", k2, "v2"});
  CHECK(cmp.same({"MGET", k0, n0, k1, n1, k2, n2}) ==
        "*6\r\n$2\r\nv0\r\n_\r\n$2\r\nv1\r\n_\r\n$2\r\nv2\r\n_\r\n");
  CHECK(cmp.same({"MGET", n2, n1, n0}) == "*3\r\n_\r\n_\r\n_\r\n");
  CHECK(cmp.same({"EXISTS", k0, k1, k2, n0, n1}) == ":3\r\n");
  cmp.same({"TOUCH", k0, k1, n2});

  // Streams.
  cmp.same({"XADD", "st", "1-1", "a", "1"});
  cmp.same({"XADD", "st", "2-1", "b", "2"});
  cmp.same({"XRANGE", "st", "-", "+"});
  cmp.same({"XREVRANGE", "st", "+", "-", "COUNT", "1"});
  cmp.same({"XREAD", "COUNT", "5", "STREAMS", "st", "0"});  // a map keyed by stream
  cmp.same({"XINFO", "STREAM", "st"});

  // Random picks from a single element are deterministic.
  cmp.same({"HSET", "one", "f", "v"});
  cmp.same({"HRANDFIELD", "one", "1"});
  cmp.same({"HRANDFIELD", "one", "1", "WITHVALUES"});
  cmp.same({"HRANDFIELD", "one"});
  cmp.same({"SRANDMEMBER", "s", "1"});

  // Answered locally or by any backend.
  CHECK(cmp.same({"CLIENT", "GETNAME"}) == "_\r\n");
  cmp.same({"CONFIG", "HELP"});
  cmp.same({"COMMAND", "DOCS", "get"});
  cmp.same({"COMMAND", "INFO", "get", "hgetall"});
  cmp.same({"PING"});
  cmp.same({"ECHO", "hi"});

  // Other keyed replies and errors.
  cmp.same({"TYPE", "h"});
  cmp.same({"TTL", "h"});
  cmp.same({"OBJECT", "ENCODING", "h"});
  cmp.same({"SET", "{l}a", "ohmytext"});
  cmp.same({"SET", "{l}b", "mynewtext"});
  cmp.same({"LCS", "{l}a", "{l}b", "IDX", "MINMATCHLEN", "2"});
  cmp.same_error({"GET", "h"});
  cmp.same_error({"HGETALL", "h", "extra"});

  // Lua replies converted by Redis to RESP3 types (any backend, or the key's).
  cmp.same({"EVAL", "return true", "0"});
  cmp.same({"EVAL", "return false", "0"});
  cmp.same({"EVAL", "return {double=3.5}", "0"});
  cmp.same({"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"});
  cmp.same({"EVAL", "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'a')", "1", "z"});

  // Fan-out and summed replies.
  cmp.same({"DBSIZE"});
  cmp.same_unordered({"KEYS", "*"});
  // No TTLs: the summed keyspace line is exactly Redis' (a verbatim string in RESP3).
  CHECK(starts_with(cmp.same({"INFO", "keyspace"}), "="));
  CHECK(cmp.same({"DEL", k0, k1, k2, n0}) == ":3\r\n");

  // HELLO without a version reports the current protocol.
  CHECK(hello_fields(cmp.hello({"HELLO"}))["proto"] == Reply::integer_(3));

  // HELLO 2 switches back: flat arrays and $-1 nulls again.
  const Reply hello2 = cmp.hello({"HELLO", "2"});
  CHECK(hello2.type == Reply::Type::kArray);
  CHECK(hello_fields(hello2)["proto"] == Reply::integer_(2));
  CHECK(cmp.same({"HGETALL", "h"}) == "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n");
  CHECK(cmp.same({"GET", "missing"}) == "$-1\r\n");
  CHECK(cmp.same({"ZSCORE", "z", "a"}) == "$4\r\n3.75\r\n");
  CHECK(cmp.same({"SMEMBERS", "s"}) == "*1\r\n$1\r\nm\r\n");
  CHECK(cmp.same({"CLIENT", "GETNAME"}) == "$-1\r\n");
  CHECK(cmp.same({"MGET", k0, n0}) == "*2\r\n$-1\r\n$-1\r\n");
  CHECK(starts_with(cmp.same({"INFO", "keyspace"}), "$"));

  // And to RESP3 once more, on the same connection.
  CHECK(cmp.hello({"HELLO", "3"}).type == Reply::Type::kMap);
  CHECK(cmp.same({"HGETALL", "h"}) == "%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n");

  // RESET also returns to RESP2.
  CHECK(cmp.same({"RESET"}) == "+RESET\r\n");
  CHECK(cmp.same({"GET", "missing"}) == "$-1\r\n");
  CHECK(cmp.same({"HGETALL", "h"}) == "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n");
}

TEST_CASE("RESP3: blocking commands on a RESP3 connection reply as redis-server does",
          "[integration][issue3][resp3]") {
  Cluster cluster;
  RedisServer reference;
  RawCompare cmp(reference.port(), cluster.port());
  cmp.hello({"HELLO", "3"});
  CHECK(cmp.same({"BLPOP", "nolist", "0.05"}) == "_\r\n");
  cmp.same({"RPUSH", "list", "a"});
  CHECK(cmp.same({"BLPOP", "list", "0"}) == "*2\r\n$4\r\nlist\r\n$1\r\na\r\n");
  cmp.same({"ZADD", "zs", "1", "x"});
  cmp.same({"BZPOPMIN", "zs", "0"});
  cmp.same({"XADD", "xs", "1-1", "f", "v"});
  cmp.same({"XREAD", "BLOCK", "50", "STREAMS", "xs", "0"});
  CHECK(cmp.same({"XREAD", "BLOCK", "50", "STREAMS", "xs", "$"}) == "_\r\n");
  CHECK(cmp.same({"WAIT", "0", "0"}) == ":0\r\n");
  CHECK(cmp.same({"GET", "missing"}) == "_\r\n");  // still RESP3 after the dedicated connections

  // Back to RESP2: blocking replies are RESP2 again (connections of the right protocol).
  cmp.hello({"HELLO", "2"});
  CHECK(cmp.same({"BLPOP", "nolist", "0.05"}) == "*-1\r\n");
  CHECK(cmp.same({"XREAD", "BLOCK", "50", "STREAMS", "xs", "$"}) == "*-1\r\n");
  cmp.same({"RPUSH", "list", "b"});
  CHECK(cmp.same({"BLPOP", "list", "0"}) == "*2\r\n$4\r\nlist\r\n$1\r\nb\r\n");

  // A protocol switch pipelined behind a blocking command waits for it.
  RawConn conn(cluster.port());
  REQUIRE(conn.send(encode_command({"BLPOP", "nolist", "0.1"}) + encode_command({"HELLO", "3"}) +
                    encode_command({"GET", "missing"}) +
                    encode_command({"BLPOP", "nolist", "0.1"}) + encode_command({"HELLO", "2"}) +
                    encode_command({"GET", "missing"})));
  CHECK(or_none(conn.read_raw_reply(5s)) == "*-1\r\n");
  CHECK(or_none(conn.read_reply(5s)).type == Reply::Type::kMap);
  CHECK(or_none(conn.read_raw_reply(5s)) == "_\r\n");
  CHECK(or_none(conn.read_raw_reply(5s)) == "_\r\n");
  CHECK(or_none(conn.read_reply(5s)).type == Reply::Type::kArray);
  CHECK(or_none(conn.read_raw_reply(5s)) == "$-1\r\n");
}

TEST_CASE("RESP3: HELLO 3 pipelined after requests to every backend waits for their replies",
          "[integration][issue3][resp3]") {
  Cluster cluster;
  constexpr size_t kPerBackend = 8;
  std::vector<std::string> keys;
  for (size_t b = 0; b < cluster.size(); ++b)
    for (size_t i = 0; i < kPerBackend; ++i) keys.push_back(cluster.key_on(b, "hp", i));

  // Several rounds on fresh connections: an overtaking RESP3 connection is a race.
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    RawConn conn(cluster.port());
    std::string payload;
    for (size_t i = 0; i < keys.size(); ++i)
      payload +=
          encode_command({"SET", keys[i], "r" + std::to_string(round) + "-" + std::to_string(i)});
    payload += encode_command({"HELLO", "3"});
    for (const auto& k : keys) payload += encode_command({"GET", k});
    payload += encode_command({"HGETALL", "hp:nohash"});
    payload += encode_command({"GET", "hp:missing"});
    payload += encode_command({"PING"});
    REQUIRE(conn.send(payload));

    for (size_t i = 0; i < keys.size(); ++i) {
      auto r = conn.read_raw_reply(5s);
      REQUIRE(r);
      CHECK(*r == "+OK\r\n");
    }
    const Reply hello = or_none(conn.read_reply(5s));
    REQUIRE(hello.type == Reply::Type::kMap);
    CHECK(hello_fields(hello)["proto"] == Reply::integer_(3));
    for (size_t i = 0; i < keys.size(); ++i) {
      INFO("GET " << keys[i]);
      CHECK(or_none(conn.read_reply(5s)) ==
            Reply::string("r" + std::to_string(round) + "-" + std::to_string(i)));
    }
    CHECK(or_none(conn.read_raw_reply(5s)) == "%0\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "_\r\n");
    CHECK(or_none(conn.read_raw_reply(5s)) == "+PONG\r\n");
  }
}

TEST_CASE("RESP3: a long pipeline switching protocols back and forth keeps order",
          "[integration][issue3][resp3]") {
  Cluster cluster;
  constexpr int kKeys = 300;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("sw:" + std::to_string(i));
  std::string payload;
  size_t expected_replies = 0;
  for (int phase = 0; phase < 4; ++phase) {
    for (int i = 0; i < kKeys; ++i) {
      payload += encode_command({"SET", keys[i], std::to_string(phase * kKeys + i)});
      payload += encode_command({"GET", keys[i]});
    }
    payload += encode_command({"HELLO", phase % 2 == 0 ? "3" : "2"});
    payload += encode_command({"GET", "sw:missing"});
    expected_replies += 2 * kKeys + 2;
  }
  const auto replies = pipeline_raw(cluster.port(), payload, expected_replies, 30s);
  REQUIRE(replies.size() == expected_replies);
  size_t at = 0;
  for (int phase = 0; phase < 4; ++phase) {
    INFO("phase " << phase);
    for (int i = 0; i < kKeys; ++i) {
      CHECK(replies[at++].is_ok());
      CHECK(replies[at++] == Reply::string(std::to_string(phase * kKeys + i)));
    }
    const Reply& hello = replies[at++];
    CHECK(hello.type == (phase % 2 == 0 ? Reply::Type::kMap : Reply::Type::kArray));
    CHECK(hello_fields(hello)["proto"] == Reply::integer_(phase % 2 == 0 ? 3 : 2));
    CHECK(replies[at++].is_nil());
  }
}

TEST_CASE("RESP3: HELLO 3 AUTH default <pw> SETNAME with a password configured",
          "[integration][issue3][resp3]") {
  const std::string password = "s3cret-pw";
  ClusterOptions options;
  options.extra_yaml = "password: " + password + "\n";
  Cluster cluster(options);
  RedisOptions reference_options;
  reference_options.password = password;
  RedisServer reference(reference_options);

  {
    RawCompare cmp(reference.port(), cluster.port());
    cmp.same_error({"GET", "k"});
    cmp.same_error({"HELLO", "3"});
    cmp.same_error({"HELLO", "3", "AUTH", "default", "wrong"});
    cmp.same_error({"HELLO", "3", "AUTH", "nosuchuser", password});
    cmp.same_error({"HELLO", "3", "AUTH", "default"});
    cmp.same_error({"GET", "k"});  // still not authenticated

    const Reply hello = cmp.hello({"HELLO", "3", "AUTH", "default", password, "SETNAME", "n1"});
    CHECK(hello.type == Reply::Type::kMap);
    CHECK(hello_fields(hello)["proto"] == Reply::integer_(3));
    CHECK(cmp.same({"CLIENT", "GETNAME"}) == "$2\r\nn1\r\n");
    CHECK(cmp.same({"GET", "k"}) == "_\r\n");
    cmp.same({"HSET", "h", "f", "v"});
    CHECK(cmp.same({"HGETALL", "h"}) == "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");

    // CLIENT INFO describes this connection: named, RESP3.
    const Reply info = parse_raw(raw_call(cmp.proxy(), {"CLIENT", "INFO"}));
    INFO(info);
    CHECK(info.str.find(" name=n1 ") != std::string::npos);
    CHECK(info.str.find(" resp=3") != std::string::npos);
  }
  {
    // HELLO 2 with AUTH authenticates without switching to RESP3.
    RawCompare cmp(reference.port(), cluster.port());
    const Reply hello = cmp.hello({"HELLO", "2", "AUTH", "default", password});
    CHECK(hello.type == Reply::Type::kArray);
    CHECK(cmp.same({"GET", "k"}) == "$-1\r\n");
    CHECK(cmp.same({"HGETALL", "h"}) == "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
  }
}

TEST_CASE("RESP3: HELLO with a bad protocol version or options", "[integration][issue3][resp3]") {
  Cluster cluster;
  RedisServer reference;
  RawCompare cmp(reference.port(), cluster.port());
  CHECK(cmp.same_error({"HELLO", "4"}) == "-NOPROTO unsupported protocol version\r\n");
  CHECK(cmp.same_error({"HELLO", "1"}) == "-NOPROTO unsupported protocol version\r\n");
  CHECK(cmp.same_error({"HELLO", "abc"}) ==
        "-ERR Protocol version is not an integer or out of range\r\n");
  cmp.same_error({"HELLO", "3", "SETNAME"});
  cmp.same_error({"HELLO", "3", "NOSUCHOPTION"});
  cmp.same_error({"HELLO", "3", "SETNAME", "bad name"});
  // None of these switched the protocol.
  CHECK(cmp.same({"GET", "missing"}) == "$-1\r\n");
  CHECK(cmp.same({"HGETALL", "missing"}) == "*0\r\n");
  // Without a configured password the default user takes any password, as in Redis; other
  // users do not exist.
  cmp.same_error({"HELLO", "3", "AUTH", "nosuchuser", "pw"});
  CHECK(cmp.same({"GET", "missing"}) == "$-1\r\n");
  CHECK(cmp.hello({"HELLO", "3", "AUTH", "default", "anything"}).type == Reply::Type::kMap);
  CHECK(cmp.same({"GET", "missing"}) == "_\r\n");
}

TEST_CASE("RESP3: a full SCAN iteration on a RESP3 connection", "[integration][issue3][resp3]") {
  Cluster cluster;
  std::string payload;
  std::set<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    expected.insert("r3scan:" + std::to_string(i));
    payload += encode_command({"SET", "r3scan:" + std::to_string(i), "v"});
  }
  REQUIRE(pipeline_raw(cluster.port(), payload, expected.size()).size() == expected.size());
  RawConn conn(cluster.port());
  REQUIRE(parse_raw(raw_call(conn, {"HELLO", "3"})).type == Reply::Type::kMap);
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    const Reply r = parse_raw(raw_call(conn, {"SCAN", cursor, "COUNT", "50"}));
    INFO("SCAN " << cursor << " -> " << r);
    REQUIRE(r.is_array());
    REQUIRE(r.elements.size() == 2);
    REQUIRE(r.elements[0].is_string());
    cursor = r.elements[0].str;
    for (const auto& e : r.elements[1].elements) seen.insert(e.str);
    REQUIRE(++calls < 10000);
  } while (cursor != "0");
  CHECK(seen == expected);
}

TEST_CASE("RESP3: redis-cli -3 prints what it prints against redis-server",
          "[integration][issue3][resp3][redis-cli]") {
  Cluster cluster;
  RedisServer reference;
  for (uint16_t port : {reference.port(), cluster.port()}) {
    Client c(port);
    REQUIRE(c("HSET", "h", "f", "v", "g", "w") == Reply::integer_(2));
    REQUIRE(c("ZADD", "z", "1.5", "a") == Reply::integer_(1));
  }
  auto run = [](uint16_t port, std::vector<std::string> args, const std::string& input) {
    args.insert(args.begin(), {"-3", "-p", std::to_string(port)});
    return run_redis_cli(args, input);
  };
  const std::vector<std::vector<std::string>> invocations = {
      {"HGETALL", "h"},
      {"--no-raw", "HGETALL", "h"},
      {"--no-raw", "ZSCORE", "z", "a"},
      {"--no-raw", "GET", "missing"},
  };
  for (const auto& args : invocations) {
    const ProcessResult expected = run(reference.port(), args, "");
    const ProcessResult actual = run(cluster.port(), args, "");
    INFO("redis-cli -3 " << show(args) << "\nredis-server:\n"
                         << expected.out << "\nlockstep:\n"
                         << actual.out << actual.err);
    REQUIRE(expected.exit_code == 0);
    CHECK(actual.exit_code == 0);
    CHECK(actual.out == expected.out);
  }
  // A scripted session on one connection.
  const std::string script = "HGETALL h\nGET missing\nZRANGE z 0 -1 WITHSCORES\nSMEMBERS h\n";
  const ProcessResult expected = run(reference.port(), {"--no-raw"}, script);
  const ProcessResult actual = run(cluster.port(), {"--no-raw"}, script);
  INFO("redis-server:\n" << expected.out << "\nlockstep:\n" << actual.out << actual.err);
  CHECK(actual.exit_code == 0);
  CHECK(actual.out == expected.out);
  CHECK_THAT(actual.out, Catch::StartsWith("1# \"f\" => \"v\"\n2# \"g\" => \"w\"\n"));
}
