// SIGTERM: stop accepting, finish what clients already sent, exit 0 within shutdown_ms.
#include <csignal>
#include <thread>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

constexpr int kShutdownMs = 5000;

ClusterOptions shutdown_options(const std::string& more = {}) {
  ClusterOptions o;
  o.extra_yaml = "timeouts:\n  shutdown_ms: " + std::to_string(kShutdownMs) + "\n" + more;
  return o;
}

bool refuses_connections(uint16_t port) {
  return !RawConn::try_connect(port, 300ms).has_value();
}

}  // namespace

TEST_CASE("SIGTERM drains a large pipeline and exits 0", "[integration][shutdown]") {
  Cluster cluster(shutdown_options());
  const uint16_t port = cluster.port();
  const int kCommands = 50000;
  std::string payload;
  for (int i = 0; i < kCommands; ++i) {
    payload += encode_command({"SET", "drain:" + std::to_string(i), std::to_string(i)});
  }
  RawConn conn(port);
  bool sent = false;
  {
    std::jthread writer([&] { sent = conn.send(payload, 30s); });
  }  // joined: every byte is in the socket
  REQUIRE(sent);

  const auto signalled = Clock::now();
  cluster.proxy().signal(SIGTERM);
  CHECK(wait_until([&] { return refuses_connections(port); }, 2s, 10ms));

  int ok = 0;
  const auto deadline = signalled + Millis(kShutdownMs + 3000);
  while (ok < kCommands) {
    auto r = conn.read_reply(std::chrono::duration_cast<Millis>(deadline - Clock::now()));
    if (!r) break;
    if (!r->is_ok()) {
      INFO("reply #" << ok << ": " << *r);
      CHECK(false);
      break;
    }
    ++ok;
  }
  INFO("replies after SIGTERM: " << ok << " of " << kCommands << ", " << elapsed_ms(signalled)
                                 << " ms");
  CHECK(ok == kCommands);
  CHECK(conn.closed_by_peer(Millis(kShutdownMs + 2000)));
  auto code = cluster.proxy().wait_exit(Millis(kShutdownMs + 3000));
  const auto exit_ms = elapsed_ms(signalled);
  INFO("exit after " << exit_ms << " ms");
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(exit_ms < kShutdownMs + 3000);

  // What was acknowledged is really stored.
  long long total = 0;
  for (size_t b = 0; b < 3; ++b) total += cluster.direct(b)("DBSIZE").integer;
  CHECK(total == kCommands);
}

TEST_CASE("SIGTERM waits for requests held up by a slow backend", "[integration][shutdown]") {
  Cluster cluster(shutdown_options("  request_ms: 10000\n"));
  const int kCommands = 5000;
  std::string payload;
  for (int i = 0; i < kCommands; ++i) {
    payload += encode_command({"INCR", "slow:" + std::to_string(i % 30)});
  }
  cluster.backend(1).pause();  // every key on backend 1 waits
  RawConn conn = cluster.raw();
  REQUIRE(conn.send(payload));
  // The proxy has read at least the start of the batch once it answers something (replies for
  // backends 0 and 2 can only come after the first request for backend 1 in order).
  Client probe = cluster.client();
  REQUIRE(probe("PING") == Reply::status("PONG"));
  const auto signalled = Clock::now();
  cluster.proxy().signal(SIGTERM);
  CHECK(wait_until([&] { return refuses_connections(cluster.port()); }, 2s, 10ms));
  // Keep the backend stopped for a while: the proxy must wait for it, not exit.
  std::this_thread::sleep_for(500ms);
  CHECK(cluster.proxy().running());
  cluster.backend(1).resume();

  std::vector<long long> counts(30, 0);
  int good = 0;
  for (int i = 0; i < kCommands; ++i) {
    auto r = conn.read_reply(
        std::chrono::duration_cast<Millis>(signalled + Millis(kShutdownMs + 3000) - Clock::now()));
    if (!r) break;
    if (*r != Reply::integer_(++counts[i % 30])) {
      INFO("reply #" << i << ": " << *r);
      CHECK(false);
      break;
    }
    ++good;
  }
  INFO("good replies: " << good << " of " << kCommands << " after " << elapsed_ms(signalled)
                        << " ms");
  CHECK(good == kCommands);
  auto code = cluster.proxy().wait_exit(Millis(kShutdownMs + 3000));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(elapsed_ms(signalled) < kShutdownMs + 3000);
}

TEST_CASE("SIGTERM with idle clients exits 0 promptly and closes them", "[integration][shutdown]") {
  Cluster cluster(shutdown_options());
  RawConn idle1 = cluster.raw();
  RawConn idle2 = cluster.raw();
  REQUIRE(idle2.send("PING\r\n"));
  REQUIRE(or_none(idle2.read_line(3s)) == "+PONG\r\n");
  const auto start = Clock::now();
  cluster.proxy().signal(SIGTERM);
  auto code = cluster.proxy().wait_exit(Millis(kShutdownMs + 3000));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(elapsed_ms(start) < 2000);  // nothing in flight: no reason to wait for shutdown_ms
  CHECK(idle1.closed_by_peer(2s));
  CHECK(idle2.closed_by_peer(2s));
}

TEST_CASE("SIGTERM exits within shutdown_ms even if a backend never answers",
          "[integration][shutdown]") {
  ClusterOptions o;
  o.extra_yaml = "timeouts:\n  shutdown_ms: 1000\n  request_ms: 30000\n";
  Cluster cluster(o);
  const std::string stuck_key = cluster.key_on(1, "stuck");
  Client c = cluster.client();
  REQUIRE(c("SET", stuck_key, "v").is_ok());
  cluster.backend(1).pause();
  RawConn conn = cluster.raw();
  REQUIRE(conn.send(encode_command({"GET", stuck_key})));
  // Whether or not the GET has reached the stopped backend when SIGTERM lands, it cannot
  // complete: the proxy must give up on it after shutdown_ms.
  REQUIRE(c("PING") == Reply::status("PONG"));
  const auto start = Clock::now();
  cluster.proxy().signal(SIGTERM);
  auto code = cluster.proxy().wait_exit(5s);
  const auto ms = elapsed_ms(start);
  INFO("exit code " << (code ? std::to_string(*code) : "none") << " after " << ms << " ms");
  REQUIRE(code.has_value());
  CHECK(ms < 1000 + 2000);
  CHECK(conn.closed_by_peer(2s));
  cluster.backend(1).resume();
}
