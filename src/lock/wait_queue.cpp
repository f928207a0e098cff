// Per-lock FIFO of waiters; see wait_queue.h for when the head tries.
#include "lockstep/lock/wait_queue.h"

#include <algorithm>

namespace lockstep::lock {

std::optional<WaitQueue::WaiterId> WaitQueue::start_head(Queue& q) {
  if (q.fifo.empty() || q.head_trying) return std::nullopt;
  q.head_trying = true;
  q.released_while_trying = false;
  q.retry_at_ms = kNever;
  return q.fifo.front().id;
}

void WaitQueue::erase_if_empty(Queues::iterator it) {
  if (it != queues_.end() && it->second.fifo.empty()) queues_.erase(it);
}

WaitQueue::Queues::iterator WaitQueue::head_of(WaiterId id) {
  auto w = where_.find(id);
  if (w == where_.end()) return queues_.end();
  auto it = queues_.find(w->second);
  if (it == queues_.end() || it->second.fifo.empty() || it->second.fifo.front().id != id)
    return queues_.end();
  return it;
}

bool WaitQueue::enqueue(std::string_view name, WaiterId id, int64_t deadline_ms) {
  if (where_.count(id) != 0) return false;
  auto it = queues_.find(name);
  if (it == queues_.end()) it = queues_.emplace(std::string(name), Queue{}).first;
  it->second.fifo.push_back(Waiter{id, deadline_ms});
  where_.emplace(id, std::string(name));
  return it->second.fifo.size() == 1 && start_head(it->second).has_value();
}

std::optional<WaitQueue::WaiterId> WaitQueue::remove(WaiterId id) {
  auto w = where_.find(id);
  if (w == where_.end()) return std::nullopt;
  auto it = queues_.find(w->second);
  where_.erase(w);
  if (it == queues_.end()) return std::nullopt;
  Queue& q = it->second;
  std::optional<WaiterId> next;
  if (!q.fifo.empty() && q.fifo.front().id == id) {
    const bool was_trying = q.head_trying;
    q.fifo.pop_front();
    q.head_trying = false;
    // Its round was abandoned and undone: the lock may be free now, so the next one looks.
    if (was_trying) next = start_head(q);
  } else {
    q.fifo.erase(
        std::remove_if(q.fifo.begin(), q.fifo.end(), [id](const Waiter& x) { return x.id == id; }),
        q.fifo.end());
  }
  erase_if_empty(it);
  return next;
}

void WaitQueue::on_granted(WaiterId id, int64_t free_at_ms) {
  auto it = head_of(id);
  if (it == queues_.end()) return;
  Queue& q = it->second;
  q.fifo.pop_front();
  where_.erase(id);
  q.head_trying = false;
  q.released_while_trying = false;
  q.retry_at_ms = free_at_ms;
  erase_if_empty(it);
}

bool WaitQueue::on_busy(WaiterId id, int64_t retry_at_ms) {
  auto it = head_of(id);
  if (it == queues_.end()) return false;
  Queue& q = it->second;
  if (q.released_while_trying) {
    // The release may have come after the backends answered "busy": look again now rather
    // than sleep through the only wake-up.
    q.released_while_trying = false;
    return true;
  }
  q.head_trying = false;
  q.retry_at_ms = retry_at_ms;
  return false;
}

std::optional<WaitQueue::WaiterId> WaitQueue::on_released(std::string_view name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) return std::nullopt;
  Queue& q = it->second;
  if (q.head_trying) {
    q.released_while_trying = true;
    return std::nullopt;
  }
  return start_head(q);
}

int64_t WaitQueue::next_deadline() const {
  int64_t next = kNever;
  for (const auto& [name, q] : queues_) {
    if (!q.head_trying) next = std::min(next, q.retry_at_ms);
    for (const Waiter& w : q.fifo) next = std::min(next, w.deadline_ms);
  }
  return next;
}

WaitQueue::Due WaitQueue::expire(int64_t now_ms) {
  Due due;
  for (auto it = queues_.begin(); it != queues_.end();) {
    Queue& q = it->second;
    const bool head_was_trying = q.head_trying;
    const WaiterId head = q.fifo.front().id;
    bool head_left = false;
    for (auto w = q.fifo.begin(); w != q.fifo.end();) {
      if (w->deadline_ms <= now_ms) {
        head_left = head_left || w->id == head;
        due.timed_out.push_back(w->id);
        where_.erase(w->id);
        w = q.fifo.erase(w);
      } else {
        ++w;
      }
    }
    if (head_left) q.head_trying = false;
    const bool retry_due = !q.head_trying && q.retry_at_ms <= now_ms;
    if ((head_left && head_was_trying) || retry_due) {
      if (auto next = start_head(q)) due.try_now.push_back(*next);
    }
    if (q.fifo.empty()) {
      it = queues_.erase(it);
    } else {
      ++it;
    }
  }
  return due;
}

size_t WaitQueue::waiters(std::string_view name) const {
  auto it = queues_.find(name);
  return it == queues_.end() ? 0 : it->second.fifo.size();
}

bool WaitQueue::trying(WaiterId id) const {
  auto w = where_.find(id);
  if (w == where_.end()) return false;
  auto it = queues_.find(w->second);
  return it != queues_.end() && !it->second.fifo.empty() && it->second.fifo.front().id == id &&
         it->second.head_trying;
}

}  // namespace lockstep::lock
