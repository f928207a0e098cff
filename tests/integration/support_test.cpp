// Self-tests of the harness against plain redis-server (no lockstep involved), so a broken
// harness is told apart from a broken proxy.
#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("slot_of matches redis-server CLUSTER KEYSLOT", "[integration][support]") {
  RedisOptions options;
  options.extra_args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"};
  RedisServer cluster_node(options);
  Client c = cluster_node.client();
  const std::vector<std::string> keys = {"foo",
                                         "bar",
                                         "hello",
                                         "",
                                         "{user1000}.following",
                                         "{user1000}.followers",
                                         "user1000",
                                         "{}foo",
                                         "foo{}{bar}",
                                         "foo{{bar}}zap",
                                         "foo{bar}{zap}",
                                         "{",
                                         "}{a}",
                                         "a{b",
                                         "\xff\x00\x10 binary"};
  for (const auto& key : keys) {
    INFO("key " << Reply::string(key));
    Reply r = c("CLUSTER", "KEYSLOT", key);
    REQUIRE(r.is_integer());
    CHECK(slot_of(key) == r.integer);
  }
  for (int i = 0; i < 500; ++i) {
    std::string key = "key:" + std::to_string(i * 7919);
    Reply r = c("CLUSTER", "KEYSLOT", key);
    REQUIRE(r.is_integer());
    REQUIRE(slot_of(key) == r.integer);
  }
  CHECK(slot_of("foo") == 12182);
  CHECK(slot_of("{user1000}.following") == slot_of("{user1000}.followers"));
  CHECK(hash_tag("foo{{bar}}zap") == "{bar");
}

TEST_CASE("default slot layout: contiguous ranges by integer division", "[integration][support]") {
  CHECK(owner_of_slot(0, 3) == 0);
  CHECK(owner_of_slot(5460, 3) == 0);
  CHECK(owner_of_slot(5461, 3) == 1);
  CHECK(owner_of_slot(10921, 3) == 1);
  CHECK(owner_of_slot(10922, 3) == 2);
  CHECK(owner_of_slot(16383, 3) == 2);
  CHECK(owner_of_slot(8191, 2) == 0);
  CHECK(owner_of_slot(8192, 2) == 1);
  CHECK(owner_of_slot(16383, 1) == 0);
  for (size_t b = 0; b < 3; ++b) {
    for (size_t i = 0; i < 5; ++i) CHECK(owner_of(key_on(b, 3, "k", i), 3) == b);
  }
}

TEST_CASE("RedisServer lifecycle: stop, restart, pause, kill9, appendonly",
          "[integration][support]") {
  RedisOptions options;
  options.appendonly = true;
  RedisServer r(options);
  const uint16_t port = r.port();
  {
    Client c = r.client();
    REQUIRE(c("SET", "persist", "yes").is_ok());
  }
  r.restart();
  CHECK(r.port() == port);
  {
    Client c = r.client();
    CHECK(c("GET", "persist") == Reply::string("yes"));  // AOF replayed
  }
  r.pause();
  {
    Client c(port, 300ms);
    Reply reply = c("PING");
    CHECK(reply.is_io_error());  // stopped: no answer within the timeout
  }
  r.resume();
  CHECK(wait_until([&] { return r.client(500ms)("PING") == Reply::status("PONG"); }, 5s));
  r.kill9();
  CHECK_FALSE(r.running());
  CHECK_FALSE(RawConn::try_connect(port, 500ms).has_value());
  r.restart();
  CHECK(r.client()("PING") == Reply::status("PONG"));
}

TEST_CASE("Client, RawConn and the RESP parser agree with redis-server", "[integration][support]") {
  RedisServer r;
  Client c = r.client();
  CHECK(c("SET", "k", "v\r\nwith crlf") == Reply::status("OK"));
  CHECK(c("GET", "k") == Reply::string("v\r\nwith crlf"));
  CHECK(c("GET", "missing").is_nil());
  CHECK(c("INCR", "n") == Reply::integer_(1));
  CHECK(c("GET").error_starts_with("ERR wrong number of arguments"));
  CHECK(c("RPUSH", "l", "a", "b") == Reply::integer_(2));
  CHECK(c("LRANGE", "l", "0", "-1") == Reply::strings({"a", "b"}));

  auto replies = c.pipeline({{"PING"}, {"ECHO", "x"}, {"INCR", "n"}});
  REQUIRE(replies.size() == 3);
  CHECK(replies[0] == Reply::status("PONG"));
  CHECK(replies[1] == Reply::string("x"));
  CHECK(replies[2] == Reply::integer_(2));

  RawConn raw(r.port());
  REQUIRE(raw.send(encode_command({"LRANGE", "l", "0", "-1"}) + "PING\r\n"));
  auto a = raw.read_reply(2s);
  REQUIRE(a);
  CHECK(*a == Reply::strings({"a", "b"}));
  CHECK(or_none(raw.read_line(2s)) == "+PONG\r\n");

  // RESP3 through the raw parser.
  REQUIRE(raw.send(encode_command({"HELLO", "3"})));
  auto hello = raw.read_reply(2s);
  REQUIRE(hello);
  CHECK(hello->type == Reply::Type::kMap);
  REQUIRE(raw.send(encode_command({"HGETALL", "nohash"})));
  auto empty_map = raw.read_reply(2s);
  REQUIRE(empty_map);
  CHECK(empty_map->type == Reply::Type::kMap);

  REQUIRE(raw.send(encode_command({"QUIT"})));
  CHECK(or_none(raw.read_line(2s)) == "+OK\r\n");
  CHECK(raw.closed_by_peer(2s));

  std::string payload;
  for (int i = 0; i < 20000; ++i) payload += encode_command({"INCR", "p"});
  auto many = pipeline_raw(r.port(), payload, 20000);
  REQUIRE(many.size() == 20000);
  CHECK(many.back() == Reply::integer_(20000));
}

TEST_CASE("run_redis_cli captures output", "[integration][support]") {
  RedisServer r;
  auto res = run_redis_cli({"-p", std::to_string(r.port()), "--no-raw"}, "SET a 1\nGET a\n");
  CHECK(res.exit_code == 0);
  CHECK(res.out == "OK\n\"1\"\n");
}
