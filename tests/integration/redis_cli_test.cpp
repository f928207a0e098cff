// The stock redis-cli works against Lockstep: scripted sessions and --pipe mass insertion.
#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("redis-cli scripted session matches redis-server", "[integration][redis-cli]") {
  Cluster cluster;
  RedisServer reference;
  const std::string script =
      "SET foo bar\n"
      "GET foo\n"
      "SET {x}1 one\n"
      "MSET a 1 b 2 c 3\n"
      "MGET foo nokey a b c\n"
      "INCR counter\n"
      "DEL foo a b c nokey\n"
      "GET foo\n"
      "RPUSH list x y z\n"
      "LRANGE list 0 -1\n"
      "HSET h f v\n"
      "HGETALL h\n"
      "PING\n"
      "ECHO \"hello world\"\n"
      "nosuchcommand arg\n";
  auto run = [&](uint16_t port) {
    return run_redis_cli({"-p", std::to_string(port), "--no-raw"}, script);
  };
  const ProcessResult expected = run(reference.port());
  const ProcessResult actual = run(cluster.port());
  INFO("redis-server stdout:\n"
       << expected.out << "\nlockstep stdout:\n"
       << actual.out << "\nlockstep stderr:\n"
       << actual.err);
  REQUIRE(expected.exit_code == 0);
  CHECK(actual.exit_code == 0);
  CHECK(actual.out == expected.out);
  CHECK_THAT(actual.out, Catch::StartsWith("OK\n\"bar\"\nOK\nOK\n1) \"bar\"\n2) (nil)\n"));

  // Command-line arguments instead of stdin.
  auto ping = run_redis_cli({"-p", std::to_string(cluster.port()), "PING"}, "");
  CHECK(ping.exit_code == 0);
  CHECK(ping.out == "PONG\n");
  auto get = run_redis_cli(
      {"-p", std::to_string(cluster.port()), "--no-raw", "LRANGE", "list", "0", "-1"}, "");
  CHECK(get.out == "1) \"x\"\n2) \"y\"\n3) \"z\"\n");
}

TEST_CASE("redis-cli --pipe mass insert of 10,000 SETs", "[integration][redis-cli]") {
  Cluster cluster;
  const int n = 10000;
  std::string input;
  for (int i = 0; i < n; ++i) {
    input += encode_command({"SET", "mass:" + std::to_string(i), "value:" + std::to_string(i)});
  }
  auto res = run_redis_cli({"-p", std::to_string(cluster.port()), "--pipe"}, input, 60s);
  INFO("stdout:\n" << res.out << "\nstderr:\n" << res.err);
  CHECK(res.exit_code == 0);
  CHECK_THAT(res.out, Catch::Contains("errors: 0, replies: 10000"));
  Client c = cluster.client();
  CHECK(c("DBSIZE") == Reply::integer_(n));
  CHECK(c("GET", "mass:9999") == Reply::string("value:9999"));
  long long total = 0;
  for (size_t b = 0; b < 3; ++b) {
    const long long size = cluster.direct(b)("DBSIZE").integer;
    CHECK(size > 0);
    total += size;
  }
  CHECK(total == n);
}
