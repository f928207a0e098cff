// When a client's reads pause and resume (net/backpressure.h), and CLIENT PAUSE's rules
// (net/client_pause.h): both decided without a socket or a clock of their own.
#include "server/net/backpressure.h"

#include <catch2/catch.hpp>

#include "server/net/client_pause.h"

namespace lockstep::server {
namespace {

const BackpressureLimits kLimits{100, 1000};

TEST_CASE("reading pauses at either limit and resumes below half of both",
          "[server][backpressure]") {
  CHECK(read_action(false, 99, 999, kLimits) == ReadAction::kNone);
  CHECK(read_action(false, 100, 0, kLimits) == ReadAction::kPause);
  CHECK(read_action(false, 0, 1000, kLimits) == ReadAction::kPause);
  CHECK(read_action(true, 150, 0, kLimits) == ReadAction::kNone);  // already paused
  // Below the limits but not below half: stays paused (no flapping at the limit).
  CHECK(read_action(true, 99, 0, kLimits) == ReadAction::kNone);
  CHECK(read_action(true, 50, 501, kLimits) == ReadAction::kNone);
  CHECK(read_action(true, 50, 500, kLimits) == ReadAction::kResume);
  CHECK(read_action(false, 50, 500, kLimits) == ReadAction::kNone);
}

TEST_CASE("input held behind a barrier closes the client past the byte limit",
          "[server][backpressure]") {
  CHECK_FALSE(held_input_over(999, kLimits));
  CHECK(held_input_over(1000, kLimits));
}

TEST_CASE("CLIENT PAUSE never shortens a pause and ALL wins while both last",
          "[server][client_pause]") {
  ClientPause p;
  CHECK_FALSE(p.set());
  p.pause(1000, 500, false);  // WRITE until 1500
  CHECK(p.holds(1200, true));
  CHECK_FALSE(p.holds(1200, false));  // reads go on
  p.pause(1100, 100, true);           // ALL until 1200: extends nothing, but ALL wins
  CHECK(p.until_ms() == 1500);
  CHECK(p.holds(1150, false));
  CHECK_FALSE(p.holds(1500, true));  // over at the deadline
  p.expire(1500);
  CHECK_FALSE(p.set());
  p.pause(2000, 10, false);  // a new pause after the old one ended starts afresh: WRITE only
  CHECK_FALSE(p.holds(2005, false));
  p.unpause();
  CHECK_FALSE(p.holds(2005, true));
}

TEST_CASE("an expired pause is not cleared when it was extended meanwhile",
          "[server][client_pause]") {
  ClientPause p;
  p.pause(0, 100, true);
  p.pause(50, 200, true);  // until 250
  p.expire(100);           // the timer of the first deadline fires late
  CHECK(p.until_ms() == 250);
  CHECK(p.holds(200, false));
}

}  // namespace
}  // namespace lockstep::server
