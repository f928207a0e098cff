// A transaction whose keys' slot moves to another backend between MULTI (or WATCH) and EXEC:
// its commands and WATCHes were routed by the old map, so EXEC answers nil and nothing is
// written anywhere; the next transaction goes to the new owner.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("transactions: EXEC after the slot map changed under the queue answers nil",
          "[integration][issue5][issue6][txn]") {
  RedisServer b0, b1;
  LockstepProcess proxy({b0.address(), b1.address()});
  Client c = proxy.client();
  Client ctl = proxy.client();
  const std::string key = "{move}k";
  const int slot = slot_of(key);
  // The default map halves the slots: find the owner and the other backend.
  RedisServer& owner = slot < 8192 ? b0 : b1;
  RedisServer& other = slot < 8192 ? b1 : b0;

  for (const bool watch : {false, true}) {
    INFO((watch ? "WATCH + MULTI" : "MULTI"));
    Client d_owner = owner.client(), d_other = other.client();
    if (watch) REQUIRE(c("WATCH", key).is_ok());
    REQUIRE(c("MULTI").is_ok());
    REQUIRE(c("SET", key, "queued") == Reply::status("QUEUED"));
    RedisServer& to = watch ? owner : other;  // second round: move it back
    REQUIRE(lockstep_admin(ctl, {"SLOTS", "ASSIGN", fmt::format("{}-{}", slot, slot), to.address()})
                .is_ok());
    // The change is applied on this replica when SLOTS ASSIGN answers; the client's worker
    // installs it between requests.
    Reply exec = c("EXEC");
    INFO("EXEC: " << exec);
    CHECK(exec.is_nil());
    CHECK(d_owner("EXISTS", key) == Reply::integer_(0));
    CHECK(d_other("EXISTS", key) == Reply::integer_(0));
    // A new transaction is routed by the new map.
    REQUIRE(c("MULTI").is_ok());
    REQUIRE(c("SET", key, "v") == Reply::status("QUEUED"));
    Reply ok = c("EXEC");
    INFO("EXEC under the new map: " << ok);
    REQUIRE(ok.is_array());
    CHECK(to.client()("GET", key).str == "v");
    REQUIRE(to.client()("DEL", key) == Reply::integer_(1));
  }
}
