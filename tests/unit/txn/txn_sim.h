// A driver for the transaction state machines over model backends (model_backend.h), with no
// sockets: coordinators, resolver processes, orphaned requests of a crashed coordinator and
// external clients each own connections; every step delivers the next request of ONE
// connection (executed on its backend, its reply handed to its owner), and which connection
// goes next is a choice. A Chooser makes the choices: exhaustively (depth-first over every
// choice, by replay), at random from a seed, or replaying a recorded trace.
//
// Optional events, each a choice at every step while enabled:
//   crash      a coordinator dies; of the requests it had sent, each connection executes a
//              prefix (every length is a choice: 0 = all lost, all = all delivered), as on a TCP
//              connection whose peer died; the rest is lost
//   link break one coordinator connection breaks: a prefix of its requests still executes, and
//              the coordinator gets an error reply for each (and for later ones on that link)
//   stall      the leases run out while the coordinators still run: the clock jumps and every
//              resolver process starts a scan round concurrently
// Once every coordinator is done or dead, resolver rounds run (clock jump past every lease, a
// scan of every backend with kScanLua, a Resolution per intent found, deduplicated per txid as
// the server's TxnService does) until no internal key is left or max_rounds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lockstep/txn/coordinator.h"
#include "lockstep/txn/resolver.h"
#include "model_backend.h"

namespace txnmodel {

// A participant on model backend `backend` (named "b<backend>"), for the tests' schedules.
lockstep::txn::Participant part(int backend, std::vector<std::string> keys,
                                std::vector<std::string> cmds, bool pinned = false);

class Chooser {
 public:
  // Depth-first over every `explore` choice; the other choices are random from `seed`.
  static Chooser exhaustive(uint64_t seed);
  static Chooser random(uint64_t seed);
  // `of_exhaustive`: the trace comes from an exhaustive chooser (same reductions on replay).
  static Chooser replay(std::vector<size_t> trace, bool of_exhaustive);

  size_t choose(size_t n, bool explore);
  // Prepares the next run. False when the depth-first enumeration is complete.
  bool next();
  // The choices of this run (only those with more than one option).
  const std::vector<size_t>& trace() const { return trace_; }
  const std::vector<size_t>& arities() const { return arities_; }
  uint64_t seed() const { return seed_; }
  bool mode_exhaustive() const { return mode_ == Mode::kExhaustive; }
  // Whether partial-order reduction applies to a choice (enumerated ones only).
  bool reduces(bool explore) const;

 private:
  enum class Mode : uint8_t { kExhaustive, kRandom, kReplay } mode_ = Mode::kRandom;
  std::vector<std::pair<size_t, size_t>> path_;  // (choice, options) of explored choices
  size_t pos_ = 0;
  std::vector<size_t> trace_;
  std::vector<size_t> arities_;
  std::vector<size_t> replay_;
  size_t replay_pos_ = 0;
  bool replay_of_exhaustive_ = false;
  uint64_t seed_ = 0;
  uint64_t runs_ = 0;
  std::mt19937_64 rng_;
};

struct CoordSpec {
  std::vector<lockstep::txn::Participant> participants;  // backend = index of a model backend
  // Requests sent on a participant's connection before the coordinator starts (the client's
  // WATCH, and whatever it sent on that connection before MULTI): (participant, request).
  std::vector<std::pair<uint32_t, std::string>> pre;
  uint64_t lease_ms = 5000;
};

struct ExternalWrite {
  int backend = 0;
  std::string request;
};

struct Options {
  int resolvers = 1;          // resolver processes (2: they race)
  int crashes = 0;            // coordinator crashes per schedule
  int link_breaks = 0;        // coordinator connection breaks per schedule
  bool stall = false;         // the leases may run out while coordinators run
  bool lose_cleanup = true;   // the fire-and-forget clean-up may be lost
  bool explore_coord = true;  // choices while a coordinator runs: enumerated (else random)
  bool explore_post = true;   // choices after: enumerated (else random)
  bool early_round = true;    // a resolver round may start while orphaned requests remain
  int max_rounds = 4;
};

struct Scenario {
  size_t backends = 2;
  std::vector<std::vector<std::string>> init;  // requests run on each backend first
  std::vector<CoordSpec> coords;
  std::vector<ExternalWrite> external;
  Options opt;
};

struct RunResult {
  std::vector<lockstep::txn::Outcome> outcomes;
  std::vector<bool> crashed;
  std::vector<std::vector<std::vector<std::string>>> replies;  // [coord][participant][cmd]
  std::vector<int64_t> watch_check_step;  // step of the first EXEC on the pinned connection
  std::vector<int64_t> external_step;     // step at which each external write ran (-1: never)
  std::vector<std::string> dumps;         // data keys of each backend
  std::vector<std::string> internal;      // internal keys left, "backend:key"
  std::vector<std::string> problems;      // driver-level findings (errors of resolutions ...)
  std::vector<std::string> log;           // when verbose
  size_t steps = 0;
  bool pruned = false;  // cut by the reduction: equivalent to a schedule already checked
  int rounds = 0;
  int verdicts[6] = {0, 0, 0, 0, 0, 0};
};

RunResult run_scenario(const Scenario& sc, Chooser& ch, bool verbose);

// Reference executions: each subset of the coordinators applied in each order, with each
// external write anywhere in that order, run serially on fresh model backends.
struct Reference {
  std::vector<bool> applied;
  std::vector<int> order;  // coordinator index, or -1 - e for external write e
  std::vector<std::string> dumps;
  std::vector<std::vector<std::vector<std::string>>> replies;
};
std::vector<Reference> references(const Scenario& sc);

// The invariants of one run; empty when they hold.
std::string check_run(const Scenario& sc, const std::vector<Reference>& refs, const RunResult& r);

struct Exploration {
  size_t runs = 0;
  size_t pruned = 0;
  bool exhausted = false;
  size_t failures = 0;
  std::string first_failure;  // the shortest failing run: its violation, trace and step log
  std::map<std::string, size_t> outcomes;  // "committed,conflict" -> count
  uint64_t steps = 0;
};
// Runs the scenario until the chooser is exhausted or `max_runs`.
Exploration explore(const Scenario& sc, Chooser ch, size_t max_runs);

const char* outcome_name(lockstep::txn::Outcome o);

}  // namespace txnmodel
