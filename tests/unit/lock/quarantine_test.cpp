// Quarantine rules (restart, clock jump, verification) and fence re-seeding.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lockstep/lock/quarantine.h"

using namespace lockstep::lock;
using Status = Quarantine::Status;

namespace {

LockSettings settings() {
  LockSettings s;
  s.max_ttl_ms = 10000;
  s.quarantine_ms = 10000;
  s.clock_jump_tolerance_ms = 50;
  return s;
}

}  // namespace

TEST_CASE("a backend votes only once its connection was verified", "[lock][quarantine]") {
  Quarantine q(settings(), 3);
  CHECK(q.status(0, 0) == Status::kUnverified);
  CHECK(q.backends(0).eligible.empty());
  CHECK(q.backends(0).total == 3);
  q.observe_run_id(0, "run-a", 0);
  q.observe_run_id(2, "run-c", 0);
  CHECK(q.backends(0).eligible == std::vector<BackendId>{0, 2});
  q.on_disconnected(2);
  CHECK(q.status(2, 1) == Status::kUnverified);
  q.observe_run_id(2, "run-c", 5);  // same process: back at once
  CHECK(q.eligible(2, 5));
  CHECK(q.status(7, 0) == Status::kUnverified);  // unknown ids are never eligible
}

TEST_CASE("a restarted backend is out for quarantine_ms and until re-seeded",
          "[lock][quarantine]") {
  Quarantine q(settings(), 3);
  q.observe_run_id(1, "run-1", 0);
  q.on_disconnected(1);
  q.observe_run_id(1, "run-2", 1000);
  CHECK(q.status(1, 1000) == Status::kQuarantined);
  CHECK(q.reason(1) == "restarted (run_id changed)");
  CHECK(q.quarantined_until(1) == 11000);
  CHECK(q.next_change(1000) == 11000);
  CHECK(q.status(1, 10999) == Status::kQuarantined);
  CHECK(q.status(1, 11000) == Status::kNeedsReseed);  // time served, counters not restored yet
  CHECK(q.needs_reseed(1));
  q.mark_reseeded(1);
  CHECK(q.eligible(1, 11000));
  CHECK_FALSE(q.next_change(11000));
}

TEST_CASE("the quarantine defaults to max_ttl_ms + lock_delay_ms", "[lock][quarantine]") {
  LockSettings s;
  s.max_ttl_ms = 30000;
  s.lock_delay_ms = 5000;
  Quarantine q(s, 1);
  q.observe_run_id(0, "a", 0);
  q.observe_run_id(0, "b", 100);
  CHECK(q.quarantined_until(0) == 100 + 35000);
}

TEST_CASE("a shorter quarantine applies only once holds of the longer one have expired",
          "[lock][quarantine]") {
  Quarantine q(settings(), 3);  // 10 s
  q.observe_run_id(0, "run-a", 0);
  LockSettings shorter = settings();
  shorter.max_ttl_ms = 2000;
  shorter.quarantine_ms.reset();  // max_ttl + lock_delay = 2 s
  q.update(shorter, 1000);
  CHECK(q.window(1000) == 10000);  // grants of up to 10 s may still be alive
  CHECK(q.window(10999) == 10000);
  CHECK(q.window(11000) == 2000);
  q.observe_run_id(0, "run-b", 5000);  // restarted while the old window is in force
  CHECK(q.quarantined_until(0) == 15000);
  LockSettings longer = settings();
  longer.quarantine_ms = 30000;
  q.update(longer, 20000);
  CHECK(q.window(20000) == 30000);  // longer: at once
}

TEST_CASE("first sight: a short uptime quarantines for the rest of the window",
          "[lock][quarantine]") {
  Quarantine q(settings(), 3);
  q.observe_run_id(0, "a", 50000, 3);     // up 3 s of a 10 s window: 7 s left, +1 s rounding
  q.observe_run_id(1, "b", 50000, 3600);  // up an hour: trusted
  q.observe_run_id(2, "c", 50000);        // uptime unknown: trusted
  CHECK(q.status(0, 50000) == Status::kQuarantined);
  CHECK(q.quarantined_until(0) == 50000 + 8000);
  CHECK(q.reason(0) == "started recently");
  CHECK(q.needs_reseed(0));
  CHECK(q.eligible(1, 50000));
  CHECK(q.eligible(2, 50000));
}

TEST_CASE("a clock jump quarantines; drift, noise and imprecise samples do not",
          "[lock][quarantine]") {
  Quarantine q(settings(), 2);
  q.observe_run_id(0, "a", 0);
  const int64_t epoch_us = 1'700'000'000'000'000;
  // Backend wall clock = epoch + our monotonic time; samples every second, 2 ms round trips.
  q.observe_time(0, epoch_us + 1000 * 1000 + 1000, 1000, 1002);
  q.observe_time(0, epoch_us + 2000 * 1000 + 1000 + 900, 2000, 2002);   // 0.9 ms of noise
  q.observe_time(0, epoch_us + 3000 * 1000 + 1000 + 9000, 3000, 3002);  // 1%/s drift: 9 ms
  CHECK(q.eligible(0, 3002));
  q.observe_time(0, epoch_us + 4000 * 1000 + 1000 + 500000, 4000, 4800);  // 800 ms rtt: ignored
  CHECK(q.eligible(0, 4800));
  q.observe_time(0, epoch_us + 5000 * 1000 + 1000 + 9000 + 120000, 5000, 5002);  // +120 ms
  CHECK(q.status(0, 5002) == Status::kQuarantined);
  CHECK(q.reason(0) == "clock jumped by 120 ms");
  CHECK(q.quarantined_until(0) == 5002 + 10000);
  CHECK_FALSE(q.needs_reseed(0));  // its data is intact: time alone brings it back
  CHECK(q.eligible(0, 15002));
  // The new offset is the baseline: the clock staying there is no further jump.
  q.observe_time(0, epoch_us + 16000 * 1000 + 1000 + 9000 + 120000, 16000, 16002);
  CHECK(q.eligible(0, 16002));
  // Backwards counts too.
  q.observe_time(0, epoch_us + 17000 * 1000 + 1000 + 9000, 17000, 17002);
  CHECK(q.status(0, 17002) == Status::kQuarantined);
}

TEST_CASE("fence re-seed reads a quorum of the others and raises the target to the maximum",
          "[lock][quarantine]") {
  FenceReseed r(2, 5);  // backend 2 restarted; quorum of 5 is 3
  CHECK(r.add(0, "__lockstep:fence:a", 7));
  CHECK(r.add(0, "__lockstep:fence:b", 3));
  CHECK_FALSE(r.add(2, "__lockstep:fence:a", 99));  // the target's own (lost) data
  CHECK_FALSE(r.add(0, "__lockstep:lock:a", 1));    // not a fence key
  r.source_complete(0);
  CHECK(r.add(1, "__lockstep:fence:a", 9));
  r.source_complete(1);
  r.source_complete(2);  // the target does not count
  CHECK_FALSE(r.ready());
  CHECK(r.add(4, "__lockstep:fence:c:with:colons", 1));
  r.source_complete(4);
  r.source_complete(4);
  CHECK(r.ready());
  CHECK(r.names() == 3);
  const auto reqs = r.requests(0);
  REQUIRE(reqs.size() == 3);
  auto argv = [](const std::string& req) {
    std::vector<std::string> out;
    const auto reply = parse_reply(req);
    for (const auto& e : reply->elements) out.push_back(e.text);
    return out;
  };
  // EVAL fence-write <key> <max> '0' (strict raise: never lowers what the target has).
  CHECK(argv(reqs[0]) == std::vector<std::string>{"EVAL", std::string(kFenceWriteLua), "2",
                                                  "__lockstep:fence:a", "__lockstep:lockcfg", "9",
                                                  "0", "0"});
  CHECK(argv(reqs[1])[5] == "3");
  CHECK(argv(reqs[2])[3] == "__lockstep:fence:c:with:colons");
}
