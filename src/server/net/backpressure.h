// When a client's requests stop being read. Two budgets bound what one client can make Lockstep
// hold: requests in flight (limits.client_max_inflight) and reply bytes queued for it
// (limits.client_max_queued_bytes). Past either, its socket is not read until both fall below
// half (so a client at the limit does not flap); the kernel's buffers then push back on the
// client. Input that waits behind a barrier (a blocked command, a pause) is read on, as Redis
// reads a blocked client, so a disconnect is seen at once; past the queued-bytes limit the
// client is closed instead, as Redis closes a client whose query buffer passes its limit.
#pragma once

#include <cstddef>

namespace lockstep::server {

struct BackpressureLimits {
  size_t max_inflight = 0;
  size_t max_queued_bytes = 0;
};

enum class ReadAction { kNone, kPause, kResume };

inline ReadAction read_action(bool paused, size_t inflight, size_t queued_bytes,
                              const BackpressureLimits& l) {
  const bool over = inflight >= l.max_inflight || queued_bytes >= l.max_queued_bytes;
  if (over) return paused ? ReadAction::kNone : ReadAction::kPause;
  if (!paused) return ReadAction::kNone;
  return inflight <= l.max_inflight / 2 && queued_bytes <= l.max_queued_bytes / 2
             ? ReadAction::kResume
             : ReadAction::kNone;
}

// Unparsed input held back by a barrier past the limit: the client is closed.
inline bool held_input_over(size_t unparsed_bytes, const BackpressureLimits& l) {
  return unparsed_bytes >= l.max_queued_bytes;
}

}  // namespace lockstep::server
