// Pipelining: replies come back complete and in request order, even when consecutive requests
// go to different backends.
#include <set>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("a 10,000-command pipeline over all backends answers in order",
          "[integration][pipeline]") {
  Cluster cluster;
  const int kRounds = 3333;  // SET + GET + INCR each, plus one final GET = 10,000 commands
  std::string payload;
  std::set<size_t> backends;
  for (int i = 0; i < kRounds; ++i) {
    const std::string key = "pipe:" + std::to_string(i);
    backends.insert(cluster.owner(key));
    payload += encode_command({"SET", key, "value-" + std::to_string(i)});
    payload += encode_command({"GET", key});
    payload += encode_command({"INCR", "pipe:counter"});
  }
  payload += encode_command({"GET", "pipe:counter"});
  REQUIRE(backends.size() == 3);

  const auto start = Clock::now();
  auto replies = pipeline_raw(cluster.port(), payload, 10000, 60s);
  INFO("elapsed ms: " << elapsed_ms(start));
  REQUIRE(replies.size() == 10000);
  int bad = 0;
  for (int i = 0; i < kRounds && bad < 5; ++i) {
    const Reply& set = replies[3 * i];
    const Reply& get = replies[3 * i + 1];
    const Reply& incr = replies[3 * i + 2];
    if (!set.is_ok() || get != Reply::string("value-" + std::to_string(i)) ||
        incr != Reply::integer_(i + 1)) {
      ++bad;
      INFO("round " << i << ": " << set << " / " << get << " / " << incr);
      CHECK(false);
    }
  }
  CHECK(bad == 0);
  CHECK(replies.back() == Reply::string(std::to_string(kRounds)));
  CHECK(cluster.client()("DBSIZE") == Reply::integer_(kRounds + 1));
}

TEST_CASE("hiredis pipelining with mixed routes", "[integration][pipeline]") {
  Cluster cluster;
  Client c = cluster.client();
  std::vector<std::vector<std::string>> commands;
  std::vector<Reply> expected;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "hp:" + std::to_string(i);
    commands.push_back({"SET", k, std::to_string(i)});
    expected.push_back(Reply::status("OK"));
    // Local, fan-out and split commands interleaved with keyed ones.
    switch (i % 5) {
      case 0:
        commands.push_back({"PING"});
        expected.push_back(Reply::status("PONG"));
        break;
      case 1:
        commands.push_back({"MGET", k, "hp:missing", k});
        expected.push_back(Reply::array(
            {Reply::string(std::to_string(i)), Reply::nil(), Reply::string(std::to_string(i))}));
        break;
      case 2:
        commands.push_back({"DBSIZE"});
        expected.push_back(Reply::integer_(i + 1));
        break;
      case 3:
        commands.push_back({"ECHO", k});
        expected.push_back(Reply::string(k));
        break;
      default:
        commands.push_back({"EXISTS", k, "hp:0", "hp:missing"});
        expected.push_back(Reply::integer_(2));
        break;
    }
  }
  auto replies = c.pipeline(commands);
  REQUIRE(replies.size() == expected.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    INFO("command #" << i << ": " << commands[i][0]);
    REQUIRE(replies[i] == expected[i]);
  }
}
