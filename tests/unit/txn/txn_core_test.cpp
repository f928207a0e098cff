// Focused tests of the transaction core (coordinator.h, resolver.h, failpoint.h) against model
// backends (model_backend.h), each driving one situation step by step.
#include <catch2/catch.hpp>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>

#include "lockstep/resp/resp.h"
#include "lockstep/txn/coordinator.h"
#include "lockstep/txn/failpoint.h"
#include "lockstep/txn/resolver.h"
#include "lockstep/txn/scripts.h"
#include "model_backend.h"
#include "txn_sim.h"

using namespace lockstep::txn;
using txnmodel::ModelBackend;
using txnmodel::part;
using txnmodel::request;

namespace {

std::string R(std::initializer_list<std::string_view> args) {
  return request(args);
}

// Model backends and a coordinator's connections, driven in a fixed order.
struct Bed {
  int64_t clock = 1'000'000;
  std::vector<std::unique_ptr<ModelBackend>> b;
  explicit Bed(size_t n) {
    for (size_t i = 0; i < n; ++i)
      b.push_back(std::make_unique<ModelBackend>("b" + std::to_string(i), &clock));
  }
  // One request on a connection of its own.
  std::string run(size_t backend, const std::string& req) {
    const int c = b[backend]->connect();
    std::string rep = b[backend]->execute(c, req);
    b[backend]->disconnect(c);
    return rep;
  }
  bool clean() const {
    for (const auto& x : b)
      if (!x->internal_keys().empty()) return false;
    return true;
  }
  std::string internal() const {
    std::string out;
    for (const auto& x : b)
      for (const auto& k : x->internal_keys()) out += x->name() + ":" + k + " ";
    return out;
  }
};

struct Driver {
  Bed& bed;
  Coordinator c;
  std::vector<int> conns;
  std::vector<std::deque<std::string>> q;
  Driver(Bed& bd, std::vector<Participant> parts, std::string txid = "T1",
         std::string coord = "test")
      : bed(bd), c(settings(txid, std::move(coord)), parts) {
    for (const auto& p : parts) conns.push_back(bed.b[static_cast<size_t>(p.backend)]->connect());
    q.resize(parts.size());
  }
  static CoordinatorSettings settings(const std::string& txid, std::string coord = "test") {
    CoordinatorSettings s;
    s.txid = txid;
    s.coord = std::move(coord);
    s.poison = std::string(kPoisonPrefix) + txid;
    s.lease_ms = 5000;
    return s;
  }
  // Runs a request on participant p's connection before the coordinator (the client's own).
  std::string client(uint32_t p, const std::string& req) {
    return bed.b[static_cast<size_t>(c.participants()[p].backend)]->execute(conns[p], req);
  }
  void start() {
    std::vector<Send> out;
    c.start(out);
    take(out);
  }
  void take(std::vector<Send>& out) {
    for (auto& s : out) q[s.participant].push_back(std::move(s.request));
    out.clear();
  }
  // Delivers one request of participant p; false when none is pending.
  bool step(uint32_t p) {
    if (q[p].empty()) return false;
    const std::string req = std::move(q[p].front());
    q[p].pop_front();
    const std::string rep =
        bed.b[static_cast<size_t>(c.participants()[p].backend)]->execute(conns[p], req);
    std::vector<Send> out;
    c.on_reply(p, rep, out);
    take(out);
    return true;
  }
  // Delivers round-robin until `stop` holds or nothing is pending.
  void run(const std::function<bool()>& stop = [] { return false; }) {
    bool any = true;
    while (any && !stop()) {
      any = false;
      for (uint32_t p = 0; p < q.size() && !stop(); ++p) any = step(p) || any;
    }
  }
  void cleanup() {
    std::vector<Send> out;
    c.cleanup_requests(out);
    for (auto& s : out)
      bed.run(static_cast<size_t>(c.participants()[s.participant].backend), s.request);
  }
};

// Runs a Resolution to its end, delivering its requests in the order sent, each (resolution,
// backend) on a connection of its own.
Verdict resolve(Bed& bed, const std::string& here, ScannedIntent it, std::string* error = nullptr) {
  Resolution r(here, std::move(it));
  std::deque<Resolution::Request> q;
  std::vector<Resolution::Request> out;
  std::map<std::string, int> conns;
  r.start(out);
  for (auto& x : out) q.push_back(std::move(x));
  out.clear();
  while (!q.empty() && !r.done()) {
    Resolution::Request x = std::move(q.front());
    q.pop_front();
    const size_t b = static_cast<size_t>(std::stoi(x.backend.substr(1)));
    if (!conns.count(x.backend)) conns[x.backend] = bed.b[b]->connect();
    const std::string rep = bed.b[b]->execute(conns[x.backend], x.request);
    r.on_reply(x.tag, rep, out);
    for (auto& y : out) q.push_back(std::move(y));
    out.clear();
  }
  if (error) *error = r.error();
  return r.verdict();
}

std::vector<ScannedIntent> scan(Bed& bed, size_t backend) {
  std::vector<ScannedIntent> out;
  const std::string rep = bed.run(backend, scan_request(100));
  REQUIRE(parse_scan(rep, out));
  return out;
}

std::string get(Bed& bed, size_t backend, const std::string& key) {
  return bed.run(backend, R({"GET", key}));
}

std::vector<Participant> transfer() {
  return {part(0, {"x"}, {R({"DECRBY", "x", "10"})}), part(1, {"y"}, {R({"INCRBY", "y", "10"})})};
}

void seed_balances(Bed& bed) {
  bed.run(0, R({"SET", "x", "100"}));
  bed.run(1, R({"SET", "y", "100"}));
}

}  // namespace

// ---- the model itself: the Redis rules the rest relies on ----

TEST_CASE("model backend: WATCH, MULTI, EXEC as Redis does them", "[txn]") {
  int64_t clock = 0;
  ModelBackend m("b0", &clock);
  const int a = m.connect(), o = m.connect();
  SECTION("a watched key changed by another connection: EXEC nil, nothing applied") {
    CHECK(m.execute(a, R({"WATCH", "k"})) == "+OK\r\n");
    m.execute(o, R({"SET", "k", "1"}));
    CHECK(m.execute(a, R({"MULTI"})) == "+OK\r\n");
    CHECK(m.execute(a, R({"SET", "z", "1"})) == "+QUEUED\r\n");
    CHECK(m.execute(a, R({"EXEC"})) == "*-1\r\n");
    CHECK(!m.exists("z"));
  }
  SECTION("changed by the watching connection itself before MULTI: EXEC nil") {
    m.execute(a, R({"WATCH", "k"}));
    m.execute(a, R({"SET", "k", "1"}));
    m.execute(a, R({"MULTI"}));
    m.execute(a, R({"INCR", "n"}));
    CHECK(m.execute(a, R({"EXEC"})) == "*-1\r\n");
  }
  SECTION("EXEC unwatches; a key created and deleted still counts as modified") {
    m.execute(a, R({"WATCH", "k"}));
    m.execute(a, R({"MULTI"}));
    CHECK(m.execute(a, R({"EXEC"})) == "*0\r\n");
    m.execute(o, R({"SET", "k", "1"}));
    m.execute(a, R({"MULTI"}));
    CHECK(m.execute(a, R({"EXEC"})) == "*0\r\n");
    m.execute(a, R({"WATCH", "p"}));
    m.execute(o, R({"SET", "p", "1"}));
    m.execute(o, R({"DEL", "p"}));
    m.execute(a, R({"MULTI"}));
    CHECK(m.execute(a, R({"EXEC"})) == "*-1\r\n");
  }
  SECTION("queue-time errors abort, runtime errors come back in place") {
    m.execute(a, R({"MULTI"}));
    CHECK(m.execute(a, R({"GET"})).starts_with("-ERR wrong number"));
    CHECK(m.execute(a, R({"NOSUCH", "x"})).starts_with("-ERR unknown command"));
    CHECK(m.execute(a, R({"EXEC"})).starts_with("-EXECABORT"));
    m.execute(o, R({"RPUSH", "l", "v"}));
    m.execute(a, R({"MULTI"}));
    m.execute(a, R({"INCR", "l"}));
    m.execute(a, R({"SET", "s", "1"}));
    CHECK(m.execute(a, R({"EXEC"})).starts_with("*2\r\n-WRONGTYPE"));
    CHECK(m.exists("s"));
  }
  SECTION("DISCARD, nesting, WATCH inside MULTI, disconnect") {
    CHECK(m.execute(a, R({"EXEC"})) == "-ERR EXEC without MULTI\r\n");
    m.execute(a, R({"MULTI"}));
    CHECK(m.execute(a, R({"MULTI"})) == "-ERR MULTI calls can not be nested\r\n");
    CHECK(m.execute(a, R({"WATCH", "k"})) == "-ERR WATCH inside MULTI is not allowed\r\n");
    m.execute(a, R({"SET", "d", "1"}));
    CHECK(m.execute(a, R({"DISCARD"})) == "+OK\r\n");
    CHECK(!m.exists("d"));
    m.execute(a, R({"MULTI"}));
    m.execute(a, R({"SET", "d", "1"}));
    m.disconnect(a);
    CHECK(!m.exists("d"));
  }
}

// ---- fast path ----

TEST_CASE("fast path: commits with the EXEC's replies", "[txn]") {
  Bed bed(1);
  Driver d(bed, {part(0, {"x"}, {R({"INCRBY", "x", "5"}), R({"GET", "x"})})});
  d.start();
  d.run();
  REQUIRE(d.c.done());
  CHECK(d.c.outcome() == Outcome::kCommitted);
  REQUIRE(d.c.replies(0).size() == 2);
  CHECK(d.c.replies(0)[0] == ":5\r\n");
  CHECK(d.c.replies(0)[1] == "$1\r\n5\r\n");
  std::vector<Send> cleanup;
  d.c.cleanup_requests(cleanup);
  CHECK(cleanup.empty());
  CHECK(bed.clean());
}

TEST_CASE("fast path: a key held by a cross-backend transaction is a conflict", "[txn]") {
  Bed bed(1);
  bed.run(0, R({"SET", lock_key("x"), "other-txid"}));
  for (bool pinned : {false, true}) {
    Driver d(bed, {part(0, {"x"}, {R({"INCRBY", "x", "5"})}, pinned)});
    d.start();
    d.run();
    REQUIRE(d.c.done());
    CHECK(d.c.outcome() == Outcome::kConflict);
    CHECK(!bed.b[0]->exists("x"));
  }
}

TEST_CASE("fast path: EXEC nil without pins is a conflict, with pins a failed WATCH", "[txn]") {
  Bed bed(1);
  SECTION("unpinned: a lock taken between the guard and EXEC") {
    Driver d(bed, {part(0, {"x"}, {R({"INCRBY", "x", "5"})})});
    d.start();
    d.step(0);  // WATCH
    d.step(0);  // check-unlocked: free
    bed.run(0, R({"SET", lock_key("x"), "other"}));
    d.run();
    CHECK(d.c.outcome() == Outcome::kConflict);
    CHECK(!bed.b[0]->exists("x"));
  }
  SECTION("pinned: the client's watched key changed") {
    Driver d(bed, {part(0, {"x", "w"}, {R({"INCRBY", "x", "5"})}, true)});
    CHECK(d.client(0, R({"WATCH", "w"})) == "+OK\r\n");
    bed.run(0, R({"SET", "w", "changed"}));
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kWatchFailed);
    CHECK(!bed.b[0]->exists("x"));
  }
  SECTION("pinned: the client changed its watched key itself before MULTI") {
    Driver d(bed, {part(0, {"x", "w"}, {R({"INCRBY", "x", "5"})}, true)});
    d.client(0, R({"WATCH", "w"}));
    d.client(0, R({"SET", "w", "mine"}));
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kWatchFailed);
  }
  SECTION("a queue-time error: EXECABORT") {
    Driver d(bed, {part(0, {"x"}, {R({"INCRBY", "x", "5"}), R({"GET"})})});
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kExecAbort);
    CHECK(d.c.error().starts_with("EXECABORT"));
    CHECK(!bed.b[0]->exists("x"));
  }
}

// ---- prepare votes ----

TEST_CASE("prepare: a 'no' vote rolls back every prepared participant", "[txn]") {
  Bed bed(3);
  seed_balances(bed);
  SECTION("a secondary's key is held: conflict, the primary rolled back") {
    bed.run(1, R({"SET", lock_key("y"), "other"}));
    Driver d(bed, transfer());
    d.start();
    d.run();
    REQUIRE(d.c.done());
    CHECK(d.c.outcome() == Outcome::kConflict);
    CHECK(d.c.conflict_key() == lock_key("y"));
    CHECK(bed.b[0]->internal_keys().empty());
    CHECK(bed.b[1]->internal_keys() == std::vector<std::string>{lock_key("y")});
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
  }
  SECTION("the primary's key is held: no secondary is ever prepared") {
    bed.run(0, R({"SET", lock_key("x"), "other"}));
    Driver d(bed, transfer());
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kConflict);
    CHECK(bed.b[1]->executed() == 1);  // only the seeding SET
    CHECK(bed.b[0]->internal_keys() == std::vector<std::string>{lock_key("x")});
  }
  SECTION("MSETNX: a key that must be absent exists") {
    auto parts = transfer();
    parts[1].absent_keys = {"y"};
    Driver d(bed, parts);
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kKeyExists);
    CHECK(bed.clean());
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
  }
  SECTION("3 participants: one secondary yes, one no") {
    bed.run(2, R({"SET", lock_key("z"), "other"}));
    auto parts = transfer();
    parts.push_back(part(2, {"z"}, {R({"SET", "z", "1"})}));
    Driver d(bed, parts);
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kConflict);
    CHECK(bed.b[0]->internal_keys().empty());
    CHECK(bed.b[1]->internal_keys().empty());
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  }
  SECTION("a pinned secondary's WATCH failed: watch-failed, others rolled back") {
    auto parts = transfer();
    parts[1].pinned = true;
    Driver d(bed, parts);
    d.client(1, R({"WATCH", "y"}));
    bed.run(1, R({"SET", "y", "7"}));
    d.start();
    d.run();
    CHECK(d.c.outcome() == Outcome::kWatchFailed);
    CHECK(bed.clean());
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
  }
}

// ---- commit point ----

TEST_CASE("commit: a resolver aborted the expired primary first, so abort everywhere", "[txn]") {
  Bed bed(2);
  seed_balances(bed);
  for (int when = 0; when < 3; ++when) {
    DYNAMIC_SECTION("the resolver's decide runs after " << when
                                                        << " request(s) of the commit burst") {
      Driver d(bed, transfer());
      d.start();
      d.run([&] { return d.c.phase() == Phase::kCommit; });
      REQUIRE(d.c.phase() == Phase::kCommit);
      for (int i = 0; i < when; ++i) d.step(0);  // WATCH, check-prepared
      bed.clock += 6000;
      auto found = scan(bed, 0);
      REQUIRE(found.size() == 1);
      CHECK(resolve(bed, "b0", found[0]) == Verdict::kRolledBack);
      d.run();
      REQUIRE(d.c.done());
      CHECK(d.c.outcome() == Outcome::kFailed);
      CHECK(d.c.error().find("lease expired") != std::string::npos);
      CHECK(bed.clean());
      CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
      CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
    }
  }
}

TEST_CASE("commit: the full protocol, then the clean-up drops the record", "[txn]") {
  Bed bed(2);
  seed_balances(bed);
  Driver d(bed, transfer());
  d.start();
  d.run();
  REQUIRE(d.c.outcome() == Outcome::kCommitted);
  CHECK(d.c.replies(0) == std::vector<std::string>{":90\r\n"});
  CHECK(d.c.replies(1) == std::vector<std::string>{":110\r\n"});
  CHECK(bed.b[1]->internal_keys().empty());
  CHECK(bed.b[0]->internal_keys() ==
        std::vector<std::string>{std::string(kActiveKey), intent_key("T1")});
  d.cleanup();
  CHECK(bed.clean());
}

// ---- the resolver's decisions ----

namespace {

// Prepares T1 on b0 (primary) and b1, and leaves it in primary state `state`:
// 'P' (prepared), 'C' (committed on the primary only), 'A' (aborted by a decide), 'n' (no
// record: the primary was rolled back and the secondary kept its intent).
void make(Bed& bed, char state, const std::string& coord = "test") {
  seed_balances(bed);
  Driver d(bed, transfer(), "T1", coord);
  d.start();
  d.run([&] { return d.c.phase() == Phase::kCommit; });
  if (state == 'C') {
    while (d.c.phase() == Phase::kCommit) d.step(0);
    REQUIRE(d.c.outcome() == Outcome::kCommitted);  // the coordinator "dies" here
  } else if (state == 'A') {
    bed.clock += 6000;
    CHECK(bed.run(0, R({"EVAL", kDecideLua, "1", intent_key("T1"), "T1"})) == "$1\r\nA\r\n");
    bed.clock -= 6000;
  } else if (state == 'n') {
    CHECK(bed.run(0, R({"EVAL", kRollbackLua, "2", intent_key("T1"), kActiveKey, "T1"})) ==
          ":1\r\n");
  }
}

ScannedIntent found_on(Bed& bed, size_t backend) {
  auto f = scan(bed, backend);
  REQUIRE(f.size() == 1);
  return f[0];
}

}  // namespace

TEST_CASE("resolver: decisions for each primary state, found on the primary", "[txn]") {
  Bed bed(2);
  SECTION("COMMITTED: roll forward the secondaries, drop the record") {
    make(bed, 'C');
    bed.clock += 6000;
    const ScannedIntent it = found_on(bed, 0);
    CHECK(it.state == 'C');
    CHECK(it.role == 'p');
    CHECK(it.parts == std::vector<std::string>{"b0", "b1"});
    CHECK(resolve(bed, "b0", it) == Verdict::kRolledForward);
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
    CHECK(get(bed, 0, "x") == "$2\r\n90\r\n");
    CHECK(bed.clean());
  }
  SECTION("ABORTED: roll back the secondaries, drop the record") {
    make(bed, 'A');
    bed.clock += 6000;
    CHECK(resolve(bed, "b0", found_on(bed, 0)) == Verdict::kRolledBack);
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
    CHECK(bed.clean());
  }
  SECTION("PREPARED, leased: leave it") {
    make(bed, 'P');
    bed.clock += 6000;
    ScannedIntent it = found_on(bed, 0);
    bed.clock -= 6000;  // the primary's clock says the lease still runs
    CHECK(resolve(bed, "b0", it) == Verdict::kLeased);
    CHECK(bed.b[0]->exists(lock_key("x")));
    CHECK(bed.b[1]->exists(lock_key("y")));
  }
  SECTION("PREPARED, expired: abort it, roll back") {
    make(bed, 'P');
    bed.clock += 6000;
    CHECK(resolve(bed, "b0", found_on(bed, 0)) == Verdict::kRolledBack);
    CHECK(bed.clean());
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
  }
  SECTION("no record any more: gone") {
    make(bed, 'P');
    bed.clock += 6000;
    ScannedIntent it = found_on(bed, 0);
    bed.run(0, R({"EVAL", kRollbackLua, "2", intent_key("T1"), kActiveKey, "T1"}));
    CHECK(resolve(bed, "b0", it) == Verdict::kGone);
  }
}

TEST_CASE("resolver: decisions for each primary state, found on a secondary", "[txn]") {
  Bed bed(2);
  SECTION("COMMITTED: apply this secondary") {
    make(bed, 'C');
    bed.clock += 6000;
    const ScannedIntent it = found_on(bed, 1);
    CHECK(it.role == 's');
    CHECK(it.primary == "b0");
    CHECK(it.ncmds == 1);
    CHECK(resolve(bed, "b1", it) == Verdict::kRolledForward);
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
    CHECK(bed.b[1]->internal_keys().empty());
    // Applying again (a second resolver with the same scan) changes nothing.
    CHECK(resolve(bed, "b1", it) == Verdict::kRolledForward);
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
  }
  SECTION("ABORTED: roll this secondary back") {
    make(bed, 'A');
    bed.clock += 6000;
    CHECK(resolve(bed, "b1", found_on(bed, 1)) == Verdict::kRolledBack);
    CHECK(bed.b[1]->internal_keys().empty());
  }
  SECTION("PREPARED, leased on the primary: leave it") {
    make(bed, 'P');
    bed.clock += 6000;
    ScannedIntent it = found_on(bed, 1);
    bed.clock -= 6000;
    CHECK(resolve(bed, "b1", it) == Verdict::kLeased);
    CHECK(bed.b[1]->exists(intent_key("T1")));
  }
  SECTION("PREPARED, expired: the primary is aborted, this one rolled back") {
    make(bed, 'P');
    bed.clock += 6000;
    CHECK(resolve(bed, "b1", found_on(bed, 1)) == Verdict::kRolledBack);
    CHECK(bed.b[1]->internal_keys().empty());
    // The primary's ABORTED record is left to the primary's own resolution.
    CHECK(resolve(bed, "b0", found_on(bed, 0)) == Verdict::kRolledBack);
    CHECK(bed.clean());
  }
  SECTION("no record on the primary: presumed abort") {
    make(bed, 'n');
    bed.clock += 6000;
    CHECK(resolve(bed, "b1", found_on(bed, 1)) == Verdict::kRolledBack);
    CHECK(bed.clean());
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  }
}

// ---- parse_scan ----

TEST_CASE("parse_scan: valid and malformed replies", "[txn]") {
  std::vector<ScannedIntent> out;
  auto row = [](std::vector<std::string> f) {
    std::string s;
    lockstep::resp::append_array_header(s, static_cast<int64_t>(f.size()));
    for (const auto& x : f) lockstep::resp::append_bulk(s, x);
    return s;
  };
  auto arr = [](std::vector<std::string> rows) {
    std::string s;
    lockstep::resp::append_array_header(s, static_cast<int64_t>(rows.size()));
    for (const auto& x : rows) s += x;
    return s;
  };
  const std::string good = row({"t1", "C", "p", "b0", "b0\nb1\nb2", "3", "redo"});
  CHECK(parse_scan("*0\r\n", out));
  CHECK(out.empty());
  REQUIRE(parse_scan(arr({good}), out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].txid == "t1");
  CHECK(out[0].state == 'C');
  CHECK(out[0].role == 'p');
  CHECK(out[0].parts == std::vector<std::string>{"b0", "b1", "b2"});
  CHECK(out[0].ncmds == 3);
  CHECK(out[0].redo == "redo");
  std::vector<ScannedIntent> o2;
  CHECK_FALSE(parse_scan("-ERR boom\r\n", o2));
  CHECK_FALSE(parse_scan(":1\r\n", o2));
  // (A nil array, "*-1", is accepted as "no intent": harmless, noted in the report.)
  CHECK_FALSE(parse_scan("*1\r\n", o2));                                       // truncated
  CHECK_FALSE(parse_scan(arr({row({"t1", "C", "p", "b0", "b0", "3"})}), o2));  // 6 fields
  CHECK_FALSE(parse_scan(arr({row({"t1", "C", "p", "b0", "b0", "3", "r", "x"})}), o2));
  CHECK_FALSE(parse_scan(arr({row({"t1", "C", "p", "b0", "b0", "x3", "r"})}), o2));  // ncmds
  CHECK_FALSE(parse_scan(arr({row({"t1", "C", "p", "b0", "b0", "-1", "r"})}), o2));
  CHECK_FALSE(parse_scan(arr({":5\r\n"}), o2));  // a row that is not an array
  // A nil field (an intent without role, say).
  CHECK_FALSE(parse_scan(
      "*1\r\n*7\r\n$2\r\nt1\r\n$1\r\nC\r\n$-1\r\n$2\r\nb0\r\n$2\r\nb0\r\n$1\r\n0\r\n$0\r\n\r\n",
      o2));
  // An integer where a bulk is expected.
  CHECK_FALSE(parse_scan(
      "*1\r\n*7\r\n$2\r\nt1\r\n$1\r\nC\r\n$1\r\np\r\n$2\r\nb0\r\n$2\r\nb0\r\n:0\r\n$0\r\n\r\n",
      o2));
}

// ---- failpoints ----

TEST_CASE("Failpoints::parse: valid and invalid specs, @n counting", "[txn]") {
  SECTION("valid") {
    Failpoints f;
    REQUIRE_FALSE(Failpoints::parse("txn.after_commit=crash,txn.after_prepare=stall:250,"
                                    "txn.after_apply=drop@2,",
                                    f)
                      .has_value());
    CHECK_FALSE(f.empty());
    auto a = f.hit("txn.after_commit");
    REQUIRE(a);
    CHECK(a->kind == FailAction::Kind::kCrash);
    CHECK(f.hit("txn.after_commit"));  // every hit
    auto s = f.hit("txn.after_prepare");
    REQUIRE(s);
    CHECK(s->kind == FailAction::Kind::kStall);
    CHECK(s->stall_ms == 250);
    CHECK_FALSE(f.hit("txn.after_apply"));  // 1st
    auto d = f.hit("txn.after_apply");      // 2nd
    REQUIRE(d);
    CHECK(d->kind == FailAction::Kind::kDrop);
    CHECK_FALSE(f.hit("txn.after_apply"));  // 3rd
    CHECK_FALSE(f.hit("txn.before_prepare"));
  }
  SECTION("empty") {
    Failpoints f;
    CHECK_FALSE(Failpoints::parse("", f).has_value());
    CHECK(f.empty());
    CHECK_FALSE(f.hit("txn.after_commit"));
  }
  SECTION("invalid") {
    for (const char* spec :
         {"txn.after_commit", "=crash", "a=explode", "a=stall:", "a=stall:x", "a=stall:-1",
          "a=crash@0", "a=crash@-2", "a=crash@x", "a=crash@", "a=crash,b"}) {
      Failpoints f;
      INFO(spec);
      CHECK(Failpoints::parse(spec, f).has_value());
    }
  }
}

// ---- dead coordinators: replica incarnations ----

TEST_CASE("coordinator ids: tagged with replica and incarnation, or not", "[txn][incarnation]") {
  CHECK(coordinator_id(std::nullopt, "host/42/beef") == "host/42/beef");
  const std::string tagged = coordinator_id(CoordinatorTag{3, 7}, "host/42/beef");
  CHECK(tagged == "r3.7/host/42/beef");
  CHECK(parse_coordinator(tagged) == CoordinatorTag{3, 7});
  CHECK(parse_coordinator("r18446744073709551615.1/h/1/a") ==
        CoordinatorTag{18446744073709551615ULL, 1});
  // Untagged (a lone replica, or begun before the bump applied), including a host that looks
  // like a tag: three fields, not four.
  CHECK_FALSE(parse_coordinator("host/42/beef"));
  CHECK_FALSE(parse_coordinator("r1.2/42/beef"));
  CHECK_FALSE(parse_coordinator("test"));
  CHECK_FALSE(parse_coordinator(""));
  // Malformed tags.
  CHECK_FALSE(parse_coordinator("r1.2/h/42/beef/x"));  // five fields
  CHECK_FALSE(parse_coordinator("r1.2/h//beef"));      // an empty field
  CHECK_FALSE(parse_coordinator("r1.2/h/42/"));
  CHECK_FALSE(parse_coordinator("x1.2/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r.2/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r1./h/42/beef"));
  CHECK_FALSE(parse_coordinator("r12/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r01.2/h/42/beef"));  // not the canonical form the script sees
  CHECK_FALSE(parse_coordinator("r1.02/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r-1.2/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r1.2.3/h/42/beef"));
  CHECK_FALSE(parse_coordinator("r18446744073709551616.1/h/1/a"));  // overflow
}

TEST_CASE("abandoned: an incarnation older than its replica's current one", "[txn][incarnation]") {
  const Incarnations cur{{1, 3}, {2, 1}};
  CHECK(is_abandoned("r1.2/h/1/a", cur));
  CHECK(is_abandoned("r1.1/h/1/a", cur));
  CHECK_FALSE(is_abandoned("r1.3/h/1/a", cur));  // the live incarnation
  CHECK_FALSE(is_abandoned("r1.4/h/1/a", cur));  // newer than we know of yet: alive
  CHECK_FALSE(is_abandoned("r2.1/h/1/a", cur));
  CHECK_FALSE(is_abandoned("r9.1/h/1/a", cur));  // not a member (any more): lease only
  CHECK_FALSE(is_abandoned("h/1/a", cur));       // untagged: lease only
  CHECK_FALSE(is_abandoned("r1.2/h/1/a", {}));   // no cluster
  // Only a replica past its first incarnation can have left anything: nothing to scan for.
  CHECK(scan_abandoned_request(64, {{1, 1}, {2, 0}}).empty());
  CHECK(scan_abandoned_request(64, {}).empty());
  std::vector<std::string> argv;
  REQUIRE(txnmodel::parse_request(scan_abandoned_request(64, cur), argv));
  CHECK(argv == std::vector<std::string>{"EVAL", std::string(kScanAbandonedLua), "1",
                                         std::string(kActiveKey), "64", "1", "3"});
}

namespace {

std::vector<ScannedIntent> scan_abandoned(Bed& bed, size_t backend, const Incarnations& cur) {
  std::vector<ScannedIntent> out;
  const std::string req = scan_abandoned_request(100, cur);
  if (req.empty()) return out;
  REQUIRE(parse_abandoned_scan(bed.run(backend, req), out));
  for (auto& it : out) it.abandoned = is_abandoned(it.coord, cur);
  return out;
}

constexpr const char* kOldCoord = "r2.1/host/7/aa";  // replica 2's first incarnation

}  // namespace

TEST_CASE("abandoned: resolved at once, without waiting for the lease", "[txn][incarnation]") {
  Bed bed(2);
  const Incarnations restarted{{1, 1}, {2, 2}};
  SECTION("PREPARED: aborted on the primary, rolled back everywhere") {
    make(bed, 'P', kOldCoord);
    // Under lease: the ordinary scan does not see it, and neither does the abandoned one while
    // replica 2 is still in the incarnation that wrote it.
    CHECK(scan(bed, 0).empty());
    CHECK(scan_abandoned(bed, 0, {{2, 1}}).empty());
    auto f = scan_abandoned(bed, 1, restarted);
    REQUIRE(f.size() == 1);
    CHECK(f[0].abandoned);
    CHECK(f[0].coord == kOldCoord);
    CHECK(f[0].role == 's');
    CHECK(f[0].state == 'P');
    CHECK(f[0].redo == R({"INCRBY", "y", "10"}));
    // Without the mark the primary says "leased", as before.
    ScannedIntent unmarked = f[0];
    unmarked.abandoned = false;
    CHECK(resolve(bed, "b1", unmarked) == Verdict::kLeased);
    CHECK(resolve(bed, "b1", f[0]) == Verdict::kRolledBack);
    // The primary's ABORTED record: found by the next abandoned scan, dropped.
    auto p = scan_abandoned(bed, 0, restarted);
    REQUIRE(p.size() == 1);
    CHECK(p[0].state == 'A');
    CHECK(resolve(bed, "b0", p[0]) == Verdict::kRolledBack);
    CHECK(bed.clean());
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  }
  SECTION("PREPARED, found on the primary first") {
    make(bed, 'P', kOldCoord);
    auto p = scan_abandoned(bed, 0, restarted);
    REQUIRE(p.size() == 1);
    CHECK(p[0].role == 'p');
    CHECK(resolve(bed, "b0", p[0]) == Verdict::kRolledBack);
    CHECK(bed.clean());
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  }
  SECTION("COMMITTED: rolled forward everywhere") {
    make(bed, 'C', kOldCoord);
    auto s = scan_abandoned(bed, 1, restarted);
    REQUIRE(s.size() == 1);
    CHECK(resolve(bed, "b1", s[0]) == Verdict::kRolledForward);
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
    auto p = scan_abandoned(bed, 0, restarted);
    REQUIRE(p.size() == 1);
    CHECK(p[0].state == 'C');
    CHECK(resolve(bed, "b0", p[0]) == Verdict::kRolledForward);
    CHECK(bed.clean());
    CHECK(get(bed, 0, "x") == "$2\r\n90\r\n");
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
  }
  SECTION("COMMITTED, found on the primary first") {
    make(bed, 'C', kOldCoord);
    auto p = scan_abandoned(bed, 0, restarted);
    REQUIRE(p.size() == 1);
    CHECK(resolve(bed, "b0", p[0]) == Verdict::kRolledForward);
    CHECK(bed.clean());
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
  }
  SECTION("what the abandoned scan leaves alone") {
    make(bed, 'P', "host/7/aa");  // untagged
    CHECK(scan_abandoned(bed, 0, restarted).empty());
    bed.clock += 6000;  // expired: the ordinary scan's business
    CHECK(scan(bed, 0).size() == 1);
    CHECK(scan_abandoned(bed, 0, {{2, 5}}).empty());
  }
  SECTION("the current incarnation's transactions are left alone") {
    make(bed, 'P', "r2.2/host/8/bb");
    CHECK(scan_abandoned(bed, 0, restarted).empty());
    CHECK(scan_abandoned(bed, 1, restarted).empty());
  }
}

TEST_CASE("abandoned by mistake: a live coordinator's commit fails and applies nothing",
          "[txn][incarnation]") {
  // Why resolving on the incarnation alone is safe: even if the coordinator were alive, the
  // commit point (WATCH intent, check PREPARED, MULTI ... EXEC) finds the record aborted.
  Bed bed(2);
  seed_balances(bed);
  Driver d(bed, transfer(), "T1", kOldCoord);
  d.start();
  d.run([&] { return d.c.phase() == Phase::kCommit; });
  SECTION("aborted before the commit point's WATCH") {
    auto f = scan_abandoned(bed, 0, {{2, 2}});
    REQUIRE(f.size() == 1);
    CHECK(resolve(bed, "b0", f[0]) == Verdict::kRolledBack);
  }
  SECTION("aborted between the WATCH and the EXEC") {
    d.step(0);  // WATCH
    d.step(0);  // check PREPARED: 1
    auto f = scan_abandoned(bed, 0, {{2, 2}});
    REQUIRE(f.size() == 1);
    CHECK(resolve(bed, "b0", f[0]) == Verdict::kRolledBack);
  }
  d.run();
  CHECK(d.c.outcome() == Outcome::kFailed);
  CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
  CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  CHECK(bed.clean());
}

TEST_CASE("parse_abandoned_scan: rows carry the coordinator", "[txn][incarnation]") {
  std::vector<ScannedIntent> out;
  const std::string row =
      "*1\r\n*8\r\n$2\r\nt1\r\n$1\r\nP\r\n$1\r\ns\r\n$2\r\nb0\r\n$5\r\nb0\nb1\r\n$1\r\n1\r\n"
      "$0\r\n\r\n$6\r\nr1.1/h\r\n";
  REQUIRE(parse_abandoned_scan(row, out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].coord == "r1.1/h");
  CHECK_FALSE(out[0].abandoned);  // the caller's decision
  std::vector<ScannedIntent> o2;
  CHECK_FALSE(parse_scan(row, o2));  // 8 fields are not an ordinary scan's row
  CHECK_FALSE(parse_abandoned_scan(
      "*1\r\n*7\r\n$2\r\nt1\r\n$1\r\nC\r\n$1\r\np\r\n$2\r\nb0\r\n$2\r\nb0\r\n$1\r\n0\r\n$0\r\n\r\n",
      o2));
}

TEST_CASE("a coordinator abandoned mid-commit hands its intents to the resolvers at once",
          "[txn]") {
  // Its client disconnected: the coordinator stops, and ends the leases of what it wrote so
  // the next scan settles it, not one lease_ms later.
  Bed bed(2);
  seed_balances(bed);
  Driver d(bed, transfer());
  d.start();
  std::vector<Send> none;
  SECTION("prepared everywhere, before the commit point: rolled back") {
    d.run([&] { return d.c.phase() == Phase::kCommit; });
    CHECK(scan(bed, 0).empty());  // leased
    std::vector<Send> out;
    d.c.abandon_requests(out);
    REQUIRE(out.size() == 2);
    for (const auto& s : out) CHECK(bed.run(s.participant, s.request) == ":1\r\n");
    auto found = scan(bed, 1);
    REQUIRE(found.size() == 1);
    CHECK(resolve(bed, "b1", found[0]) == Verdict::kRolledBack);
    auto primary = scan(bed, 0);
    REQUIRE(primary.size() == 1);
    CHECK(resolve(bed, "b0", primary[0]) == Verdict::kRolledBack);
    CHECK(get(bed, 0, "x") == "$3\r\n100\r\n");
    CHECK(get(bed, 1, "y") == "$3\r\n100\r\n");
  }
  SECTION("after the commit point: rolled forward") {
    d.run([&] { return d.c.phase() == Phase::kApply; });
    std::vector<Send> out;
    d.c.abandon_requests(out);
    for (const auto& s : out) bed.run(s.participant, s.request);
    auto found = scan(bed, 1);
    REQUIRE(found.size() == 1);
    CHECK(resolve(bed, "b1", found[0]) == Verdict::kRolledForward);
    auto primary = scan(bed, 0);
    REQUIRE(primary.size() == 1);
    CHECK(resolve(bed, "b0", primary[0]) == Verdict::kRolledForward);
    CHECK(get(bed, 0, "x") == "$2\r\n90\r\n");
    CHECK(get(bed, 1, "y") == "$3\r\n110\r\n");
  }
  SECTION("nothing for a finished transaction") {
    d.run();
    d.cleanup();
    d.c.abandon_requests(none);
    CHECK(none.empty());
  }
  CHECK(bed.clean());
}
