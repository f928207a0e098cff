// WaitQueue: FIFO per lock, removal, wake-ups on release and at the holder's expiry, deadlines.
#include <catch2/catch.hpp>

#include <vector>

#include "lockstep/lock/wait_queue.h"

using lockstep::lock::WaitQueue;
using Ids = std::vector<WaitQueue::WaiterId>;

TEST_CASE("waiters are served first come, first served, one try at a time", "[lock][wait]") {
  WaitQueue q;
  CHECK(q.enqueue("a", 1, WaitQueue::kNever));  // first: tries at once
  CHECK_FALSE(q.enqueue("a", 2, WaitQueue::kNever));
  CHECK_FALSE(q.enqueue("a", 3, WaitQueue::kNever));
  CHECK(q.enqueue("b", 9, WaitQueue::kNever));        // another lock: its own queue
  CHECK_FALSE(q.enqueue("a", 2, WaitQueue::kNever));  // already queued
  CHECK(q.waiters("a") == 3);
  CHECK(q.trying(1));
  CHECK_FALSE(q.on_released("a"));  // 1 is already trying: no second try in parallel
  CHECK(q.on_busy(1, 5000));        // ...but that release came during its try: look again
  CHECK_FALSE(q.on_busy(1, 5000));  // busy again: now it waits
  CHECK_FALSE(q.trying(1));
  CHECK(q.on_released("a") == 1u);  // the head, never 2 or 3
  q.on_granted(1, 8000);
  CHECK(q.waiters("a") == 2);
  CHECK_FALSE(q.contains(1));
  CHECK(q.on_released("a") == 2u);
  q.on_granted(2, 9000);
  CHECK(q.on_released("a") == 3u);
  q.on_granted(3, 9000);
  CHECK(q.waiters("a") == 0);
  CHECK_FALSE(q.on_released("a"));
  CHECK(q.queues() == 1);  // only "b" is left
}

TEST_CASE("a release during a try makes the busy head look again at once", "[lock][wait]") {
  WaitQueue q;
  REQUIRE(q.enqueue("a", 1, WaitQueue::kNever));
  CHECK_FALSE(q.on_released("a"));
  CHECK(q.on_busy(1, 5000));  // try again now, do not sleep through the only wake-up
  CHECK(q.trying(1));
  CHECK_FALSE(q.on_busy(1, 5000));
  CHECK_FALSE(q.trying(1));
}

TEST_CASE("a waiter that leaves is gone at once; a trying head hands over", "[lock][wait]") {
  WaitQueue q;
  REQUIRE(q.enqueue("a", 1, WaitQueue::kNever));
  q.enqueue("a", 2, WaitQueue::kNever);
  q.enqueue("a", 3, WaitQueue::kNever);
  CHECK_FALSE(q.remove(2));  // from the middle: nobody new tries
  CHECK(q.waiters("a") == 2);
  CHECK(q.remove(1) == 3u);  // the head was trying; its round is abandoned: 3 looks now
  CHECK(q.trying(3));
  q.on_busy(3, 7000);
  q.enqueue("a", 4, WaitQueue::kNever);
  CHECK_FALSE(q.remove(3));  // head not trying: 4 inherits the wait (release or 7000)
  CHECK_FALSE(q.trying(4));
  CHECK(q.next_deadline() == 7000);
  CHECK_FALSE(q.remove(42));
  CHECK_FALSE(q.remove(4));
  CHECK(q.queues() == 0);
  CHECK(q.next_deadline() == WaitQueue::kNever);
}

TEST_CASE("deadlines and the holder's expiry wake waiters without polling", "[lock][wait]") {
  WaitQueue q;
  REQUIRE(q.enqueue("a", 1, 10000));
  q.enqueue("a", 2, 3000);
  q.enqueue("a", 3, WaitQueue::kNever);  // WAIT 0: forever
  q.on_busy(1, 5000);                    // free by itself at 5000 if nobody releases
  CHECK(q.next_deadline() == 3000);

  auto due = q.expire(2999);
  CHECK(due.timed_out.empty());
  CHECK(due.try_now.empty());
  due = q.expire(3000);
  CHECK(due.timed_out == Ids{2});
  CHECK(due.try_now.empty());
  CHECK(q.next_deadline() == 5000);
  due = q.expire(5000);
  CHECK(due.timed_out.empty());
  CHECK(due.try_now == Ids{1});
  CHECK(q.next_deadline() == 10000);  // head trying: only deadlines count now

  // The head times out while trying: the driver abandons its round and the next looks.
  due = q.expire(10000);
  CHECK(due.timed_out == Ids{1});
  CHECK(due.try_now == Ids{3});
  q.on_granted(3, 20000);
  CHECK(q.queues() == 0);
}

TEST_CASE("after a grant the next waiter wakes when the grant would expire", "[lock][wait]") {
  WaitQueue q;
  REQUIRE(q.enqueue("a", 1, WaitQueue::kNever));
  q.enqueue("a", 2, WaitQueue::kNever);
  q.on_granted(1, 4000);
  CHECK_FALSE(q.trying(2));
  CHECK(q.next_deadline() == 4000);
  CHECK(q.expire(4000).try_now == Ids{2});
}
