// The leader's failover decision, driven by hand-made reports and a fake clock: majority of
// views, a replica cut off alone, a single replica deciding alone, the candidate choice, every
// server down, a flapping primary (rate limit), leader changes and stale reports.
#include <lockstep/failover/failover_decider.h>

#include <catch2/catch.hpp>

using namespace lockstep::failover;

namespace {

const std::string P = "10.0.0.1:6379";
const std::string R1 = "10.0.0.2:6379";
const std::string R2 = "10.0.0.3:6379";

ServerView primary(bool up, int64_t offset = 1000) {
  return {P, up, Role::kPrimary, "", false, offset};
}
ServerView replica(const std::string& server, bool up, int64_t offset,
                   const std::string& master = P, bool link = false) {
  return {server, up, Role::kReplica, master, link, offset};
}

ReplicationGroups groups() {
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("b1", P, {R1, R2})).empty());
  return g;
}

DeciderOptions options() {
  DeciderOptions o;
  o.min_interval_ms = 30000;
  o.report_ttl_ms = 500;
  o.proposal_retry_ms = 5000;
  return o;
}

// Reports that the primary is down (or up) from each of `from`, with the replicas' views.
void report(FailoverDecider& d, std::initializer_list<ReplicaId> from, bool primary_up, TimeMs now,
            int64_t r1_offset = 900, int64_t r2_offset = 950) {
  for (ReplicaId id : from) {
    d.on_report(
        {id, {primary(primary_up), replica(R1, true, r1_offset), replica(R2, true, r2_offset)}},
        now);
  }
}

}  // namespace

TEST_CASE("decider: a majority must see the primary down", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1, 2, 3});
  ReplicationGroups g = groups();
  TimeMs now = 10000;

  report(d, {1, 2, 3}, true, now);
  Assessment a = d.evaluate("b1", *g.find("b1"), now);
  CHECK(a.verdict == Verdict::kHealthy);
  CHECK_FALSE(a.decision);

  // One replica (the leader itself here) sees it down: suspicion, nothing more.
  report(d, {1}, false, now);
  a = d.evaluate("b1", *g.find("b1"), now);
  CHECK(a.verdict == Verdict::kSuspected);
  CHECK_THAT(a.detail, Catch::Contains("1 of 3 Lockstep replicas see primary"));

  // Two of three: fail over, to the replica with the highest offset.
  report(d, {2}, false, now);
  a = d.evaluate("b1", *g.find("b1"), now);
  REQUIRE(a.verdict == Verdict::kDecided);
  REQUIRE(a.decision);
  CHECK(a.decision->new_primary == R2);
  CHECK(a.decision->old_primary == P);
  CHECK(a.decision->expected_generation == 0);
  CHECK(a.decision->change(123) == GroupChange::set_primary("b1", R2, 0, 123));
  CHECK_THAT(a.decision->reason, Catch::Contains("highest offset (950)"));

  // While it is being committed it is not decided again...
  CHECK(d.evaluate("b1", *g.find("b1"), now + 100).verdict == Verdict::kPending);
  // ...unless the proposal failed, or went unanswered for proposal_retry_ms.
  d.on_proposal_failed("b1");
  report(d, {1, 2}, false, now + 200);
  CHECK(d.evaluate("b1", *g.find("b1"), now + 200).verdict == Verdict::kDecided);
  report(d, {1, 2}, false, now + 5200);
  CHECK(d.evaluate("b1", *g.find("b1"), now + 5199).verdict == Verdict::kPending);
  CHECK(d.evaluate("b1", *g.find("b1"), now + 5200).verdict == Verdict::kDecided);
}

TEST_CASE("decider: a replica cut off alone from a healthy primary triggers nothing",
          "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1, 2, 3});
  ReplicationGroups g = groups();
  // Replica 3 cannot reach the primary; 1 and 2 can. Every interval, for a long time.
  for (TimeMs now = 0; now < 60000; now += 100) {
    report(d, {1, 2}, true, now);
    report(d, {3}, false, now);
    Assessment a = d.evaluate("b1", *g.find("b1"), now);
    REQUIRE(a.verdict == Verdict::kSuspected);
    REQUIRE_FALSE(a.decision);
  }
}

TEST_CASE("decider: stale reports and non-voters do not count", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1, 2, 3});
  ReplicationGroups g = groups();
  report(d, {2}, false, 0);  // replica 2 said "down", then stopped reporting
  report(d, {1}, false, 600);
  CHECK(d.evaluate("b1", *g.find("b1"), 600).verdict == Verdict::kSuspected);
  report(d, {9}, false, 600);  // not a voter (a learner)
  CHECK(d.evaluate("b1", *g.find("b1"), 600).verdict == Verdict::kSuspected);
  report(d, {2}, false, 600);
  CHECK(d.evaluate("b1", *g.find("b1"), 600).verdict == Verdict::kDecided);
}

TEST_CASE("decider: a single Lockstep replica decides alone", "[failover]") {
  FailoverDecider d(7, options());
  d.set_voters({7});
  ReplicationGroups g = groups();
  report(d, {7}, false, 100, 500, 400);
  Assessment a = d.evaluate("b1", *g.find("b1"), 100);
  REQUIRE(a.verdict == Verdict::kDecided);
  CHECK(a.decision->new_primary == R1);
}

TEST_CASE("decider: candidates must be reachable replicas of the failed primary", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1});
  ReplicationGroups g = groups();
  auto decide = [&](std::vector<ServerView> views) {
    d.on_proposal_failed("b1");
    d.on_report({1, std::move(views)}, 0);
    return d.evaluate("b1", *g.find("b1"), 0);
  };
  // The furthest replica is down: the next one.
  Assessment a = decide({primary(false), replica(R1, true, 10), replica(R2, false, 99)});
  REQUIRE(a.decision);
  CHECK(a.decision->new_primary == R1);
  // A "replica" that replicates from elsewhere holds another stream.
  a = decide({primary(false), replica(R1, true, 10), replica(R2, true, 99, "10.9.9.9:6379")});
  CHECK(a.decision->new_primary == R1);
  // Equal offsets: the earlier server in the group's list, on every leader.
  a = decide({primary(false), replica(R1, true, 50), replica(R2, true, 50)});
  CHECK(a.decision->new_primary == R1);
  // None qualifies: a clear error saying why, server by server.
  a = decide({primary(false), {R1, true, Role::kPrimary, "", false, 10}, replica(R2, true, -1)});
  CHECK(a.verdict == Verdict::kNoCandidate);
  CHECK_FALSE(a.decision);
  CHECK_THAT(a.detail, Catch::StartsWith("ERR backend 'b1': primary 10.0.0.1:6379 is down"));
  CHECK_THAT(a.detail, Catch::Contains("10.0.0.2:6379 role primary"));
  CHECK_THAT(a.detail, Catch::Contains("10.0.0.3:6379 offset unknown"));
  a = decide({primary(false), replica(R2, true, 5)});  // the leader has no view of R1
  CHECK(a.decision->new_primary == R2);
}

TEST_CASE("decider: every server of a group down is a clear error", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1, 2, 3});
  ReplicationGroups g = groups();
  for (ReplicaId id : {1, 2, 3}) {
    d.on_report({id, {primary(false), replica(R1, false, 5), replica(R2, false, 6)}}, 0);
  }
  Assessment a = d.evaluate("b1", *g.find("b1"), 0);
  CHECK(a.verdict == Verdict::kAllDown);
  CHECK(a.detail ==
        "ERR backend 'b1': every server of its group is down (10.0.0.1:6379, "
        "10.0.0.2:6379, 10.0.0.3:6379)");
  CHECK_FALSE(a.decision);
  // Other backends are assessed on their own.
  ReplicationGroups both = groups();
  REQUIRE(both.apply(GroupChange::define("b2", "10.0.1.1:6379", {})).empty());
  std::vector<Assessment> all = d.evaluate(both, 0);
  REQUIRE(all.size() == 2);
  CHECK(all[0].verdict == Verdict::kAllDown);
  CHECK(all[1].verdict == Verdict::kHealthy);  // nobody reported b2's primary down
}

TEST_CASE("decider: a flapping primary fails over at most once per interval", "[failover]") {
  DeciderOptions o = options();
  o.min_interval_ms = 10000;
  FailoverDecider d(1, o);
  d.set_voters({1, 2, 3});
  ReplicationGroups g = groups();

  // The primary of each generation goes down and up every 300 ms for a minute; the leader
  // proposes whatever it decides, and the log applies it at once.
  std::vector<TimeMs> failovers;
  for (TimeMs now = 0; now < 60000; now += 100) {
    const Group& group = *g.find("b1");
    bool up = (now / 300) % 2 == 0;
    std::vector<ServerView> views;
    for (const std::string& s : group.servers()) {
      bool is_primary = s == group.primary;
      views.push_back({s, is_primary ? up : true, is_primary ? Role::kPrimary : Role::kReplica,
                       is_primary ? "" : group.primary, true, 100});
    }
    for (ReplicaId id : {1, 2, 3}) d.on_report({id, views}, now);
    Assessment a = d.evaluate("b1", group, now);
    if (a.verdict == Verdict::kRateLimited) {
      CHECK_THAT(a.detail, Catch::Contains("failover.min_interval_ms"));
    }
    if (!a.decision) continue;
    REQUIRE(g.apply(a.decision->change(now)).empty());
    d.on_primary_changed("b1", g.find("b1")->generation, now, 0);
    failovers.push_back(now);
  }
  REQUIRE(failovers.size() >= 2);
  CHECK(failovers.size() <= 6);
  for (size_t i = 1; i < failovers.size(); ++i) CHECK(failovers[i] - failovers[i - 1] >= 10000);
}

TEST_CASE("decider: a new primary that died before its promotion is replaced at once",
          "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1});
  ReplicationGroups g = groups();
  d.on_report({1, {primary(false), replica(R1, true, 10), replica(R2, true, 20)}}, 0);
  Assessment a = d.evaluate("b1", *g.find("b1"), 0);
  REQUIRE(g.apply(a.decision->change(0)).empty());
  d.on_primary_changed("b1", 1, 0, 0);
  // R2 dies while the promotion waits: nobody ever saw it as a primary, so the interval does not
  // hold the group hostage. R1 still follows the old primary's stream, which R2 was on.
  d.on_report({1, {replica(R2, false, 20), replica(R1, true, 10), primary(false)}}, 100);
  a = d.evaluate("b1", *g.find("b1"), 100);
  REQUIRE(a.verdict == Verdict::kDecided);
  CHECK(a.decision->new_primary == R1);
  CHECK(a.decision->expected_generation == 1);
}

TEST_CASE("decider: the rate limit survives a leader change", "[failover]") {
  ReplicationGroups g = groups();
  REQUIRE(g.apply(GroupChange::set_primary("b1", R1, 0, 1000)).empty());
  // A new leader (fresh decider) applies the change when it is 4 s old by the wall clock.
  FailoverDecider d(2, options());
  d.set_voters({1, 2, 3});
  d.on_primary_changed("b1", 1, 50000, 4000);
  auto views = [&](bool up) {
    return std::vector<ServerView>{
        {R1, up, Role::kPrimary, "", false, 5}, replica(R2, true, 5, R1), replica(P, true, 4, R1)};
  };
  for (ReplicaId id : {1, 2, 3}) d.on_report({id, views(false)}, 50000);
  Assessment a = d.evaluate("b1", *g.find("b1"), 50000);
  CHECK(a.verdict == Verdict::kRateLimited);
  CHECK_THAT(a.detail, Catch::Contains("failed over 4000 ms ago"));
  CHECK_THAT(a.detail, Catch::Contains("may start in 26000 ms"));
  for (ReplicaId id : {1, 2, 3}) d.on_report({id, views(false)}, 76000);
  a = d.evaluate("b1", *g.find("b1"), 76000);
  REQUIRE(a.verdict == Verdict::kDecided);
  CHECK(a.decision->new_primary == R2);
  CHECK(a.decision->expected_generation == 1);
  // An age beyond the interval (or a clock behind) is clamped, never negative.
  FailoverDecider e(2, options());
  e.on_primary_changed("b1", 1, 100, -5000);
  e.set_voters({2});
  e.on_report({2, views(false)}, 100);
  CHECK(e.evaluate("b1", *g.find("b1"), 100).verdict == Verdict::kRateLimited);
}

TEST_CASE("decider: redirect to a replica found further ahead", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1});
  ReplicationGroups g = groups();
  d.on_report({1, {primary(false), replica(R1, true, 10), replica(R2, true, 20)}}, 0);
  Assessment a = d.evaluate("b1", *g.find("b1"), 0);
  REQUIRE(g.apply(a.decision->change(0)).empty());  // R2, generation 1
  d.on_primary_changed("b1", 1, 0, 0);
  // The reconciler found R1 ahead of R2 after the lease wait.
  d.on_report({1, {primary(false), replica(R1, true, 30), replica(R2, true, 20)}}, 500);
  std::optional<FailoverDecision> r = d.redirect("b1", *g.find("b1"), R1, 500);
  REQUIRE(r);
  CHECK(r->new_primary == R1);
  CHECK(r->expected_generation == 1);
  // Only once while it is in flight, and never to a stranger or a server the leader cannot see.
  CHECK_FALSE(d.redirect("b1", *g.find("b1"), R1, 600));
  d.on_proposal_failed("b1");
  CHECK_FALSE(d.redirect("b1", *g.find("b1"), "10.9.9.9:1", 600));
  d.on_report({1, {replica(R1, false, 30)}}, 700);
  CHECK_FALSE(d.redirect("b1", *g.find("b1"), R1, 700));
}

TEST_CASE("decider: Sentinel groups are left to Sentinel", "[failover]") {
  FailoverDecider d(1, options());
  d.set_voters({1});
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("s", P, {R1}, true)).empty());
  d.on_report({1, {primary(false), replica(R1, true, 5)}}, 0);
  CHECK(d.evaluate("s", *g.find("s"), 0).verdict == Verdict::kSentinel);
}
