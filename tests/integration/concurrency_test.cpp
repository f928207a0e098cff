// Many clients at once (spread over the workers), and large values: replies stay matched to
// their requests.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("concurrent clients with mixed pipelines get their own replies",
          "[integration][concurrency]") {
  Cluster cluster;
  const int kThreads = 8, kRounds = 150;
  std::vector<std::vector<std::string>> failures(kThreads);  // Catch2 asserts are not thread-safe
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Client c = cluster.client();
        auto fail = [&](const std::string& what) {
          if (failures[t].size() < 5) failures[t].push_back(what);
        };
        for (int i = 0; i < kRounds && failures[t].empty(); ++i) {
          const std::string a = "conc:" + std::to_string(t) + ":" + std::to_string(i);
          const std::string b = "conc:" + std::to_string(t) + ":x" + std::to_string(i);
          auto r = c.pipeline({{"SET", a, a},
                               {"MSET", b, b, a, a + "!"},
                               {"MGET", a, "conc:missing", b},
                               {"INCR", "conc:shared"},
                               {"EXISTS", a, b, "conc:missing"},
                               {"DEL", a, b},
                               {"PING", a}});
          if (r.size() != 7 || !r[0].is_ok() || !r[1].is_ok() ||
              r[2] != Reply::array({Reply::string(a + "!"), Reply::nil(), Reply::string(b)}) ||
              !r[3].is_integer() || r[4] != Reply::integer_(2) || r[5] != Reply::integer_(2) ||
              r[6] != Reply::string(a)) {
            std::string all;
            for (const auto& x : r) all += x.to_string() + " | ";
            fail("thread " + std::to_string(t) + " round " + std::to_string(i) + ": " + all);
          }
        }
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    for (const auto& f : failures[t]) FAIL_CHECK(f);
  }
  Client c = cluster.client();
  CHECK(c("GET", "conc:shared") == Reply::string(std::to_string(kThreads * kRounds)));
  CHECK(c("DBSIZE") == Reply::integer_(1));
}

TEST_CASE("many short-lived connections", "[integration][concurrency]") {
  Cluster cluster;
  for (int i = 0; i < 300; ++i) {
    Client c = cluster.client();
    REQUIRE(c("INCR", "shortlived") == Reply::integer_(i + 1));
  }
  CHECK(cluster.proxy().running());
}

TEST_CASE("large values pass through intact", "[integration][concurrency]") {
  Cluster cluster;
  RedisServer reference;
  Client c = cluster.client(30s);
  Client ref = reference.client(30s);
  std::string big(4 * 1024 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
  const std::string k0 = cluster.key_on(0, "large"), k1 = cluster.key_on(1, "large"),
                    k2 = cluster.key_on(2, "large");
  REQUIRE(c("SET", k0, big).is_ok());
  CHECK(c("GET", k0) == Reply::string(big));
  CHECK(c("STRLEN", k0) == Reply::integer_(static_cast<long long>(big.size())));
  const std::string mb(1024 * 1024, 'm');
  REQUIRE(c("MSET", k1, mb + "1", k2, mb + "2", k0, mb + "0").is_ok());
  CHECK(c("MGET", k2, k1, "large:none", k0) ==
        Reply::array({Reply::string(mb + "2"), Reply::string(mb + "1"), Reply::nil(),
                      Reply::string(mb + "0")}));
  // A big list reply assembled from many elements.
  std::vector<std::string> rpush{"RPUSH", k1 + "l"};
  for (int i = 0; i < 20000; ++i) rpush.push_back("element-" + std::to_string(i));
  CHECK(c.command(rpush) == ref.command(rpush));
  CHECK(c("LRANGE", k1 + "l", "0", "-1") == ref("LRANGE", k1 + "l", "0", "-1"));

  // Pipelined big values on every backend.
  std::string payload;
  const std::string v(256 * 1024, 'p');
  for (int i = 0; i < 30; ++i) {
    const std::string key = "largepipe:" + std::to_string(i);
    payload += encode_command({"SET", key, v + std::to_string(i)});
    payload += encode_command({"GET", key});
  }
  auto replies = pipeline_raw(cluster.port(), payload, 60, 60s);
  REQUIRE(replies.size() == 60);
  for (int i = 0; i < 30; ++i) {
    INFO("key " << i);
    CHECK(replies[2 * i].is_ok());
    CHECK(replies[2 * i + 1] == Reply::string(v + std::to_string(i)));
  }
}
