// The planned switchover against a FakeRedis with a client writing all along: no acknowledged
// write lost, the pause measured, and every abort path releasing the pause.
#include <lockstep/failover/switchover.h>

#include <catch2/catch.hpp>
#include <deque>
#include <functional>

#include "fake_redis.h"

using namespace lockstep::failover;
using lockstep::failover::test::FakeRedis;

namespace {

const std::string P = "10.0.0.1:6379";
const std::string R1 = "10.0.0.2:6379";
const std::string R2 = "10.0.0.3:6379";
constexpr TimeMs kLeaseWait = 410;

// Lockstep's side of a switchover: the replicated groups, a client writing one 10-byte command
// per millisecond to whatever the groups say is the primary, and the driver loop feeding the
// switchover its replies, commit outcomes and timers.
struct Env {
  FakeRedis redis;
  ReplicationGroups groups;
  TimeMs now = 0;
  int64_t acknowledged = 0;  // bytes the client got OK for
  bool replicating = true;   // FakeRedis::replicate() runs every millisecond
  std::function<bool(const FailoverDecision&)> commit = [this](const FailoverDecision& d) {
    return groups.apply(d.change(now)).empty();
  };
  std::function<void(const ServerCommand&)> before_command = [](const ServerCommand&) {};
  std::vector<ServerCommand> sent;

  Env() {
    redis.primary(P, 0);
    redis.replica(R1, P, 0);
    redis.replica(R2, P, 0);
    REQUIRE(groups.apply(GroupChange::define("b1", P, {R1, R2})).empty());
  }

  void tick(TimeMs to) {
    while (now < to) {
      ++now;
      if (redis.write(groups.find("b1")->primary, 10, now)) acknowledged += 10;
      if (replicating) redis.replicate();
    }
  }

  void run(Switchover& sw, SwitchoverEffects fx, TimeMs limit = 20000) {
    std::deque<ServerCommand> queue;
    std::optional<FailoverDecision> proposal;
    std::optional<TimeMs> wake;
    auto absorb = [&](SwitchoverEffects e) {
      for (ServerCommand& c : e.commands) queue.push_back(std::move(c));
      if (e.propose) proposal = std::move(e.propose);
      wake = e.wake_at;
    };
    absorb(std::move(fx));
    while (!sw.finished() && now < limit) {
      if (!queue.empty()) {
        ServerCommand c = std::move(queue.front());
        queue.pop_front();
        before_command(c);
        sent.push_back(c);
        tick(now + 1);  // one millisecond round trip
        absorb(sw.on_reply(c.server, redis.execute(c, now), now));
      } else if (proposal) {
        FailoverDecision d = *proposal;
        proposal.reset();
        tick(now + 3);  // a Paxos round
        absorb(sw.on_committed(commit(d), "refused", now));
      } else if (wake) {
        tick(std::max(now, *wake));
        absorb(sw.on_timer(now));
      } else {
        break;
      }
    }
  }

  // Every write a client was told succeeded is in the final primary's stream.
  void check_no_acknowledged_write_lost() {
    redis.replicate();
    const std::string& primary = groups.find("b1")->primary;
    INFO("primary " << primary);
    CHECK(redis.servers[primary].offset >= acknowledged);
    CHECK(redis.servers[primary].role == Role::kPrimary);
  }

  bool sent_to(const std::string& server, const std::string& first_arg) const {
    for (const ServerCommand& c : sent) {
      if (c.server == server && !c.args.empty() && c.args[0] == first_arg) return true;
    }
    return false;
  }
};

SwitchoverOptions options() {
  SwitchoverOptions o;
  o.pause_ms = 3000;
  o.catch_up_timeout_ms = 2000;
  o.poll_interval_ms = 1;
  o.step_timeout_ms = 1000;
  o.commit_timeout_ms = 5000;
  return o;
}

}  // namespace

TEST_CASE("switchover: zero acknowledged writes lost, writes paused only briefly", "[failover]") {
  Env env;
  env.tick(100);
  // R2 lags: it catches up only 5 ms after the pause, so the switch has to wait for it.
  TimeMs paused_at = -1;
  env.before_command = [&](const ServerCommand& c) {
    if (c.args[0] == "CLIENT" && c.args[1] == "PAUSE" && paused_at < 0) {
      env.replicating = false;
      paused_at = env.now;
    }
    if (paused_at >= 0 && env.now >= paused_at + 5) env.replicating = true;
  };
  env.redis.write(P, 0, env.now);
  Switchover sw("b1", *env.groups.find("b1"), R2, options(), kLeaseWait);
  REQUIRE(sw.validate().empty());
  env.run(sw, sw.start(env.now));

  INFO(sw.error());
  REQUIRE(sw.state() == SwitchoverState::kDone);
  CHECK(sw.error().empty());
  CHECK(env.groups.find("b1")->primary == R2);
  CHECK(env.groups.find("b1")->generation == 1);
  CHECK(env.redis.servers[R2].role == Role::kPrimary);
  CHECK(env.redis.servers[P].role == Role::kReplica);
  CHECK(env.redis.servers[P].master == R2);
  CHECK(env.redis.servers[R1].master == R2);
  CHECK(env.redis.servers[P].paused_until == 0);  // unpaused
  CHECK(sw.target_offset() > 0);
  // The pause covers the catch-up, the commit and four commands: a few milliseconds here.
  CHECK(sw.pause_ms() > 0);
  CHECK(sw.pause_ms() < 50);
  env.tick(env.now + 100);  // the client goes on writing, to R2 now
  env.check_no_acknowledged_write_lost();
  CHECK(env.acknowledged > 1000);

  // The commands, in order, for the old primary.
  std::vector<std::vector<std::string>> to_primary;
  for (const ServerCommand& c : env.sent) {
    if (c.server == P) to_primary.push_back(c.args);
  }
  CHECK(to_primary == std::vector<std::vector<std::string>>{{"INFO", "replication"},
                                                            {"CLIENT", "PAUSE", "3000", "WRITE"},
                                                            {"INFO", "replication"},
                                                            {"CLIENT", "PAUSE", "3000", "WRITE"},
                                                            {"REPLICAOF", "10.0.0.3", "6379"},
                                                            {"CLIENT", "UNPAUSE"}});
}

TEST_CASE("switchover: without TO, the most advanced linked replica", "[failover]") {
  Env env;
  env.tick(10);
  env.redis.servers[R2].slow = true;  // R2 falls behind R1
  env.tick(20);
  Switchover sw("b1", *env.groups.find("b1"), "", options(), kLeaseWait);
  env.run(sw, sw.start(env.now));
  REQUIRE(sw.state() == SwitchoverState::kDone);
  CHECK(sw.target() == R1);
  CHECK(env.redis.servers[R2].master == R1);
  CHECK(env.groups.find("b1")->primary == R1);
  env.check_no_acknowledged_write_lost();
}

TEST_CASE("switchover: a target that does not catch up aborts and unpauses", "[failover]") {
  Env env;
  env.tick(50);
  env.before_command = [&](const ServerCommand& c) {
    if (c.args[0] == "CLIENT" && c.args[1] == "PAUSE") env.replicating = false;
  };
  Switchover sw("b1", *env.groups.find("b1"), R2, options(), kLeaseWait);
  // R2 holds less than the primary once writes are paused, and never gets the rest.
  env.redis.write(P, 500, env.now);
  env.run(sw, sw.start(env.now));
  CHECK(sw.state() == SwitchoverState::kFailed);
  CHECK_THAT(sw.error(), Catch::Contains("did not catch up with 10.0.0.1:6379 within 2000 ms"));
  CHECK(env.redis.servers[P].paused_until == 0);
  CHECK(env.redis.servers[P].role == Role::kPrimary);
  CHECK(env.groups.find("b1")->generation == 0);
  CHECK_FALSE(env.sent_to(R2, "REPLICAOF"));
  CHECK_FALSE(sw.committed());
}

TEST_CASE("switchover: a refused or late commit aborts and unpauses", "[failover]") {
  Env env;
  env.commit = [](const FailoverDecision&) { return false; };
  Switchover sw("b1", *env.groups.find("b1"), R1, options(), kLeaseWait);
  env.run(sw, sw.start(env.now));
  CHECK(sw.state() == SwitchoverState::kFailed);
  CHECK_THAT(sw.error(), Catch::Contains("not committed: refused"));
  CHECK(env.redis.servers[P].paused_until == 0);
  CHECK(env.sent_to(P, "CLIENT"));
  CHECK_FALSE(env.sent_to(R1, "REPLICAOF"));

  // No answer at all: the commit must land while the first pause holds, else it aborts.
  Env late;
  Switchover slow("b1", *late.groups.find("b1"), R1, options(), kLeaseWait);
  SwitchoverEffects fx = slow.start(late.now);
  std::deque<ServerCommand> queue(fx.commands.begin(), fx.commands.end());
  std::optional<TimeMs> wake = fx.wake_at;
  while (!slow.finished() && late.now < 20000) {
    SwitchoverEffects next;
    if (!queue.empty()) {
      ServerCommand c = queue.front();
      queue.pop_front();
      late.tick(late.now + 1);
      next = slow.on_reply(c.server, late.redis.execute(c, late.now), late.now);
    } else {
      REQUIRE(wake);
      late.tick(*wake);
      next = slow.on_timer(late.now);
    }
    // Proposals are dropped: the log never answers.
    for (ServerCommand& c : next.commands) queue.push_back(c);
    wake = next.wake_at ? next.wake_at : wake;
  }
  CHECK(slow.state() == SwitchoverState::kFailed);
  CHECK_THAT(slow.error(), Catch::Contains("before the write pause"));
  CHECK(late.now < 3000);  // gave up before the pause could lapse
  CHECK(late.redis.servers[P].paused_until == 0);
}

TEST_CASE("switchover: a failure after the commit hands over to the reconciler", "[failover]") {
  Env env;
  // The old primary dies right after the commit: the pause cannot be renewed.
  env.before_command = [&](const ServerCommand& c) {
    if (env.groups.find("b1")->generation == 1 && c.server == P) env.redis.servers[P].alive = false;
  };
  Switchover sw("b1", *env.groups.find("b1"), R1, options(), kLeaseWait);
  env.run(sw, sw.start(env.now));
  CHECK(sw.state() == SwitchoverState::kHandedOver);
  CHECK(sw.committed());
  CHECK_FALSE(sw.owns_group());
  CHECK(sw.committed_at() > 0);
  CHECK_THAT(sw.error(), Catch::Contains("could not renew the write pause"));
  CHECK(env.groups.find("b1")->primary == R1);          // the commit stands
  CHECK(env.redis.servers[R1].role == Role::kReplica);  // promotion left to the lease wait
}

TEST_CASE("switchover: prechecks refuse before anything is paused", "[failover]") {
  Env env;
  auto refused = [&](Switchover sw, const std::string& part) {
    env.sent.clear();
    env.run(sw, sw.start(env.now));
    CHECK(sw.state() == SwitchoverState::kFailed);
    CHECK_THAT(sw.error(), Catch::Contains(part));
    CHECK_FALSE(env.sent_to(P, "CLIENT"));
  };
  const Group& group = *env.groups.find("b1");
  refused(Switchover("b1", group, "10.9.9.9:1", options(), kLeaseWait),
          "not a replica of backend 'b1'");
  refused(Switchover("b1", group, P, options(), kLeaseWait), "already the primary");
  SwitchoverOptions short_pause = options();
  short_pause.pause_ms = 300;
  short_pause.catch_up_timeout_ms = 100;
  refused(Switchover("b1", group, R1, short_pause, kLeaseWait), "must outlast");
  SwitchoverOptions slow_catch_up = options();
  slow_catch_up.catch_up_timeout_ms = 3000;
  refused(Switchover("b1", group, R1, slow_catch_up, kLeaseWait), "catch-up timeout");
  Group alone;
  alone.primary = P;
  refused(Switchover("b1", alone, "", options(), kLeaseWait), "no replica");
  Group sentinel = group;
  sentinel.sentinel = true;
  refused(Switchover("b1", sentinel, R1, options(), kLeaseWait), "SENTINEL FAILOVER");

  // The target follows another server, or its link is down, or the primary is not a primary.
  env.redis.execute(replicate_command(R2, R1), 0);
  refused(Switchover("b1", group, R2, options(), kLeaseWait), "does not replicate from");
  env.redis.execute(replicate_command(R2, P), 0);
  env.redis.servers[R1].alive = false;
  refused(Switchover("b1", group, R1, options(), kLeaseWait), "did not answer");
  env.redis.servers[R1].alive = true;
  env.redis.execute(promote_command(R1), 0);
  env.redis.execute(replicate_command(P, R1), 0);
  refused(Switchover("b1", group, R2, options(), kLeaseWait), "does not say role master");
}
