// LOCK.ACQUIRE ... WAIT: who tries next, and when, on this replica.
//
// Waiters queue per lock name, first come first served. Only the head of a queue tries (runs
// an AcquireRound) at a time; the others wait for it to leave. The head tries
//   - at once when it becomes head after a head that was trying left (disconnect, timeout),
//   - when the lock is released (on_released: a local release, or the pub/sub notification
//     from another replica on released_channel(name)),
//   - when the lock would free itself (Busy::retry_after_ms, or the end of a grant's validity
//     plus lock_delay for the waiter behind a new holder), in case no release ever comes.
// So a waiter never polls: it wakes on an event or at the one moment the holder's ttl ends.
// A waiter that disconnects leaves at once (remove). FIFO holds per replica; across replicas
// the order is whoever reaches a quorum first.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lockstep::lock {

class WaitQueue {
 public:
  using WaiterId = uint64_t;
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  // Adds a waiter (deadline kNever for WAIT 0). True if it should try now: it is the head and
  // nobody is trying. False if `id` is already queued.
  bool enqueue(std::string_view name, WaiterId id, int64_t deadline_ms);
  // The waiter leaves (disconnected, gave up, or failed with an error). Returns the waiter that
  // should try now: the new head, if the one that left was trying.
  std::optional<WaiterId> remove(WaiterId id);
  // The trying head was granted the lock: it leaves; the next waits for a release or until
  // `free_at_ms` (the grant's validity end plus lock_delay), whichever comes first.
  void on_granted(WaiterId id, int64_t free_at_ms);
  // The trying head found the lock busy: it waits for a release or until `retry_at_ms`.
  // Returns true if a release arrived while it was trying: then it should try again at once
  // (it stays "trying").
  bool on_busy(WaiterId id, int64_t retry_at_ms);
  // The lock was released: the head that should try now, if any.
  std::optional<WaiterId> on_released(std::string_view name);

  // The earliest waiter deadline or retry time (kNever if none): when to call expire().
  int64_t next_deadline() const;
  struct Due {
    std::vector<WaiterId> timed_out;  // removed: reply nil (abandon its round if trying)
    std::vector<WaiterId> try_now;    // now trying: start an AcquireRound for each
  };
  Due expire(int64_t now_ms);

  size_t waiters(std::string_view name) const;
  bool contains(WaiterId id) const { return where_.count(id) != 0; }
  bool trying(WaiterId id) const;
  size_t queues() const { return queues_.size(); }

 private:
  struct Waiter {
    WaiterId id;
    int64_t deadline_ms;
  };
  struct Queue {
    std::deque<Waiter> fifo;
    bool head_trying = false;
    bool released_while_trying = false;
    int64_t retry_at_ms = kNever;
  };
  using Queues = std::map<std::string, Queue, std::less<>>;

  Queues::iterator head_of(WaiterId id);
  std::optional<WaiterId> start_head(Queue& q);
  void erase_if_empty(Queues::iterator it);

  Queues queues_;
  std::unordered_map<WaiterId, std::string> where_;
};

}  // namespace lockstep::lock
