// The `locks:` settings change live through the replicated configuration (LOCKSTEP CONFIG SET):
// a new lock backend set is fenced, seeded and drained before it is used (lock/reconfig.h),
// a replica still on an older set is refused by the backends (-LOCKEPOCH), and max_ttl_ms
// bounds LOCK.ACQUIRE at once.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"
#include "support/lock_support.h"

using namespace lockstep::test;

namespace {

Reply config_set(Client& c, const std::string& path, const std::string& value) {
  return lockstep_admin(c, {"CONFIG", "SET", path, value});
}

long long int_of(Client& direct, const std::string& key) {
  Reply r = direct("GET", key);
  return r.is_nil() ? 0 : std::stoll(r.str);
}

}  // namespace

TEST_CASE("locks: the lock backend set changes live, fenced, seeded and drained first",
          "[integration][issue4][issue6][locks]") {
  LockClusterOptions o;
  o.backends = 4;
  o.max_ttl_ms = 6000;
  LockCluster cluster(o);  // locks.backends: the default, all four
  Client c = cluster.client();
  std::vector<std::string> names;
  for (size_t i = 0; i < 4; ++i) names.push_back(cluster.backend(i).address());

  std::optional<Grant> first;
  REQUIRE(wait_until(
      [&] {
        first = as_grant(c.command({"LOCK.ACQUIRE", "res", "1000"}));
        return first.has_value();
      },
      10s, 50ms));
  REQUIRE(c("LOCK.RELEASE", "res", first->token) == Reply::integer_(1));
  // Unknown backends are refused by the log's validator, on this replica as on any other.
  // (This also waits until the lone replica has bootstrapped its log.)
  Reply bad = config_set(c, "locks.backends", names[1] + ",nosuch");
  INFO("unknown lock backend: " << bad);
  CHECK(bad.error_starts_with("ERR"));
  CHECK(bad.str.find("nosuch") != std::string::npos);

  Client ka = cluster.client();
  REQUIRE(as_grant(ka.command({"LOCK.ACQUIRE", "kept", "300", "KEEPALIVE"})));
  // Held across the change on the old set: the new set must not grant it while it is valid.
  const auto held_at = Clock::now();
  auto held = as_grant(c.command({"LOCK.ACQUIRE", "held", "700"}));
  REQUIRE(held);

  // {0,1,2,3} -> {1,2,3}.
  const auto changed_at = Clock::now();
  REQUIRE(config_set(c, "locks.backends", fmt::format("{},{},{}", names[1], names[2], names[3]))
              .is_ok());
  Reply during;
  CHECK(wait_until(
      [&] {
        during = c.command({"LOCK.ACQUIRE", "res", "1000"});
        return during.error_starts_with("TRYAGAIN");
      },
      2s, 5ms));
  INFO("during the change: " << during);
  CHECK(during.str.find("lock backends are changing") != std::string::npos);
  // A waiter is parked, not failed: it is served on the new set.
  Client waiter = cluster.client(0, 30s);
  Reply waited;
  std::thread t([&] {
    waited = waiter.command({"LOCK.ACQUIRE", "queued", "1000", "WAIT", "20000"});
  });

  std::optional<Grant> after;
  REQUIRE(wait_until(
      [&] {
        after = as_grant(c.command({"LOCK.ACQUIRE", "res", "1000"}));
        return after.has_value();
      },
      15s, 20ms));
  const long long switched_ms = elapsed_ms(changed_at);
  t.join();
  INFO("waiter: " << waited);
  CHECK(as_grant(waited));
  CHECK(after->fence > first->fence);  // fences go on across the change
  // No grant of the new set overlaps a valid grant of the old one: "held" comes back only
  // after its validity. The drain waited for the longest hold on the old backends (~700 ms),
  // not for max_ttl_ms (6 s), which it would only need if it could not read them.
  auto again = as_grant(c.command({"LOCK.ACQUIRE", "held", "1000"}));
  INFO("held again after " << elapsed_ms(held_at) << " ms; switched after " << switched_ms);
  REQUIRE(again);
  CHECK(elapsed_ms(held_at) >= held->validity_ms);
  CHECK(again->fence > held->fence);
  CHECK(switched_ms < 6000);

  Client d0 = cluster.direct(0), d3 = cluster.direct(3);
  // The lock engine's connections to backend 0 are gone (its release-notification subscriber
  // was the only subscription there).
  auto subscribers = [](Client& d) {
    Reply r = d("PUBSUB", "NUMSUB", "__lockstep:released");
    return r.elements.size() == 2 ? r.elements[1].integer : -1;
  };
  CHECK(wait_until([&] { return subscribers(d0) == 0; }, 5s, 20ms));
  CHECK(subscribers(d3) == 1);
  const long long epoch = int_of(d0, "__lockstep:lockcfg");
  CHECK(epoch > 0);  // the old set is fenced
  CHECK(int_of(d3, "__lockstep:lockcfg") == epoch);
  CHECK(int_of(d3, "__lockstep:fence:res") >= first->fence);  // the new one seeded
  CHECK(int_of(d3, "__lockstep:lockcfg:done") == epoch);
  // KEEPALIVE locks were reported lost at the change.
  Reply lost = ka("LOCK.STATUS", "kept");
  INFO("KEEPALIVE connection after the change: " << lost);
  CHECK(lost.error_starts_with("LOCKLOST"));

  // Backend 0 is no lock backend any more: killing it costs nothing.
  REQUIRE(c("LOCK.RELEASE", "res", after->token) == Reply::integer_(1));
  cluster.backend(0).kill9();
  auto g = as_grant(c.command({"LOCK.ACQUIRE", "res", "1000"}));
  REQUIRE(g);
  CHECK(g->fence > after->fence);
  REQUIRE(c("LOCK.RELEASE", "res", g->token) == Reply::integer_(1));
  cluster.backend(0).restart();

  // A replica that has not applied a newer change is refused by the backends that saw it.
  Client d1 = cluster.direct(1), d2 = cluster.direct(2);
  for (Client* d : {&d1, &d2, &d3}) REQUIRE((*d)("SET", "__lockstep:lockcfg", "999999").is_ok());
  Reply stale = c.command({"LOCK.ACQUIRE", "res", "1000"});
  INFO("acquire by a replica behind the backends: " << stale);
  CHECK(stale.error_starts_with("LOCKCONFIG"));
  CHECK(stale.str.find("LOCKEPOCH") != std::string::npos);
  for (Client* d : {&d1, &d2, &d3})
    REQUIRE((*d)("SET", "__lockstep:lockcfg", std::to_string(epoch)).is_ok());
  CHECK(wait_until(
      [&] {
        return as_grant(c.command({"LOCK.ACQUIRE", "again", "1000"})).has_value();
      },
      5s, 20ms));
}

TEST_CASE("locks: max_ttl_ms and quarantine_ms are replicated settings",
          "[integration][issue4][issue6][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  CHECK(config_set(c, "locks.max_ttl_ms", "800").is_ok());
  CHECK(c.command({"LOCKSTEP", "CONFIG", "GET", "locks.max_ttl_ms"}).str == "800");
  Reply r = c.command({"LOCK.ACQUIRE", "big", "1000"});
  INFO("ttl above the new max: " << r);
  CHECK(r.error_starts_with("ERR"));
  CHECK(wait_until(
      [&] {
        return as_grant(c.command({"LOCK.ACQUIRE", "small", "700"})).has_value();
      },
      5s, 20ms));
  // Settings that do not fit together are refused (quarantine below max_ttl + lock_delay).
  Reply q = config_set(c, "locks.quarantine_ms", "100");
  INFO("quarantine below max_ttl: " << q);
  CHECK(q.error_starts_with("ERR"));
  CHECK(q.str.find("quarantine_ms") != std::string::npos);
  CHECK(config_set(c, "locks.quarantine_ms", "5000").is_ok());
}
