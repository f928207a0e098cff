// Following Sentinel: a majority of current answers decides, a +switch-master message only
// triggers new questions (a returning sentinel republishing an old switch changes nothing).
#include <lockstep/failover/sentinel_follower.h>

#include <catch2/catch.hpp>

using namespace lockstep::failover;

TEST_CASE("sentinel: +switch-master payloads", "[failover]") {
  std::optional<SwitchMaster> m = parse_switch_master("mymaster 10.0.0.1 6379 10.0.0.2 6380");
  REQUIRE(m);
  CHECK(m->master == "mymaster");
  CHECK(m->old_address == "10.0.0.1:6379");
  CHECK(m->new_address == "10.0.0.2:6380");
  CHECK(parse_switch_master("m ::1 1 ::2 2")->new_address == "[::2]:2");
  for (const char* bad : {"", "m 1.1.1.1 1 2.2.2.2", "m 1.1.1.1 1 2.2.2.2 0", "m a b c d",
                          "m 1.1.1.1 1 2.2.2.2 70000", "m 1 1 1 1 1 1"}) {
    INFO(bad);
    CHECK_FALSE(parse_switch_master(bad));
  }
}

TEST_CASE("sentinel: the primary a majority of sentinels names", "[failover]") {
  SentinelFollower f("mymaster", {"s1:26379", "s2:26379", "s3:26379"});
  std::vector<ServerCommand> q = f.queries();
  REQUIRE(q.size() == 3);
  CHECK(q[0] == ServerCommand{"s1:26379", {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"}});
  CHECK_FALSE(f.agreed_primary());

  f.on_answer("s1:26379", "10.0.0.1:6379");
  CHECK_FALSE(f.agreed_primary());  // one of three
  f.on_answer("s2:26379", "10.0.0.1:6379");
  CHECK(f.agreed_primary() == "10.0.0.1:6379");

  // A failover: two sentinels now name the new primary.
  CHECK(f.on_switch_message("mymaster 10.0.0.1 6379 10.0.0.2 6379"));
  CHECK_FALSE(f.on_switch_message("other 10.0.0.1 6379 10.0.0.2 6379"));
  f.on_answer("s1:26379", "10.0.0.2:6379");
  CHECK_FALSE(f.agreed_primary());  // 1 vs 1, s3 silent
  f.on_answer("s3:26379", "10.0.0.2:6379");
  CHECK(f.agreed_primary() == "10.0.0.2:6379");

  // A sentinel back from the dead republishes the old switch: a message is only a reason to
  // ask, and the answers still agree on the new primary.
  CHECK(f.on_switch_message("mymaster 10.0.0.2 6379 10.0.0.1 6379"));
  CHECK(f.agreed_primary() == "10.0.0.2:6379");

  // Failures and nil answers withdraw a vote; strangers have none.
  f.on_failure("s3:26379");
  CHECK_FALSE(f.agreed_primary());
  f.on_answer("s9:26379", "10.0.0.2:6379");
  CHECK_FALSE(f.agreed_primary());
  f.on_answer("s2:26379", "10.0.0.2:6379");
  CHECK(f.agreed_primary() == "10.0.0.2:6379");
  f.on_answer("s2:26379", std::nullopt);
  CHECK_FALSE(f.agreed_primary());
}
