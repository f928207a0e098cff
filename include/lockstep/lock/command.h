// The LOCK.* commands: arguments in, reply bytes out. Pure functions; the driver routes.
//
//   LOCK.ACQUIRE <name> <ttl-ms> [WAIT <ms>] [OWNER <id>] [KEEPALIVE]
//       -> [token, fence, validity-ms] | nil (held by someone else / WAIT ran out)
//   LOCK.RELEASE <name> <token>             -> 1 | 0
//   LOCK.EXTEND <name> <token> <ttl-ms>     -> validity-ms | 0
//   LOCK.STATUS <name>                      -> {held, fence, ttl-ms, waiters}
//   LOCK.GUARD <name> <fence> <command> [args...] -> the command's reply | -STALEFENCE ...
//
// Error codes a client can tell apart: ERR (invalid arguments), NOQUORUM (fewer than a
// majority of lock backends answered; says how many and how each voted), LOCKCONFIG (lock
// backends refuse the scripts: read-only replica, ACL, wrong key type...), LOCKTIMEOUT (the
// backends were too slow for the ttl), STALEFENCE (from LOCK.GUARD).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lockstep/lock/redlock.h"

namespace lockstep::lock {

// Largest fence LOCK.GUARD accepts: Lua compares numbers as doubles, exact up to 2^53.
inline constexpr int64_t kMaxFence = int64_t{1} << 53;
// Longest WAIT (a year), so deadlines never overflow.
inline constexpr int64_t kMaxWaitMs = int64_t{365} * 24 * 3600 * 1000;

struct ArgError {
  std::string text;  // "ERR ..."
};

struct AcquireArgs {
  std::string name;
  int64_t ttl_ms = 0;
  std::optional<int64_t> wait_ms;  // WAIT given; 0 = forever
  std::string owner;               // "" = no OWNER
  bool keepalive = false;
};
struct ReleaseArgs {
  std::string name;
  std::string token;
};
struct ExtendArgs {
  std::string name;
  std::string token;
  int64_t ttl_ms = 0;
};
struct StatusArgs {
  std::string name;
};
struct GuardArgs {
  std::string name;
  int64_t fence = 0;
  std::span<const std::string_view> command;  // the wrapped command: a view into argv
};

// argv[0] is the command name as the client sent it.
std::variant<AcquireArgs, ArgError> parse_acquire(std::span<const std::string_view> argv,
                                                  const LockSettings& settings);
std::variant<ReleaseArgs, ArgError> parse_release(std::span<const std::string_view> argv);
std::variant<ExtendArgs, ArgError> parse_extend(std::span<const std::string_view> argv,
                                                const LockSettings& settings);
std::variant<StatusArgs, ArgError> parse_status(std::span<const std::string_view> argv);
std::variant<GuardArgs, ArgError> parse_guard(std::span<const std::string_view> argv);

// Replies. `names` name the lock backends in error texts; `protocol` is the client's (2 or 3).
// A Cancelled outcome appends nothing (the client is gone).
void append_acquire_reply(std::string& out, const AcquireOutcome& outcome,
                          std::span<const std::string> names, int protocol);
void append_release_reply(std::string& out, const ReleaseOutcome& outcome,
                          std::span<const std::string> names, int protocol);
void append_extend_reply(std::string& out, const ExtendOutcome& outcome,
                         std::span<const std::string> names, int protocol);
void append_status_reply(std::string& out, const StatusOutcome& outcome, size_t waiters,
                         std::span<const std::string> names, int protocol);

}  // namespace lockstep::lock
