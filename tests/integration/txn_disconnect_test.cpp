// A client that disconnects while its cross-backend transaction is between prepare and commit
// point: the coordinator stops (nobody is left to answer) and ends its leases, so the
// resolvers roll it back at their next scan rather than one lease_ms later.
#include <catch2/catch.hpp>
#include <string>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE(
    "transactions: a client gone mid-commit is rolled back at the next scan, not after "
    "the lease",
    "[integration][issue5][txn]") {
  ClusterOptions o;
  // The commit stalls after prepare far longer than the test; the lease is longer still.
  o.extra_yaml =
      "transactions:\n  backend_check: off\n  lease_ms: 120000\n"
      "  failpoints: \"txn.after_prepare=stall:60000@1\"\n";
  Cluster cluster(o);
  const std::string a = cluster.key_on(0, "gone"), b = cluster.key_on(1, "gone");
  Client direct0 = cluster.direct(0), direct1 = cluster.direct(1);
  {
    RawConn c = cluster.proxy().raw();
    REQUIRE(c.send(encode_command({"MULTI"}) + encode_command({"SET", a, "txn"}) +
                   encode_command({"SET", b, "txn"}) + encode_command({"EXEC"})));
    // Prepared on both backends (each holds its key's lock), then the client goes.
    REQUIRE(wait_until(
        [&] {
          return direct0("EXISTS", "__lockstep:tx:lock:" + a) == Reply::integer_(1) &&
                 direct1("EXISTS", "__lockstep:tx:lock:" + b) == Reply::integer_(1);
        },
        5s));
  }
  const auto gone_at = Clock::now();
  // The resolvers (every transactions.resolver_interval_ms, 500 ms) find the ended leases.
  CHECK(wait_until(
      [&] {
        return direct0("ZCARD", "__lockstep:tx:active") == Reply::integer_(0) &&
               direct1("ZCARD", "__lockstep:tx:active") == Reply::integer_(0);
      },
      20s, 20ms));
  INFO("settled after " << elapsed_ms(gone_at) << " ms (lease 120000 ms)");
  CHECK(elapsed_ms(gone_at) < 60000);
  CHECK(direct0("EXISTS", "__lockstep:tx:lock:" + a) == Reply::integer_(0));
  CHECK(direct1("EXISTS", "__lockstep:tx:lock:" + b) == Reply::integer_(0));
  // Rolled back: nothing of it applied, and the keys take new transactions at once.
  CHECK(direct0("EXISTS", a) == Reply::integer_(0));
  CHECK(direct1("EXISTS", b) == Reply::integer_(0));
  Client c = cluster.client();
  REQUIRE(c("MULTI").is_ok());
  REQUIRE(c("SET", a, "after") == Reply::status("QUEUED"));
  REQUIRE(c("SET", b, "after") == Reply::status("QUEUED"));
  Reply exec = c("EXEC");
  INFO("EXEC after: " << exec);
  CHECK(exec.is_array());
}
