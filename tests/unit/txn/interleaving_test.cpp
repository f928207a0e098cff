// The transaction state machines (Coordinator, Resolution) over every interleaving the driver
// can enumerate (txn_sim.h), against model backends (model_backend.h).
//
// Each schedule ends with resolver rounds after every lease expired, then checks:
//   - all-or-nothing and exactly once: the data of every backend equals a serial execution of
//     some subset of the transactions in some order (each committed transaction's replies equal
//     that execution's, except those marked lost), so a transaction applied on one backend and
//     not another, or applied twice, fails;
//   - the outcome agrees: kCommitted => applied; kConflict/kWatchFailed/kFailed/kExecAbort/
//     kKeyExists => not applied; kUnknown or a crashed coordinator => either;
//   - no __lockstep:* key is left (locks, intents, the active set, poison keys);
//   - WATCH: a watched key written before the pinned connection's EXEC => kWatchFailed, after
//     => not kWatchFailed.
// A failure prints the shortest failing schedule step by step and its choice trace.
// LOCKSTEP_TXN_STATS=1 prints the number of schedules of each test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include "txn_sim.h"

using namespace txnmodel;
using lockstep::txn::Participant;

namespace {

std::string R(std::initializer_list<std::string_view> args) {
  return request(args);
}

void report(const char* name, const Exploration& ex) {
  if (std::getenv("LOCKSTEP_TXN_STATS") != nullptr) {
    std::fprintf(stderr, "%-55s %7zu schedules%s (%zu pruned), %zu failing;", name, ex.runs,
                 ex.exhausted ? " (all)" : "", ex.pruned, ex.failures);
    for (const auto& [k, v] : ex.outcomes) std::fprintf(stderr, " %s:%zu", k.c_str(), v);
    std::fprintf(stderr, "\n");
  }
  INFO(name << ": " << ex.runs << " schedules, " << ex.failures << " failing\n"
            << ex.first_failure);
  CHECK(ex.failures == 0);
}

// A transfer between two backends: b0 gives 10 to b1; each side also logs the transaction, so
// applying a side twice or on one side only shows in the data.
CoordSpec transfer2(bool pin0 = false, bool pin1 = false) {
  CoordSpec c;
  c.participants = {
      part(0, {"x", "log0"}, {R({"DECRBY", "x", "10"}), R({"RPUSH", "log0", "T0"})}, pin0),
      part(1, {"y", "log1"}, {R({"INCRBY", "y", "10"}), R({"RPUSH", "log1", "T0"})}, pin1)};
  return c;
}

Scenario base(size_t backends) {
  Scenario sc;
  sc.backends = backends;
  sc.init.resize(backends);
  const char* keys[] = {"x", "y", "z"};
  for (size_t b = 0; b < backends; ++b) sc.init[b].push_back(R({"SET", keys[b], "100"}));
  return sc;
}

}  // namespace

TEST_CASE("2 participants: every schedule, crash at every step, every lost suffix", "[txn]") {
  for (int pins = 0; pins < 3; ++pins) {
    Scenario sc = base(2);
    sc.coords.push_back(transfer2(pins == 1, pins == 2));
    if (pins > 0) sc.coords[0].pre.emplace_back(pins - 1, R({"WATCH", pins == 1 ? "x" : "y"}));
    sc.opt.crashes = 1;
    const Exploration ex = explore(sc, Chooser::exhaustive(1), 100000);
    CHECK(ex.exhausted);
    report(pins == 0   ? "2p crash, unpinned, 1 resolver"
           : pins == 1 ? "2p crash, primary pinned, 1 resolver"
                       : "2p crash, secondary pinned, 1 resolver",
           ex);
  }
}

TEST_CASE("2 participants: crash at every step, two resolvers racing", "[txn]") {
  Scenario sc = base(2);
  sc.coords.push_back(transfer2());
  sc.opt.crashes = 1;
  sc.opt.resolvers = 2;
  // The coordinator's schedules and crash points are enumerated; the two resolvers'
  // interleavings are sampled (seeded), several times over.
  sc.opt.explore_post = false;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const Exploration ex = explore(sc, Chooser::exhaustive(seed * 7919), 200000);
    CHECK(ex.exhausted);
    report(("2p crash, 2 resolvers, seed " + std::to_string(seed * 7919)).c_str(), ex);
  }
  // And fully at random, both parts.
  sc.opt.explore_coord = false;
  const Exploration ex = explore(sc, Chooser::random(424242), 5000);
  report("2p crash, 2 resolvers, random (seed 424242)", ex);
}

TEST_CASE("2 participants: leases run out while the coordinator runs (resolver races it)",
          "[txn]") {
  Scenario sc = base(2);
  sc.coords.push_back(transfer2());
  sc.opt.stall = true;
  const Exploration ex = explore(sc, Chooser::exhaustive(3), 15000);
  report("2p stall + concurrent resolver", ex);
  sc.opt.crashes = 1;
  sc.opt.explore_coord = false;
  sc.opt.explore_post = false;
  const Exploration ex2 = explore(sc, Chooser::random(5), 10000);
  report("2p stall + crash + resolver", ex2);
}

TEST_CASE("2 participants: a coordinator connection breaks at every step", "[txn]") {
  for (int pins = 0; pins < 2; ++pins) {
    Scenario sc = base(2);
    sc.coords.push_back(transfer2(pins == 1, false));
    if (pins == 1) sc.coords[0].pre.emplace_back(0, R({"WATCH", "x"}));
    sc.opt.link_breaks = 1;
    const Exploration ex = explore(sc, Chooser::exhaustive(11), 12000);
#if !defined(__SANITIZE_ADDRESS__)  // explore() samples fewer runs under ASan
    CHECK(ex.exhausted);
#endif
    report(pins ? "2p link break, primary pinned" : "2p link break, unpinned", ex);
  }
}

TEST_CASE("fast path: its connection breaks at every step", "[txn]") {
  // An error instead of the EXEC's reply says nothing about whether the EXEC ran.
  Scenario sc = base(1);
  CoordSpec c;
  c.participants = {part(0, {"x", "log0"}, {R({"INCRBY", "x", "1"}), R({"RPUSH", "log0", "T0"})})};
  sc.coords.push_back(c);
  sc.opt.link_breaks = 1;
  const Exploration ex = explore(sc, Chooser::exhaustive(1), 10000);
  CHECK(ex.exhausted);
  report("fast path link break", ex);
}

TEST_CASE("WATCH: a watched key written at any point of the schedule", "[txn]") {
  // The client WATCHed w on b0 (its connection is the pinned one); another client writes w at
  // some step. The transaction does not write w, so the write commutes with it.
  SECTION("fast path (one backend)") {
    Scenario sc = base(2);
    CoordSpec c;
    c.participants = {part(0, {"x", "w"}, {R({"INCRBY", "x", "1"}), R({"GET", "w"})}, true)};
    c.pre.emplace_back(0, R({"WATCH", "w"}));
    sc.coords.push_back(c);
    sc.external.push_back({0, R({"SET", "w", "changed"})});
    const Exploration ex = explore(sc, Chooser::exhaustive(1), 100000);
    CHECK(ex.exhausted);
    CHECK(ex.outcomes.count("watch-failed") == 1);
    CHECK(ex.outcomes.count("committed") == 1);
    report("watch, fast path", ex);
  }
  for (int where = 0; where < 2; ++where) {
    DYNAMIC_SECTION("cross-backend, watched key on the " << (where ? "secondary" : "primary")) {
      Scenario sc = base(2);
      CoordSpec c = transfer2(where == 0, where == 1);
      c.participants[static_cast<size_t>(where)].keys.push_back("w");
      c.pre.emplace_back(where, R({"WATCH", "w"}));
      sc.coords.push_back(c);
      sc.external.push_back({where, R({"SET", "w", "changed"})});
      const Exploration ex = explore(sc, Chooser::exhaustive(1), 100000);
      CHECK(ex.exhausted);
      CHECK(ex.outcomes.count("watch-failed") == 1);
      CHECK(ex.outcomes.count("committed") == 1);
      report(where ? "watch, cross, secondary pinned" : "watch, cross, primary pinned", ex);
      sc.opt.crashes = 1;
      const Exploration ex2 = explore(sc, Chooser::exhaustive(2), 8000);
      report(where ? "watch + crash, secondary pinned" : "watch + crash, primary pinned", ex2);
    }
  }
  SECTION("a pinned backend with no queued command (only the WATCH)") {
    Scenario sc = base(2);
    CoordSpec c;
    c.participants = {part(0, {"w"}, {}, true),
                      part(1, {"y"}, {R({"INCRBY", "y", "5"}), R({"GET", "y"})})};
    c.pre.emplace_back(0, R({"WATCH", "w"}));
    sc.coords.push_back(c);
    sc.external.push_back({0, R({"SET", "w", "changed"})});
    sc.opt.crashes = 1;
    const Exploration ex = explore(sc, Chooser::exhaustive(4), 8000);
    report("watch only on the primary + crash", ex);
  }
}

TEST_CASE("3 participants: every apply interleaving, crashes sampled", "[txn]") {
  Scenario sc = base(3);
  CoordSpec c;
  c.participants = {part(0, {"x", "log0"}, {R({"DECRBY", "x", "20"}), R({"RPUSH", "log0", "T0"})}),
                    part(1, {"y", "log1"}, {R({"INCRBY", "y", "10"}), R({"RPUSH", "log1", "T0"})}),
                    part(2, {"z", "log2"}, {R({"INCRBY", "z", "10"}), R({"RPUSH", "log2", "T0"})})};
  sc.coords.push_back(c);
  {
    const Exploration ex = explore(sc, Chooser::exhaustive(1), 60000);
    CHECK(ex.exhausted);
    report("3p no crash (all interleavings)", ex);
  }
  sc.opt.crashes = 1;
  sc.opt.explore_coord = false;
  sc.opt.explore_post = false;
  {
    const Exploration ex = explore(sc, Chooser::random(20240601), 6000);
    report("3p crash, 1 resolver, random (seed 20240601)", ex);
  }
  sc.opt.resolvers = 2;
  {
    const Exploration ex = explore(sc, Chooser::random(77), 6000);
    report("3p crash, 2 resolvers, random (seed 77)", ex);
  }
  sc.opt.crashes = 0;
  sc.opt.stall = true;
  {
    const Exploration ex = explore(sc, Chooser::random(99), 5000);
    report("3p stall, 2 resolvers, random (seed 99)", ex);
  }
  sc.opt.stall = false;
  sc.opt.link_breaks = 1;
  sc.opt.resolvers = 1;
  {
    const Exploration ex = explore(sc, Chooser::random(1234), 5000);
    report("3p link break, random (seed 1234)", ex);
  }
}

TEST_CASE("concurrent transactions on overlapping keys are serializable", "[txn]") {
  SECTION("two transfers over the same two backends") {
    Scenario sc = base(2);
    sc.coords.push_back(transfer2());
    CoordSpec t1;
    t1.participants = {
        part(1, {"y", "log1"}, {R({"DECRBY", "y", "30"}), R({"RPUSH", "log1", "T1"})}),
        part(0, {"x", "log0"}, {R({"INCRBY", "x", "30"}), R({"RPUSH", "log0", "T1"})})};
    sc.coords.push_back(t1);
    sc.opt.explore_coord = false;
    sc.opt.explore_post = false;
    const Exploration ex = explore(sc, Chooser::random(31337), 5000);
    report("2 transfers, opposite primaries, random (seed 31337)", ex);
    sc.opt.crashes = 1;
    const Exploration ex2 = explore(sc, Chooser::random(31338), 5000);
    report("2 transfers + a crash, random (seed 31338)", ex2);
  }
  SECTION("a transfer and a reader of both balances") {
    Scenario sc = base(2);
    sc.coords.push_back(transfer2());
    CoordSpec rd;
    rd.participants = {part(0, {"x"}, {R({"GET", "x"})}), part(1, {"y"}, {R({"GET", "y"})})};
    sc.coords.push_back(rd);
    sc.opt.explore_coord = false;
    sc.opt.explore_post = false;
    const Exploration ex = explore(sc, Chooser::random(555), 5000);
    report("transfer + reader, random (seed 555)", ex);
    sc.opt.stall = true;
    sc.opt.crashes = 1;
    const Exploration ex2 = explore(sc, Chooser::random(556), 5000);
    report("transfer + reader + stall + crash, random (seed 556)", ex2);
  }
  SECTION("a transfer and a fast-path transaction on one of its keys") {
    Scenario sc = base(2);
    sc.coords.push_back(transfer2());
    CoordSpec fp;
    fp.participants = {part(0, {"x"}, {R({"INCRBY", "x", "1"}), R({"GET", "x"})})};
    sc.coords.push_back(fp);
    const Exploration ex = explore(sc, Chooser::exhaustive(8), 60000);
    CHECK(ex.exhausted);
    report("transfer + fast path (all interleavings)", ex);
    sc.opt.crashes = 1;
    sc.opt.explore_coord = false;
    sc.opt.explore_post = false;
    const Exploration ex2 = explore(sc, Chooser::random(8080), 5000);
    report("transfer + fast path + crash, random (seed 8080)", ex2);
  }
  SECTION("three transactions on three backends (a cycle of transfers)") {
    Scenario sc = base(3);
    const char* keys[] = {"x", "y", "z"};
    for (int i = 0; i < 3; ++i) {
      const int a = i, b = (i + 1) % 3;
      const std::string tag = "T" + std::to_string(i);
      CoordSpec t;
      t.participants = {
          part(a, {keys[a], "log"}, {R({"DECRBY", keys[a], "7"}), R({"RPUSH", "log", tag})}),
          part(b, {keys[b], "log"}, {R({"INCRBY", keys[b], "7"}), R({"RPUSH", "log", tag})})};
      sc.coords.push_back(t);
    }
    sc.opt.explore_coord = false;
    sc.opt.explore_post = false;
    const Exploration ex = explore(sc, Chooser::random(9001), 4000);
    report("3 transfers in a cycle, random (seed 9001)", ex);
  }
}
