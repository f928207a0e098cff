// A backend that dies or hangs fails only the requests for its slots, promptly, and is used
// again once it is back.
#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

constexpr int kRequestMs = 1000;

ClusterOptions fast_timeouts() {
  ClusterOptions o;
  o.extra_yaml =
      "timeouts:\n"
      "  connect_ms: 300\n"
      "  request_ms: 1000\n"
      "  backend_retry_max_ms: 500\n";
  return o;
}

bool is_backend_unavailable(const Reply& r) {
  return r.error_starts_with("ERR backend") && r.str.find("unavailable") != std::string::npos;
}

}  // namespace

TEST_CASE("a killed backend fails its keys promptly; the others keep working",
          "[integration][failure]") {
  Cluster cluster(fast_timeouts());
  Client c = cluster.client();
  const std::string k0 = cluster.key_on(0, "f"), k1 = cluster.key_on(1, "f"),
                    k2 = cluster.key_on(2, "f");
  for (const auto& k : {k0, k1, k2}) REQUIRE(c("SET", k, "before").is_ok());

  cluster.backend(1).kill9();

  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto start = Clock::now();
    Reply r = c("GET", k1);
    const auto ms = elapsed_ms(start);
    INFO("attempt " << attempt << ": " << r << " after " << ms << " ms");
    CHECK(is_backend_unavailable(r));
    CHECK(ms < kRequestMs + 1500);
  }
  {
    const auto start = Clock::now();
    Reply r = c("SET", k1, "during");
    INFO(r << " after " << elapsed_ms(start) << " ms");
    CHECK(is_backend_unavailable(r));
    CHECK(elapsed_ms(start) < kRequestMs + 1500);
  }
  // Other backends are unaffected, on the same connection and on new ones.
  CHECK(c("GET", k0) == Reply::string("before"));
  CHECK(c("GET", k2) == Reply::string("before"));
  CHECK(c("SET", k2, "during").is_ok());
  Client fresh = cluster.client();
  CHECK(fresh("GET", k0) == Reply::string("before"));
  CHECK(fresh("PING") == Reply::status("PONG"));

  // A pipeline mixing dead and live backends: one reply each, in order.
  auto replies = c.pipeline({{"GET", k0}, {"GET", k1}, {"GET", k2}, {"PING"}});
  REQUIRE(replies.size() == 4);
  CHECK(replies[0] == Reply::string("before"));
  CHECK(is_backend_unavailable(replies[1]));
  CHECK(replies[2] == Reply::string("during"));
  CHECK(replies[3] == Reply::status("PONG"));

  cluster.backend(1).restart();  // empty: no persistence
  bool back = wait_until([&] { return c("SET", k1, "after").is_ok(); }, 10s, 50ms);
  INFO("last reply: " << c("GET", k1));
  CHECK(back);
  CHECK(c("GET", k1) == Reply::string("after"));
  CHECK(cluster.direct(1)("GET", k1) == Reply::string("after"));
  CHECK(cluster.proxy().running());
}

TEST_CASE("a backend that stops answering fails its requests within request_ms",
          "[integration][failure]") {
  Cluster cluster(fast_timeouts());
  Client c = cluster.client();
  const std::string k0 = cluster.key_on(0, "h"), k2 = cluster.key_on(2, "h");
  REQUIRE(c("SET", k0, "v").is_ok());
  REQUIRE(c("SET", k2, "v").is_ok());

  cluster.backend(2).pause();
  RawConn stuck = cluster.raw();
  const auto start = Clock::now();
  REQUIRE(stuck.send(encode_command({"GET", k2})));

  // Meanwhile another connection to a live backend is not held up.
  Client other = cluster.client();
  const auto t0 = Clock::now();
  CHECK(other("GET", k0) == Reply::string("v"));
  CHECK(elapsed_ms(t0) < 500);

  auto r = stuck.read_reply(Millis(kRequestMs + 3000));
  const auto ms = elapsed_ms(start);
  REQUIRE(r);
  INFO(*r << " after " << ms << " ms");
  CHECK(r->is_error());
  CHECK(ms < kRequestMs + 2000);
  CHECK(ms >= kRequestMs / 2);  // it did wait for the backend for a while

  cluster.backend(2).resume();
  CHECK(wait_until([&] { return c("GET", k2) == Reply::string("v"); }, 10s, 50ms));
  CHECK(c("GET", k0) == Reply::string("v"));
}

TEST_CASE("lockstep starts while a backend is down and uses it once it is up",
          "[integration][failure]") {
  RedisServer up;
  RedisServer later;
  const std::string later_address = later.address();
  later.kill9();
  LockstepOptions lo;
  lo.extra_yaml = fast_timeouts().extra_yaml;
  LockstepProcess proxy({up.address(), later_address}, lo);
  Client c = proxy.client();
  const std::string on_up = key_on(0, 2, "d"), on_later = key_on(1, 2, "d");
  CHECK(c("SET", on_up, "v").is_ok());
  Reply r = c("SET", on_later, "v");
  INFO(r);
  CHECK(is_backend_unavailable(r));
  later.restart();
  CHECK(wait_until([&] { return c("SET", on_later, "v").is_ok(); }, 10s, 50ms));
  CHECK(later.client()("GET", on_later) == Reply::string("v"));
}

TEST_CASE("a reply arriving after request_ms is never given to a later request",
          "[integration][failure]") {
  Cluster cluster(fast_timeouts());
  Client c = cluster.client();
  const std::string k = cluster.key_on(2, "late"), counter = cluster.key_on(2, "late:counter");
  REQUIRE(c("SET", k, "v0").is_ok());

  cluster.backend(2).pause();
  // Several requests time out while the backend is stopped; the backend runs them (and
  // answers) once it is resumed.
  auto timed_out = c.pipeline({{"SET", k, "late"}, {"INCR", counter}, {"SET", k, "later"}});
  for (const auto& r : timed_out) {
    INFO(r);
    CHECK(r.is_error());
  }
  cluster.backend(2).resume();
  // Wait for the backend to serve again, then check that every reply belongs to its request.
  REQUIRE(wait_until([&] { return !c("GET", k).is_error(); }, 10s, 50ms));
  const std::string fresh = cluster.key_on(2, "late:fresh");
  for (int i = 1; i <= 20; ++i) {
    Reply get = c("GET", k);
    INFO("round " << i << ": GET -> " << get);
    CHECK(get.is_string());
    Reply incr = c("INCR", fresh);
    INFO("INCR -> " << incr);
    REQUIRE(incr == Reply::integer_(i));
  }
  CHECK(c("DEL", fresh) == Reply::integer_(1));
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("a client leaving with requests in flight does not shift replies for others",
          "[integration][failure]") {
  Cluster cluster(fast_timeouts());
  const std::string k = cluster.key_on(1, "gone"), counter = cluster.key_on(1, "gone:n");
  Client c = cluster.client();
  REQUIRE(c("SET", k, "mine").is_ok());
  cluster.backend(1).pause();
  {
    RawConn leaver = cluster.raw();
    std::string payload;
    for (int i = 0; i < 20; ++i) {
      payload += encode_command({"GET", k});
      payload += encode_command({"INCR", "gone:other"});
    }
    REQUIRE(leaver.send(payload));
    // Give the proxy the requests before leaving: a request it has read is in flight.
    Client probe = cluster.client();
    REQUIRE(probe("PING") == Reply::status("PONG"));
  }  // closed with replies pending
  cluster.backend(1).resume();
  for (int i = 1; i <= 20; ++i) {
    Reply r = c("INCR", counter);
    INFO("round " << i << ": " << r);
    if (r.is_error()) {  // the backend connection may be re-established first
      REQUIRE(wait_until([&] { return !c("GET", k).is_error(); }, 10s, 50ms));
      r = c("INCR", counter);
    }
    REQUIRE(r.is_integer());
    CHECK(c("GET", k) == Reply::string("mine"));
  }
  CHECK(cluster.proxy().running());
}
