// Failpoints: named steps of the commit protocol where a test makes Lockstep crash, stall or
// drop a message. Compiled in always (a hit costs one lookup in a tiny table, and only on the
// cross-backend path); enabled only by `transactions.failpoints` or LOCKSTEP_FAILPOINTS.
//
// Spec: comma-separated `point=action[@n]`, action one of
//   crash        the process dies at once (as kill -9: no clean-up, no flush)
//   stall:<ms>   this transaction stops for <ms> (its lease may run out meanwhile)
//   drop         the requests of the next step are not sent (the transaction hangs until its
//                client gives up; the resolver finishes it once the lease expires)
// `@n` fires on the n-th hit only (default: every hit).
//
// Points (Phase names from coordinator.h, in protocol order):
//   txn.before_prepare  txn.after_prepare_primary  txn.after_prepare  txn.after_commit
//   txn.after_apply     txn.resolver.before_apply
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::txn {

struct FailAction {
  enum class Kind : uint8_t { kCrash, kStall, kDrop };
  Kind kind = Kind::kCrash;
  uint64_t stall_ms = 0;
};

class Failpoints {
 public:
  // Parses a spec; an error text when it is malformed.
  static std::optional<std::string> parse(std::string_view spec, Failpoints& out);
  // The action for a hit of `point` now, if one fires. Thread-safe.
  std::optional<FailAction> hit(std::string_view point);
  bool empty() const { return points_.empty(); }

 private:
  struct Point {
    std::string name;
    FailAction action;
    uint64_t nth = 0;  // 0 = every hit
    std::unique_ptr<std::atomic<uint64_t>> hits = std::make_unique<std::atomic<uint64_t>>(0);
  };
  std::vector<Point> points_;
};

}  // namespace lockstep::txn
