// Transactions across backends: the coordinator of one EXEC, as a plain state machine.
//
// What it guarantees: after EXEC, either every queued command ran on every participant backend
// (each participant's share inside one MULTI/EXEC there) or none did, also if the proxy dies at
// any step (the resolver, resolver.h, finishes what a dead coordinator started); transactions
// are serializable among themselves (every key a transaction reads, writes or watches is locked
// from its prepare to its apply, and a transaction never waits for a lock: no deadlock).
//
// Data flow. The caller (the server's TxnJob) feeds replies in and sends what comes out; one
// participant's requests all go over one connection, so its replies come back in order:
//
//   one backend (fast path), on the connection that carries the client's WATCH if any:
//     WATCH poison locks...  EVAL check-unlocked  MULTI  cmd...  EXEC
//       -> EXEC's array is the client's reply; nil with the check's "locked" -> retry later
//   several backends:
//     1. prepare the primary      (MULTI EVAL prepare EXEC on the WATCH connection, else EVAL)
//     2. prepare the others       (same, in parallel)       any "no" -> roll back everywhere
//     3. commit point on primary  WATCH intent poison  EVAL check-prepared  MULTI
//                                 EVAL commit  cmd...  EXEC        (PREPARED -> COMMITTED)
//     4. apply on the others      WATCH intent poison  EVAL check-prepared  MULTI
//                                 EVAL finish  cmd...  EXEC        (in parallel)
//     5. clean up the primary's record (fire and forget; the resolver does it if lost)
//
// The primary is prepared before the others, so an intent on a secondary implies the primary
// had a record: a secondary whose primary has no record is aborted (presumed abort), and the
// resolver never needs tombstones. The commit point and the primary's commands are one EXEC;
// the WATCH on the intent makes that EXEC return nil if a resolver aborted it meanwhile.
//
// What it does not do: pick transaction ids, read clocks, open connections or retry (a
// conflict is an outcome; the caller decides whether and when to run the transaction again).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::txn {

// What one backend does in a transaction.
struct Participant {
  int backend = -1;
  std::string name;     // the backend's stable name (recorded in intents for resolvers)
  bool pinned = false;  // the client WATCHed keys here: its connection carries those WATCHes
  std::vector<std::string> keys;         // data keys read, written or watched here
  std::vector<std::string> absent_keys;  // keys that must not exist (MSETNX); prepare fails
  std::vector<std::string> commands;     // queued commands as RESP requests, in order
};

struct Send {
  uint32_t participant;
  std::string request;  // exactly one RESP request: one reply comes back for it
};

enum class Phase : uint8_t {
  kFastPath,        // one participant
  kPreparePrimary,  // several: steps 1..5 above
  kPrepareOthers,
  kCommit,
  kApply,
  kAbort,  // rolling back after a "no" vote
  kDone,
};

enum class Outcome : uint8_t {
  kPending,
  kCommitted,    // replies() has each participant's EXEC elements
  kWatchFailed,  // a WATCHed key changed: the client gets a nil reply
  kConflict,     // a key is held by another transaction: run again later (nothing applied)
  kKeyExists,    // an absent_keys key exists (MSETNX answers 0; nothing applied)
  kExecAbort,    // a backend refused a queued command: error() is its EXECABORT reply
  kFailed,       // nothing applied; error() says why (a backend down during prepare ...)
  kUnknown,      // the commit point's answer was lost: error() says so; the resolver decides
};

const char* phase_name(Phase p);

struct CoordinatorSettings {
  std::string txid;    // unique (≥ 128 bits of randomness, hex)
  std::string coord;   // this proxy's identity: for operators, and for resolvers in cluster
                       // mode, which resolve at once what a dead incarnation left (resolver.h)
  std::string poison;  // a poison key name unique to this transaction attempt
  uint64_t lease_ms = 5000;
};

class Coordinator {
 public:
  Coordinator(CoordinatorSettings settings, std::vector<Participant> participants);

  // The first requests.
  void start(std::vector<Send>& out);
  // One reply for `participant`, in the order its requests were sent.
  void on_reply(uint32_t participant, std::string_view reply, std::vector<Send>& out);

  Phase phase() const { return phase_; }
  Outcome outcome() const { return outcome_; }
  bool done() const { return phase_ == Phase::kDone; }
  const std::string& error() const { return error_; }
  // After kCommitted: the replies to participant p's commands, in its command order (raw
  // RESP). An element is an error text when its reply was lost (applied by a resolver).
  const std::vector<std::string>& replies(uint32_t p) const { return parts_[p].replies; }
  // The key that was held by another transaction (kConflict), for diagnostics.
  const std::string& conflict_key() const { return conflict_key_; }
  const std::vector<Participant>& participants() const { return participants_; }
  // Requests for the final clean-up, nobody waits for their replies (step 5).
  void cleanup_requests(std::vector<Send>& out) const;
  // The coordinator stops here (its client went away) before the transaction is done: requests
  // that hand every intent it may have written to the resolvers now (kExpireLeaseLua); nobody
  // waits for their replies. None for a single-participant fast path (it writes no intent).
  void abandon_requests(std::vector<Send>& out) const;

 private:
  // What a reply is expected to be.
  enum class Expect : uint8_t {
    kIgnore,         // +OK / +QUEUED of WATCH, MULTI and queued commands (checked at EXEC)
    kCheckUnlocked,  // the fast path's guard
    kCheckPrepared,  // commit/apply guard
    kPrepare,        // the prepare script's reply (unpinned)
    kPrepareExec,    // EXEC around the prepare script (pinned)
    kFastExec,       // the fast path's EXEC
    kCommitExec,     // the primary's commit EXEC
    kApplyExec,      // a secondary's apply EXEC
    kRollback,       // roll-back script
  };
  struct PartState {
    std::vector<Expect> expect;  // FIFO of replies still expected
    size_t next = 0;
    bool prepared = false;    // its prepare may have run (rolled back on abort)
    bool locked = false;      // fast path: its guard found a held key
    std::string queue_error;  // first error reply to a queued command
    std::vector<std::string> replies;
  };

  void push(std::vector<Send>& out, uint32_t p, std::string request, Expect e);
  void send_fast(std::vector<Send>& out);
  void send_prepare(std::vector<Send>& out, uint32_t p);
  void send_commit_or_apply(std::vector<Send>& out, uint32_t p, bool primary);
  void begin_abort(std::vector<Send>& out, Outcome why);
  bool all_replied() const;
  void take_exec_elements(uint32_t p, std::string_view exec, size_t skip);
  void on_prepare_result(uint32_t p, std::string_view result, std::vector<Send>& out);
  void advance(std::vector<Send>& out);
  std::string intent_key() const;

  CoordinatorSettings s_;
  std::vector<Participant> participants_;
  std::vector<PartState> parts_;
  Phase phase_;
  Outcome outcome_ = Outcome::kPending;
  Outcome abort_outcome_ = Outcome::kPending;
  std::string error_;
  std::string conflict_key_;
  std::string parts_list_;       // participant names, '\n'-separated, as recorded in intents
  bool apply_in_doubt_ = false;  // a secondary's apply reply was lost: keep the record
};

// EVAL <script> <nkeys> <keys...> <argv...> as one RESP request.
std::string eval_request(std::string_view script, std::span<const std::string_view> keys,
                         std::span<const std::string_view> argv);

// The key naming the lock of data key `key`.
std::string lock_key(std::string_view key);
std::string intent_key(std::string_view txid);

}  // namespace lockstep::txn
