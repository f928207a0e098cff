// transactions.isolation: what a plain command does while a cross-backend commit holds its key.
// A failpoint stalls the commit between prepare and commit point (keys locked), so the plain
// command is sure to arrive while the transaction is in flight.
#include <thread>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

struct Outcome {
  Reply plain;  // the plain command's reply
  std::string final_a;
};

// Client 1 runs MULTI SET a txn, SET b txn EXEC across two backends (stalled 800 ms after
// its prepare); client 2 then sends `plain` on key a.
Outcome race(const std::string& isolation, const std::vector<std::string>& plain) {
  ClusterOptions o;
  // The guarded command retries until the stalled commit finishes: a conflict timeout far
  // above the stall, so a slow machine cannot turn "waited" into -TXNCONFLICT.
  o.extra_yaml =
      "transactions:\n  backend_check: off\n  conflict_timeout_ms: 60000\n"
      "  isolation: " +
      isolation + "\n  failpoints: \"txn.after_prepare=stall:800\"\n";
  Cluster cluster(o);
  const std::string a = cluster.key_on(0, "iso"), b = cluster.key_on(1, "iso");
  Client setup = cluster.client();
  REQUIRE(setup("SET", a, "before").is_ok());
  Reply exec;
  std::thread t([&] {
    Client c = cluster.client();
    c.append({"MULTI"});
    c.append({"SET", a, "txn"});
    c.append({"SET", b, "txn"});
    c.append({"EXEC"});
    for (int i = 0; i < 3; ++i) c.read_reply();
    exec = c.read_reply();
  });
  // The transaction holds a's lock once its intent is on a's backend.
  Client direct = cluster.direct(0);
  REQUIRE(wait_until(
      [&] { return direct("EXISTS", "__lockstep:tx:lock:" + a) == Reply::integer_(1); }, 5s));
  std::vector<std::string> cmd = plain;
  for (auto& arg : cmd)
    if (arg == "$a") arg = a;
  Client c2 = cluster.client();
  Outcome out;
  out.plain = c2.command(cmd);
  t.join();
  REQUIRE(exec.is_array());
  out.final_a = setup("GET", a).str;
  return out;
}

}  // namespace

TEST_CASE("isolation none: a plain write lands while the commit is in flight",
          "[integration][txn][isolation]") {
  const Outcome o = race("none", {"SET", "$a", "plain"});
  CHECK(o.plain.is_ok());
  CHECK(o.final_a == "txn");  // the transaction applied after, over it
}

TEST_CASE("isolation writes: a plain write waits for the commit", "[integration][txn][isolation]") {
  const Outcome o = race("writes", {"SET", "$a", "plain"});
  CHECK(o.plain.is_ok());
  CHECK(o.final_a == "plain");  // ordered after the transaction
}

TEST_CASE("isolation writes: a plain read does not wait", "[integration][txn][isolation]") {
  const Outcome o = race("writes", {"GET", "$a"});
  CHECK(o.plain == Reply::string("before"));
}

TEST_CASE("isolation all: a plain read waits and sees the committed value",
          "[integration][txn][isolation]") {
  const Outcome o = race("all", {"GET", "$a"});
  CHECK(o.plain == Reply::string("txn"));
}

TEST_CASE("a guarded command or an MSETNX between WATCH and EXEC keeps the WATCH",
          "[integration][txn][isolation]") {
  ClusterOptions o;
  o.extra_yaml = "transactions:\n  backend_check: off\n  isolation: all\n";
  Cluster cluster(o);
  const std::string a = cluster.key_on(0, "keep"), b = cluster.key_on(1, "keep");
  Client c = cluster.client();
  REQUIRE(c("SET", a, "1").is_ok());
  REQUIRE(c("WATCH", a).is_ok());
  CHECK(c("GET", a) == Reply::string("1"));  // guarded (isolation: all)
  CHECK(c("MSETNX", cluster.key_on(1, "keepx"), "x", cluster.key_on(2, "keepx"), "y") ==
        Reply::integer_(1));  // a cross-backend transaction of its own
  REQUIRE(cluster.client()("SET", a, "changed").is_ok());
  REQUIRE(c("MULTI").is_ok());
  c("SET", a, "mine");
  c("SET", b, "mine");
  CHECK(c("EXEC").is_nil());  // the WATCH still saw the change
  CHECK(c("GET", a) == Reply::string("changed"));
}
