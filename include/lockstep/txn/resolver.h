// Recovery of transactions whose coordinator died: the resolver, as plain state machines.
//
// Every replica scans each backend's __lockstep:tx:active set for intents whose lease expired
// (on that backend's clock) and resolves each one from what the backends say, never from
// anything a proxy remembers:
//
//   found on the primary:   ask the primary (EVAL decide: an expired PREPARED becomes ABORTED)
//       COMMITTED -> apply every secondary's redo (idempotent), then drop the record
//       ABORTED   -> roll back every secondary, then drop the record
//       PREPARED  -> leased: leave it;  no record -> nothing to do
//   found on a secondary:   ask its primary the same question
//       COMMITTED -> apply this secondary's redo;  ABORTED or no record -> roll it back
//       PREPARED  -> leased: leave it
//
// In cluster mode an intent whose coordinator is known dead (is_abandoned below) is resolved
// the same way without waiting for its lease: the question to the primary then aborts a
// PREPARED record at once. That is what an expired lease does too, and it is safe even if the
// coordinator were alive: its commit point checks the record under WATCH (coordinator.h).
//
// "No record on the primary" means aborted because the coordinator prepares the primary before
// any secondary and drops the primary's record only after every secondary applied (presumed
// abort, with no tombstones). Applying a redo is guarded like the coordinator's own apply
// (WATCH on the intent, then a check and MULTI ... EXEC), so a coordinator and any number of
// resolvers racing on one transaction apply it exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::txn {

struct ScannedIntent {
  std::string txid;
  char state = 'P';  // P, C, A
  char role = 's';   // p(rimary), s(econdary)
  std::string primary;
  std::vector<std::string> parts;  // participant backend names, the primary first
  size_t ncmds = 0;
  std::string redo;
  std::string coord;       // only from the abandoned scan
  bool abandoned = false;  // its coordinator is dead: decide without waiting for the lease
};

// Parses the reply of the scan script (kScanLua). False on a malformed reply.
bool parse_scan(std::string_view reply, std::vector<ScannedIntent>& out);
// The scan request for one backend (at most `limit` intents).
std::string scan_request(size_t limit);

// ---- Dead coordinators (cluster mode) ----
//
// A replica's coordinator identity names its replica and incarnation: "r<id>.<k>/<process>",
// <process> being "<host>/<pid>/<random>". Each process start bumps its replica's incarnation
// through the replicated log and adopts only the value applied after its own bump, so a later
// process of the same replica always ends up with a higher value: once the replicated
// incarnation of <id> exceeds k, the process that wrote k has been replaced, and what it left
// behind is abandoned. Identities without the tag (no `cluster` section, or a transaction
// begun before the bump applied) are resolved by lease only.

struct CoordinatorTag {
  uint64_t replica = 0;
  uint64_t incarnation = 0;
  bool operator==(const CoordinatorTag&) const = default;
};
// Replica id -> its current replicated incarnation.
using Incarnations = std::map<uint64_t, uint64_t>;

// "<process>" without a tag, "r<id>.<k>/<process>" with one. `process` must be three
// '/'-separated fields (that is how a tagged id is told from a host that looks like a tag).
std::string coordinator_id(const std::optional<CoordinatorTag>& tag, std::string_view process);
// The tag of a coordinator identity; nullopt for an untagged or malformed one.
std::optional<CoordinatorTag> parse_coordinator(std::string_view coord);
// True when `coord` names an incarnation older than its replica's current one. A replica that
// is no longer a member is not presumed dead (it may still be serving): lease only.
bool is_abandoned(std::string_view coord, const Incarnations& current);
// The abandoned scan for one backend (kScanAbandonedLua, at most `limit` unexpired intents
// looked at); empty when nothing can be abandoned yet (every adopted tag is at least 1, so
// only a replica past its first incarnation can have left anything behind).
std::string scan_abandoned_request(size_t limit, const Incarnations& current);
// Parses its reply: rows as parse_scan's plus the coordinator (`abandoned` is left false: the
// caller decides with is_abandoned). False on a malformed reply.
bool parse_abandoned_scan(std::string_view reply, std::vector<ScannedIntent>& out);

enum class Verdict : uint8_t { kPending, kLeased, kRolledForward, kRolledBack, kGone, kError };
const char* verdict_name(Verdict v);

class Resolution {
 public:
  struct Request {
    std::string backend;  // by name
    uint32_t tag;         // passed back with the reply
    std::string request;  // one RESP request
  };

  // `here`: the backend the intent was found on.
  Resolution(std::string here, ScannedIntent intent);

  void start(std::vector<Request>& out);
  void on_reply(uint32_t tag, std::string_view reply, std::vector<Request>& out);
  bool done() const { return verdict_ != Verdict::kPending; }
  Verdict verdict() const { return verdict_; }
  const std::string& error() const { return error_; }
  const ScannedIntent& intent() const { return intent_; }

 private:
  enum class Step : uint8_t { kDecide, kFetchRedo, kApply, kRollback, kCleanup };
  struct Tag {
    Step step;
    bool counted;  // a reply the current fan-out waits for (an apply burst: only its EXEC)
    std::string backend;
  };
  void send(std::vector<Request>& out, const std::string& backend, Step step, std::string request,
            bool counted = true);
  void apply_on(std::vector<Request>& out, const std::string& backend, std::string_view redo);
  void finish_fanout(std::vector<Request>& out);

  std::string here_;
  ScannedIntent intent_;
  std::string poison_;
  Verdict verdict_ = Verdict::kPending;
  Verdict goal_ = Verdict::kPending;  // roll forward or back, once decided
  std::string error_;
  std::vector<Tag> tags_;
  size_t outstanding_ = 0;  // replies still expected for the current fan-out
  bool cleanup_sent_ = false;
};

}  // namespace lockstep::txn
