// The lock-backend change (reconfig.h): fence a majority of every old set, seed a majority of
// the new set with the highest counters read, wait out the drain, and only then switch.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "lockstep/lock/reconfig.h"
#include "lockstep/lock/scripts.h"

using namespace lockstep::lock;

namespace {

Reply fence_dump(int64_t epoch, std::vector<std::pair<std::string, int64_t>> counters,
                 int64_t done = 0, int64_t live_ms = 0) {
  std::vector<Reply> e{Reply::of_string(std::to_string(epoch)),
                       Reply::of_string(std::to_string(done)), Reply::of_integer(live_ms)};
  for (const auto& [k, v] : counters) {
    e.push_back(Reply::of_string(k));
    e.push_back(Reply::of_string(std::to_string(v)));
  }
  return Reply::of_array(std::move(e));
}

std::vector<std::string> argv_of(const std::string& request) {
  std::vector<std::string> out;
  if (auto r = parse_reply(request))
    for (const auto& e : r->elements) out.push_back(e.text);
  return out;
}

std::set<int> targets(const Reconfig::Effects& fx, Reconfig::Kind kind) {
  std::set<int> out;
  for (const auto& s : fx.sends)
    if (s.kind == kind) out.insert(s.backend);
  return out;
}

// The value each seed write of `fx` to `backend` raises `key` to (0 if none).
int64_t seeded_value(const Reconfig::Effects& fx, int backend, const std::string& key) {
  for (const auto& s : fx.sends) {
    const auto argv = argv_of(s.request);
    if (s.backend == backend && s.kind == Reconfig::Kind::kSeed && argv.size() == 8 &&
        argv[3] == key)
      return std::stoll(argv[5]);
  }
  return 0;
}

int count_sends(const Reconfig::Effects& fx, int backend) {
  int n = 0;
  for (const auto& s : fx.sends) n += s.backend == backend ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("lock backend change: fence old majority, seed new majority, drain, switch",
          "[lock][reconfig]") {
  // {0,1,2} -> {2,3,4}: only backend 2 is in both.
  Reconfig rc(7, {{0, 1, 2}}, {2, 3, 4}, /*drain_ms=*/1000, /*bounded_by_holds=*/false);
  auto fx = rc.start(0);
  CHECK(targets(fx, Reconfig::Kind::kFence) == std::set<int>{0, 1, 2, 3, 4});
  const auto argv = argv_of(fx.sends[0].request);
  REQUIRE(argv.size() == 7);
  CHECK(argv[1] == kLockEpochLua);
  CHECK(argv[3] == "__lockstep:lockcfg");
  CHECK(argv[5] == "7");
  CHECK(argv[6] == "0");
  CHECK(rc.phase() == Reconfig::Phase::kFencing);

  // New-set answers do not count for the fence: it is the old set that must be shut.
  rc.on_reply(3, Reconfig::Kind::kFence, fence_dump(7, {}), 1);
  rc.on_reply(4, Reconfig::Kind::kFence, fence_dump(7, {}), 1);
  auto f1 = rc.on_reply(0, Reconfig::Kind::kFence,
                        fence_dump(7, {{"__lockstep:fence:a", 5}, {"__lockstep:fence:b", 9}}), 2);
  CHECK(rc.phase() == Reconfig::Phase::kFencing);
  CHECK(f1.sends.empty());
  auto f2 = rc.on_reply(1, Reconfig::Kind::kFence,
                        fence_dump(7, {{"__lockstep:fence:a", 8}, {"__lockstep:fence:c", 1}}), 3);
  REQUIRE(rc.phase() == Reconfig::Phase::kSeeding);
  CHECK(rc.drained_at() == 3 + 1000);
  CHECK(rc.fence_names() == 3);
  // Every new backend gets the epoch and the maximum of every counter read.
  for (int b : {2, 3, 4}) {
    CHECK(count_sends(f2, b) == 4);  // epoch + a, b, c
    CHECK(seeded_value(f2, b, "__lockstep:fence:a") == 8);
    CHECK(seeded_value(f2, b, "__lockstep:fence:b") == 9);
    CHECK(seeded_value(f2, b, "__lockstep:fence:c") == 1);
  }
  auto ack_all = [&](int b, int64_t now) {
    Reconfig::Effects last;
    for (const auto& s : f2.sends)
      if (s.backend == b)
        last = rc.on_reply(
            b, s.kind,
            s.request.find("lockcfg") != std::string::npos && argv_of(s.request).size() == 7
                ? fence_dump(7, {})
                : Reply::of_array({Reply::of_integer(1), Reply::of_string("1")}),
            now);
    return last;
  };
  ack_all(3, 10);
  CHECK(rc.phase() == Reconfig::Phase::kSeeding);
  auto d = ack_all(4, 11);
  REQUIRE(rc.phase() == Reconfig::Phase::kDraining);
  REQUIRE(d.timer_ms);
  CHECK(*d.timer_ms == 1003 - 11);
  CHECK_FALSE(rc.on_timer(500).done);
  auto end = rc.on_timer(1003);
  CHECK(end.done);
  CHECK(rc.phase() == Reconfig::Phase::kDone);
  CHECK_FALSE(rc.skipped());
  const auto marks = rc.completion_requests();
  REQUIRE(marks.size() == 3);
  CHECK(argv_of(marks[0].request)[6] == "1");
}

TEST_CASE("lock backend change already completed by another replica: switch at once",
          "[lock][reconfig]") {
  Reconfig rc(7, {{0, 1, 2}}, {0, 1, 2}, /*drain_ms=*/60000);
  rc.start(0);
  rc.on_reply(0, Reconfig::Kind::kFence, fence_dump(7, {}, 3), 1);  // an older change's mark
  CHECK(rc.phase() == Reconfig::Phase::kFencing);
  auto fx = rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(7, {}, 7), 1);
  CHECK(fx.done);
  CHECK(rc.skipped());
}

TEST_CASE("lock backend change: failures are asked again; every old set needs its majority",
          "[lock][reconfig]") {
  // An earlier change to {3,4,5} was still in progress here: both old sets must be fenced.
  Reconfig rc(9, {{0, 1, 2}, {3, 4, 5}}, {0, 1, 6}, 0, true, {}, /*retry_ms=*/100);
  auto fx = rc.start(0);
  CHECK(fx.timer_ms == 100);
  rc.on_reply(0, Reconfig::Kind::kFence, fence_dump(9, {{"__lockstep:fence:x", 3}}), 1);
  rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(9, {}), 1);
  rc.on_reply(3, Reconfig::Kind::kFence, fence_dump(9, {{"__lockstep:fence:x", 4}}), 1);
  rc.on_reply(4, Reconfig::Kind::kFence, Reply::of_error("LOADING Redis is loading"), 1);
  rc.on_failure(5, Reconfig::Kind::kFence, 1);
  CHECK(rc.phase() == Reconfig::Phase::kFencing);  // {3,4,5} has only one answer
  // A reply to a request that failed is not taken (it was not asked again yet).
  rc.on_reply(5, Reconfig::Kind::kFence, fence_dump(9, {}), 2);
  CHECK(rc.phase() == Reconfig::Phase::kFencing);
  auto again = rc.on_timer(100);
  CHECK(targets(again, Reconfig::Kind::kFence) == std::set<int>{2, 4, 5});
  auto s = rc.on_reply(5, Reconfig::Kind::kFence, fence_dump(12, {{"__lockstep:fence:x", 2}}), 101);
  REQUIRE(rc.phase() == Reconfig::Phase::kSeeding);
  CHECK(seeded_value(s, 6, "__lockstep:fence:x") == 4);
  // Backend 6 fails one write: it is seeded again in full at the next retry, and the change
  // waits for a majority of {0,1,6} to have everything.
  for (const auto& x : s.sends)
    if (x.backend == 0) rc.on_reply(0, x.kind, fence_dump(9, {}), 102);
  for (const auto& x : s.sends)
    if (x.backend == 6) rc.on_failure(6, x.kind, 102);
  CHECK(rc.phase() == Reconfig::Phase::kSeeding);
  auto retry = rc.on_timer(200);
  CHECK(count_sends(retry, 6) == 2);
  CHECK(count_sends(retry, 1) == 0);  // still pending from the first send: not duplicated
  Reconfig::Effects last;
  for (const auto& x : retry.sends) last = rc.on_reply(6, x.kind, fence_dump(9, {}), 201);
  CHECK(last.done);  // drain 0: switch as soon as a majority of the new set is seeded
}

TEST_CASE("lock backend change: the drain lasts as long as the longest old hold, at most drain_ms",
          "[lock][reconfig]") {
  SECTION("holds still alive on the fenced majority") {
    Reconfig rc(3, {{0, 1, 2}}, {3, 4, 5}, /*drain_ms=*/60000);
    rc.start(0);
    rc.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}, 0, 800), 10);
    rc.on_reply(2, Reconfig::Kind::kFence, fence_dump(3, {}, 0, 2000), 20);
    REQUIRE(rc.phase() == Reconfig::Phase::kSeeding);
    CHECK(rc.drained_at() == 20 + 2000 + 2000 / 50 + 5);  // the longest, plus the margin
    // A late answer from the third old backend changes nothing: the fence was already held.
    rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}, 0, 50000), 30);
    CHECK(rc.drained_at() == 20 + 2000 + 2000 / 50 + 5);
  }
  SECTION("no holds: nothing to wait for") {
    Reconfig rc(3, {{0, 1, 2}}, {0, 1, 2, 3}, /*drain_ms=*/60000);
    rc.start(0);
    rc.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(rc.drained_at() == 1 + 5);
  }
  SECTION("capped by drain_ms, and all of it when the keys cannot be trusted") {
    Reconfig capped(3, {{0, 1, 2}}, {3}, /*drain_ms=*/1000);
    capped.start(0);
    capped.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}, 0, 86400000), 1);
    capped.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(capped.drained_at() == 1 + 1000);
    Reconfig untrusted(3, {{0, 1, 2}}, {3}, /*drain_ms=*/1000, /*bounded_by_holds=*/false);
    untrusted.start(0);
    untrusted.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    untrusted.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(untrusted.drained_at() == 1 + 1000);
  }
  SECTION("a backend that may have lost its keys voids the bound") {
    Reconfig rc(3, {{0, 1, 2}}, {3}, /*drain_ms=*/1000, true, /*untrusted=*/{2});
    rc.start(0);
    rc.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(rc.drained_at() == 1 + 5);  // 2 is untrusted but did not count
    rc.distrust(1);                   // its connection broke later: it may have restarted
    CHECK(rc.drained_at() == 1 + 1000);
    Reconfig counted(3, {{0, 1, 2}}, {3}, 1000, true, {2});
    counted.start(0);
    counted.on_reply(0, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    counted.on_reply(2, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(counted.drained_at() == 1 + 1000);
  }
  SECTION("a reply without the hold report is a failure") {
    Reconfig rc(3, {{0, 1, 2}}, {3}, 1000);
    rc.start(0);
    rc.on_reply(0, Reconfig::Kind::kFence,
                Reply::of_array({Reply::of_string("3"), Reply::of_string("0")}), 1);
    rc.on_reply(1, Reconfig::Kind::kFence, fence_dump(3, {}), 1);
    CHECK(rc.phase() == Reconfig::Phase::kFencing);
  }
}
