// The failover executor against a FakeRedis: the lease gate, promotion then re-pointing, the old
// primary returning, a replica promoted by hand, a candidate found behind, and restarts in the
// middle (a new leader repeats only what is missing).
#include <lockstep/failover/group_reconciler.h>

#include <catch2/catch.hpp>

#include "fake_redis.h"

using namespace lockstep::failover;
using lockstep::failover::test::FakeRedis;

namespace {

const std::string P = "10.0.0.1:6379";
const std::string R1 = "10.0.0.2:6379";
const std::string R2 = "10.0.0.3:6379";

// The leader's loop for one group: probe every server (INFO replication), then send what the
// reconciler asks and hand it the replies. Returns the commands sent.
std::vector<ReconcileAction> step(GroupReconciler& rec, FakeRedis& redis, TimeMs now) {
  redis.replicate();
  for (const std::string& s : rec.target().servers()) {
    CommandReply reply = redis.execute({s, {"INFO", "replication"}}, now);
    if (!reply.is_ok()) {
      rec.set_reachable(s, false);
      continue;
    }
    ParsedReplicationInfo parsed = parse_replication_info(reply.text);
    REQUIRE(parsed.info);
    rec.on_info(s, now, *parsed.info);
  }
  std::vector<ReconcileAction> actions = rec.poll(now);
  for (const ReconcileAction& a : actions)
    rec.on_reply(a.command.server, redis.execute(a.command, now), now);
  return actions;
}

// Group b1 after the committed failover "P -> R2 (generation 1)".
Group failed_over() {
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("b1", P, {R1, R2})).empty());
  REQUIRE(g.apply(GroupChange::set_primary("b1", R2, 0, 1)).empty());
  return *g.find("b1");
}

FakeRedis primary_dead() {
  FakeRedis redis;
  redis.primary(P, 1000);
  redis.replica(R1, P, 900);
  redis.replica(R2, P, 1000);
  redis.servers[P].alive = false;
  return redis;
}

}  // namespace

TEST_CASE("reconciler: a failover, from the lease wait to the old primary's return", "[failover]") {
  FakeRedis redis = primary_dead();
  GroupReconciler rec("b1");
  rec.set_target(failed_over(), 500);

  // Nothing is sent before the lease wait is over, however fresh the information.
  for (TimeMs now = 0; now < 500; now += 100) {
    CHECK(step(rec, redis, now).empty());
    CHECK(rec.status(now).state == ReconcileState::kWaitingLease);
  }
  CHECK_THAT(rec.status(400).detail, Catch::Contains("promoted in 100 ms"));
  CHECK(redis.servers[R2].role == Role::kReplica);

  // At 500 the probes are fresh enough: R2 is promoted, nothing else yet.
  std::vector<ReconcileAction> sent = step(rec, redis, 500);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == promote_command(R2));
  CHECK_THAT(sent[0].why, Catch::Contains("generation 1"));
  CHECK(redis.servers[R2].role == Role::kPrimary);

  // Then the other replica is re-pointed; the dead old primary is waited for.
  sent = step(rec, redis, 600);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == replicate_command(R1, R2));
  CHECK(sent[0].command.args == std::vector<std::string>{"REPLICAOF", "10.0.0.3", "6379"});
  CHECK_THAT(sent[0].why, Catch::Contains("replicates from 10.0.0.1:6379"));
  CHECK(step(rec, redis, 700).empty());
  ReconcileStatus st = rec.status(700);
  CHECK(st.state == ReconcileState::kConverged);
  CHECK(st.waiting_for == std::vector<std::string>{P});

  // Steady state sends nothing.
  for (TimeMs now = 800; now < 2000; now += 100) CHECK(step(rec, redis, now).empty());

  // The old primary comes back believing it is the primary: its first INFO gets it re-pointed.
  redis.servers[P].alive = true;
  redis.servers[P].offset = 1100;  // writes R2 never had; a full resync discards them
  sent = step(rec, redis, 2000);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == replicate_command(P, R2));
  CHECK_THAT(sent[0].why, Catch::Contains("says it is a primary (the old primary back"));
  CHECK(redis.servers[P].role == Role::kReplica);
  CHECK(redis.servers[P].master == R2);
  CHECK(step(rec, redis, 2100).empty());
  st = rec.status(2100);
  CHECK(st.state == ReconcileState::kConverged);
  CHECK(st.waiting_for.empty());
  CHECK(redis.servers[R2].commands == 1);  // promoted exactly once
}

TEST_CASE("reconciler: a new leader after a crash repeats only what is missing", "[failover]") {
  FakeRedis redis = primary_dead();
  {
    GroupReconciler first("b1");
    first.set_target(failed_over(), 0);
    // Crash right after REPLICAOF NO ONE reached R2, before its reply came back.
    redis.replicate();
    for (const std::string& s : {R1, R2}) {
      first.on_info(
          s, 0, *parse_replication_info(redis.execute({s, {"INFO", "replication"}}, 0).text).info);
    }
    std::vector<ReconcileAction> sent = first.poll(0);
    REQUIRE(sent.size() == 1);
    redis.execute(sent[0].command, 0);  // executed; the reply is lost with the leader
  }
  // The new leader applied the same committed entry and waits its own lease from its apply time.
  GroupReconciler second("b1");
  second.set_target(failed_over(), 1000);
  std::vector<ServerCommand> all;
  for (TimeMs now = 900; now < 1500; now += 100) {
    for (const ReconcileAction& a : step(second, redis, now)) all.push_back(a.command);
  }
  CHECK(all == std::vector<ServerCommand>{replicate_command(R1, R2)});
  CHECK(redis.servers[R2].commands == 1);
  CHECK(second.status(1500).state == ReconcileState::kConverged);

  // A third leader finds nothing to do at all.
  GroupReconciler third("b1");
  third.set_target(failed_over(), 2000);
  for (TimeMs now = 2000; now < 2500; now += 100) CHECK(step(third, redis, now).empty());
  CHECK(third.status(2500).state == ReconcileState::kConverged);
}

TEST_CASE("reconciler: a replica promoted by hand is detected and re-pointed", "[failover]") {
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("b1", P, {R1, R2})).empty());
  FakeRedis redis;
  redis.primary(P, 10);
  redis.replica(R1, P, 10);
  redis.replica(R2, P, 10);
  GroupReconciler rec("b1");
  rec.set_target(*g.find("b1"), 0);
  for (TimeMs now = 0; now < 500; now += 100) CHECK(step(rec, redis, now).empty());
  CHECK(rec.status(500).state == ReconcileState::kConverged);

  // An operator runs REPLICAOF NO ONE on R1 behind Lockstep's back.
  redis.execute(promote_command(R1), 500);
  std::vector<ReconcileAction> sent = step(rec, redis, 600);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == replicate_command(R1, P));
  CHECK_THAT(sent[0].why, Catch::Contains("10.0.0.2:6379 says it is a primary"));
  CHECK_THAT(sent[0].why, Catch::Contains("promoted by hand"));
  CHECK(redis.servers[R1].master == P);
  // And one made to follow another replica.
  redis.execute(replicate_command(R2, R1), 700);
  sent = step(rec, redis, 800);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == replicate_command(R2, P));
  CHECK(rec.status(900).state == ReconcileState::kConverged);
}

TEST_CASE("reconciler: a replica further ahead stops the promotion", "[failover]") {
  FakeRedis redis = primary_dead();
  // R1 got writes R2 missed: a cut-off Lockstep replica kept writing until its lease ran out.
  redis.servers[P].alive = true;
  redis.replicate();
  redis.write(P, 50, 0);
  redis.servers[R1].offset = redis.servers[P].offset;  // only R1 received them
  redis.servers[P].alive = false;
  GroupReconciler rec("b1");
  rec.set_target(failed_over(), 100);
  // replicate() would copy nothing now: P is dead.
  CHECK(step(rec, redis, 0).empty());
  CHECK(step(rec, redis, 100).empty());
  ReconcileStatus st = rec.status(100);
  CHECK(st.state == ReconcileState::kCandidateBehind);
  CHECK(st.better == R1);
  CHECK_THAT(st.detail, Catch::Contains("10.0.0.2:6379 (offset 1050) is ahead of the decided "
                                        "primary 10.0.0.3:6379 (offset 1000)"));
  CHECK(redis.servers[R2].role == Role::kReplica);

  // Information from before the lease wait does not count: a reachable replica not probed since
  // is waited for.
  GroupReconciler waiting("b1");
  waiting.set_target(failed_over(), 100);
  waiting.on_info(R2, 100, *parse_replication_info(redis.info(R2)).info);
  waiting.on_info(R1, 50, *parse_replication_info(redis.info(R1)).info);
  CHECK(waiting.poll(100).empty());
  st = waiting.status(100);
  CHECK(st.state == ReconcileState::kCheckingCandidate);
  CHECK(st.waiting_for == std::vector<std::string>{R1});
  // An unreachable one is not.
  waiting.set_reachable(R1, false);
  std::vector<ReconcileAction> sent = waiting.poll(100);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == promote_command(R2));
}

TEST_CASE("reconciler: unreachable primary, failed commands and stale probes", "[failover]") {
  FakeRedis redis = primary_dead();
  redis.servers[R2].alive = false;
  GroupReconciler rec("b1");
  rec.set_target(failed_over(), 0);
  CHECK(step(rec, redis, 0).empty());
  CHECK(rec.status(0).state == ReconcileState::kPrimaryUnreachable);

  // A command that fails is retried, but only after a probe sent after its reply.
  redis.servers[R2].alive = true;
  GroupReconciler retry("b1");
  retry.set_target(failed_over(), 0);
  retry.on_info(R2, 10, *parse_replication_info(redis.info(R2)).info);
  retry.on_info(R1, 10, *parse_replication_info(redis.info(R1)).info);
  std::vector<ReconcileAction> sent = retry.poll(10);
  REQUIRE(sent.size() == 1);
  CHECK(retry.poll(11).empty());  // in flight
  CHECK(retry.status(11).detail == "REPLICAOF NO ONE sent to 10.0.0.3:6379");
  retry.on_reply(R2, CommandReply::no_reply("timed out"), 20);
  CHECK(retry.poll(21).empty());  // the last INFO (sent at 10) predates the failure
  retry.on_info(R2, 15, *parse_replication_info(redis.info(R2)).info);
  CHECK(retry.poll(22).empty());  // still older than the reply
  retry.on_info(R2, 30, *parse_replication_info(redis.info(R2)).info);
  sent = retry.poll(31);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == promote_command(R2));

  // After an OK, a probe sent before the reply (showing the old role) does not undo it.
  retry.on_reply(R2, CommandReply::ok(), 40);
  retry.on_info(R2, 35, *parse_replication_info(redis.info(R2)).info);  // still says replica
  sent = retry.poll(41);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].command == replicate_command(R1, R2));  // R2 counts as promoted

  // A reply to a command for an older target does not count for the new one.
  GroupReconciler moved("b1");
  moved.set_target(failed_over(), 0);
  moved.on_info(R2, 0, *parse_replication_info(redis.info(R2)).info);
  moved.on_info(R1, 0, *parse_replication_info(redis.info(R1)).info);
  REQUIRE(moved.poll(0).size() == 1);  // REPLICAOF NO ONE R2 in flight
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("b1", P, {R1, R2})).empty());
  REQUIRE(g.apply(GroupChange::set_primary("b1", R2, 0, 1)).empty());
  REQUIRE(g.apply(GroupChange::set_primary("b1", R1, 1, 2)).empty());
  moved.set_target(*g.find("b1"), 0);
  moved.on_reply(R2, CommandReply::ok(), 5);
  CHECK(moved.status(5).state != ReconcileState::kConverged);
}
