// Transactions (MULTI / EXEC / DISCARD / WATCH / UNWATCH) through Lockstep: the semantics a
// client sees are one redis-server's, whether the keys live on one backend (hash tags), on two
// or on three. Where the rule is Redis's own, the same commands go to a reference redis-server
// and to Lockstep and the replies must be equal; what is Lockstep's own (commands it cannot run
// inside MULTI, its reserved key space, atomicity across backends) is checked directly, also by
// looking at the backends themselves.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

const char* const kExecAbort = "EXECABORT Transaction discarded because of previous errors.";
const char* const kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";
const char* const kReserved =
    "ERR keys starting with '__lockstep:' are reserved for Lockstep's internal state";

ClusterOptions txn_options(const std::string& transactions_yaml = {}) {
  ClusterOptions o;
  o.extra_yaml = "transactions:\n  backend_check: off\n" + transactions_yaml;
  return o;
}

// Three keys a transaction works on, placed on one, two or three backends.
struct Layout {
  std::string name;
  std::vector<std::string> k;  // k[0] and k[1] are on different backends unless name == "one"
  size_t backends = 0;
};

std::vector<Layout> layouts(const Cluster& cluster, const std::string& prefix) {
  const std::string tag = "{" + prefix + "}";
  return {
      {"one backend", {tag + ":a", tag + ":b", tag + ":c"}, 1},
      {"two backends",
       {cluster.key_on(0, prefix + "2"), cluster.key_on(1, prefix + "2"),
        cluster.key_on(0, prefix + "2", 1)},
       2},
      {"three backends",
       {cluster.key_on(0, prefix + "3"), cluster.key_on(1, prefix + "3"),
        cluster.key_on(2, prefix + "3")},
       3},
  };
}

size_t distinct_owners(const Cluster& cluster, const std::vector<std::string>& keys) {
  std::set<size_t> owners;
  for (const auto& k : keys) owners.insert(cluster.owner(k));
  return owners.size();
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The value of `key` read on the backend that owns it, bypassing Lockstep.
Reply direct_get(Cluster& cluster, const std::string& key) {
  return cluster.direct(cluster.owner(key))("GET", key);
}

// Every `__lockstep:*` key on every backend (read directly), as "b<i> <key>".
std::vector<std::string> internal_keys(Cluster& cluster) {
  std::vector<std::string> out;
  for (size_t b = 0; b < cluster.size(); ++b) {
    const Reply r = cluster.direct(b)("KEYS", "__lockstep:*");
    if (!r.is_array()) {
      out.push_back("b" + std::to_string(b) + " " + r.to_string());
      continue;
    }
    for (const auto& k : r.as_strings()) out.push_back("b" + std::to_string(b) + " " + k);
  }
  return out;
}

// The primary's record is dropped after EXEC has answered (fire and forget): poll.
void check_no_internal_keys(Cluster& cluster) {
  std::vector<std::string> left;
  const bool clean = wait_until(
      [&] {
        left = internal_keys(cluster);
        return left.empty();
      },
      5s, 20ms);
  std::string all;
  for (const auto& k : left) all += k + "; ";
  INFO("internal keys left behind: " << all);
  CHECK(clean);
}

long long info_int(Client& c, const std::string& section, const std::string& field) {
  const Reply r = c("INFO", section);
  const std::string needle = field + ":";
  const size_t pos = r.str.find(needle);
  if (pos == std::string::npos) return -1;
  return std::stoll(r.str.substr(pos + needle.size()));
}

// Sends `argv` on two raw connections (reference, Lockstep) and CHECKs the replies are the same
// bytes. Returns Lockstep's raw reply.
std::string raw_same(RawConn& ref, RawConn& px, const std::vector<std::string>& argv) {
  const std::string req = encode_command(argv);
  REQUIRE(ref.send(req));
  REQUIRE(px.send(req));
  const std::string expected = or_none(ref.read_raw_reply(5s));
  const std::string actual = or_none(px.read_raw_reply(5s));
  INFO("command: " << show(argv));
  CHECK(actual == expected);
  return actual;
}

// Sends every command in ONE write to each side, then compares the replies one by one.
void raw_pipeline_same(RawConn& ref, RawConn& px,
                       const std::vector<std::vector<std::string>>& commands) {
  std::string payload;
  for (const auto& argv : commands) payload += encode_command(argv);
  REQUIRE(ref.send(payload));
  REQUIRE(px.send(payload));
  for (const auto& argv : commands) {
    const std::string expected = or_none(ref.read_raw_reply(5s));
    const std::string actual = or_none(px.read_raw_reply(5s));
    INFO("command: " << show(argv));
    CHECK(actual == expected);
  }
}

// MULTI, the commands (each must be QUEUED), EXEC: on both sides, every reply compared.
Reply same_transaction(Compare& c, const std::vector<std::vector<std::string>>& commands) {
  c.same({"MULTI"});
  for (const auto& argv : commands) CHECK(c.same(argv) == Reply::status("QUEUED"));
  return c.same({"EXEC"});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// MULTI / EXEC / DISCARD

TEST_CASE("MULTI queues commands and EXEC answers them in command order", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "order")) {
    INFO("layout: " << l.name);
    REQUIRE(distinct_owners(cluster, l.k) == l.backends);
    const auto& k = l.k;
    c.same({"SET", k[1], "10"});
    const Reply r = same_transaction(c, {{"SET", k[0], "v0"},
                                         {"INCR", k[1]},
                                         {"RPUSH", k[2], "a", "b"},
                                         {"GET", k[0]},
                                         {"PING"},
                                         {"LRANGE", k[2], "0", "-1"},
                                         {"ECHO", "hello"},
                                         {"INCRBY", k[1], "5"},
                                         {"PING", "message"},
                                         {"GET", k[1]},
                                         {"SET", k[0], "v1", "GET"}});
    REQUIRE(r.is_array());
    CHECK(r.elements.size() == 11);
    CHECK(r.elements[0].is_ok());
    CHECK(r.elements[1] == Reply::integer_(11));
    CHECK(r.elements[4] == Reply::status("PONG"));
    CHECK(r.elements[6] == Reply::string("hello"));
    CHECK(r.elements[9] == Reply::string("16"));
    CHECK(r.elements[10] == Reply::string("v0"));
    // Applied, each key on the backend that owns it.
    c.same({"MGET", k[0], k[1]});
    c.same({"LRANGE", k[2], "0", "-1"});
    CHECK(direct_get(cluster, k[0]) == Reply::string("v1"));
    CHECK(direct_get(cluster, k[1]) == Reply::string("16"));
    for (const auto& key : k) {
      INFO("key " << key);
      CHECK(cluster.holders(key) == std::vector<size_t>{cluster.owner(key)});
    }
    // Only PING / ECHO: answered without any backend.
    same_transaction(c, {{"PING"}, {"ECHO", "x"}, {"PING", "y"}});
  }
  // An empty transaction.
  CHECK(c.same({"MULTI"}).is_ok());
  CHECK(c.same({"EXEC"}) == Reply::array({}));
  check_no_internal_keys(cluster);
}

TEST_CASE("DISCARD drops the queued commands", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "discard")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    c.same({"SET", k[0], "before"});
    c.same({"MULTI"});
    c.same({"SET", k[0], "after"});
    c.same({"DEL", k[1]});
    c.same({"INCR", k[2]});
    CHECK(c.same({"DISCARD"}).is_ok());
    c.same({"MGET", k[0], k[1], k[2]});
    CHECK(direct_get(cluster, k[0]) == Reply::string("before"));
    CHECK(direct_get(cluster, k[2]).is_nil());
    // Not in a transaction any more.
    c.same_error({"EXEC"});
    c.same_error({"DISCARD"});
    CHECK(c.same({"SET", k[2], "plain"}).is_ok());
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("MULTI, WATCH, EXEC and DISCARD misuse get Redis' errors", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  const std::string a = cluster.key_on(0, "misuse"), b = cluster.key_on(2, "misuse");
  CHECK(c.same_error({"EXEC"}).str == "ERR EXEC without MULTI");
  CHECK(c.same_error({"DISCARD"}).str == "ERR DISCARD without MULTI");
  c.same({"MULTI"});
  CHECK(c.same_error({"MULTI"}).str == "ERR MULTI calls can not be nested");
  c.same({"SET", a, "1"});
  CHECK(c.same_error({"WATCH", a}).str == "ERR WATCH inside MULTI is not allowed");
  c.same({"SET", b, "2"});
  c.same({"UNWATCH"});  // queued, as in Redis
  // Neither error dooms the transaction (Redis does not flag it).
  const Reply r = c.same({"EXEC"});
  CHECK(r == Reply::array({Reply::status("OK"), Reply::status("OK"), Reply::status("OK")}));
  c.same({"MGET", a, b});
  CHECK(c.same_error({"EXEC"}).str == "ERR EXEC without MULTI");
  // MULTI nested then DISCARD.
  c.same({"MULTI"});
  c.same_error({"MULTI"});
  c.same({"DISCARD"});
  c.same_error({"DISCARD"});
}

TEST_CASE("queue-time errors make EXEC answer EXECABORT and apply nothing", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "qerr")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    const std::vector<std::vector<std::string>> bad = {
        {"NOSUCHCOMMAND", k[0]},
        {"GET"},
        {"SET", k[1]},
        {"MSET"},
        {"OBJECT", "NOSUCHSUBCOMMAND", k[0]},
    };
    for (const auto& wrong : bad) {
      INFO("refused: " << show(wrong));
      c.same({"MULTI"});
      c.same({"SET", k[0], "x"});
      c.same({"MSET", k[1], "y", k[2], "z"});
      c.same_error(wrong);
      c.same({"INCR", k[2]});  // still queued after the error
      CHECK(c.same_error({"EXEC"}).str == kExecAbort);
      c.same({"MGET", k[0], k[1], k[2]});
      for (const auto& key : k) CHECK(direct_get(cluster, key).is_nil());
      // The connection is out of MULTI and works.
      c.same_error({"EXEC"});
      c.same({"PING"});
    }
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("commands Lockstep cannot run inside MULTI abort it and say why", "[integration][txn]") {
  Cluster cluster(txn_options());
  Client c = cluster.client();
  for (const auto& l : layouts(cluster, "unroutable")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
        {{"DBSIZE"}, "every backend"},
        {{"KEYS", "*"}, "every backend"},
        {{"FLUSHDB"}, "every backend"},
    };
    if (cluster.owner(k[0]) != cluster.owner(k[1])) {
      refused.push_back({{"RENAME", k[0], k[1]}, kCrossSlot});
      refused.push_back({{"SUNIONSTORE", k[0], k[1]}, kCrossSlot});
      refused.push_back({{"LMOVE", k[1], k[0], "LEFT", "RIGHT"}, kCrossSlot});
    }
    refused.push_back({{"GET", "__lockstep:tx:active"}, kReserved});
    for (const auto& [argv, why] : refused) {
      INFO("refused: " << show(argv));
      REQUIRE(c("MULTI").is_ok());
      CHECK(c("SET", k[0], "x") == Reply::status("QUEUED"));
      const Reply e = c.command(argv);
      CHECK(e.is_error());
      CHECK(e.str.find(why) != std::string::npos);
      CHECK(c("SET", k[1], "y") == Reply::status("QUEUED"));
      CHECK(c("EXEC") == Reply::error(kExecAbort));
      for (const auto& key : k) CHECK(direct_get(cluster, key).is_nil());
      CHECK(c("PING") == Reply::status("PONG"));
    }
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("runtime errors inside EXEC are returned in place and the rest is applied",
          "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "rterr")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    c.same({"RPUSH", k[1], "item"});
    c.same({"SET", k[2], "not-a-number"});
    const Reply r = same_transaction(c, {{"SET", k[0], "a"},
                                         {"INCR", k[1]},  // WRONGTYPE
                                         {"APPEND", k[0], "b"},
                                         {"INCR", k[2]},  // not an integer
                                         {"LPUSH", k[1], "second"},
                                         {"GET", k[1]},             // WRONGTYPE
                                         {"SET", k[0], "x", "EX"},  // syntax error at runtime
                                         {"GET", k[0]}});
    REQUIRE(r.is_array());
    REQUIRE(r.elements.size() == 8);
    CHECK(r.elements[1].error_starts_with("WRONGTYPE"));
    CHECK(r.elements[3].error_starts_with("ERR value is not an integer"));
    CHECK(r.elements[7] == Reply::string("ab"));
    c.same({"GET", k[0]});
    c.same({"LRANGE", k[1], "0", "-1"});
    c.same({"GET", k[2]});
    CHECK(direct_get(cluster, k[0]) == Reply::string("ab"));
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("MSET with a missing value inside MULTI fails in place as in Redis",
          "[integration][txn]") {
  // Redis checks MSET's argument count when it runs (its arity is -3), so inside MULTI the
  // command is QUEUED and EXEC answers its error in place, applying the other commands.
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "msetodd")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    c.same({"MULTI"});
    c.same({"MSET", k[0], "a", k[1]});
    c.same({"SET", k[2], "applied"});
    c.same({"EXEC"});
    c.same({"MGET", k[0], k[1], k[2]});
  }
}

TEST_CASE("MGET, MSET, DEL, EXISTS, TOUCH and UNLINK across backends inside MULTI",
          "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "split")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    const std::string missing = "split:missing:" + l.name.substr(0, 3);
    const Reply r = same_transaction(
        c, {{"MSET", k[2], "c", k[0], "a", k[1], "b"},
            {"MGET", k[1], missing, k[0], k[2], k[1]},
            {"EXISTS", k[0], k[1], missing, k[2], k[0]},
            {"TOUCH", k[2], k[1]},
            {"DEL", k[0], missing, k[2]},
            {"MGET", k[0], k[1], k[2]},
            {"MSET", k[0], "first", k[1], "x", k[0], "second"},  // the last value wins
            {"MGET", k[0], k[1]},
            {"UNLINK", k[1], k[0]},
            {"EXISTS", k[0], k[1], k[2]}});
    REQUIRE(r.is_array());
    REQUIRE(r.elements.size() == 10);
    CHECK(r.elements[1] == Reply::array({Reply::string("b"), Reply::nil(), Reply::string("a"),
                                         Reply::string("c"), Reply::string("b")}));
    CHECK(r.elements[2] == Reply::integer_(4));
    CHECK(r.elements[4] == Reply::integer_(2));
    CHECK(r.elements[7] == Reply::array({Reply::string("second"), Reply::string("x")}));
    c.same(cat({"EXISTS"}, k));
    // A cross-backend MSET inside MULTI lands on every owner.
    same_transaction(c, {{"MSET", k[0], "0", k[1], "1", k[2], "2"}});
    for (size_t i = 0; i < k.size(); ++i)
      CHECK(direct_get(cluster, k[i]) == Reply::string(std::to_string(i)));
  }
  check_no_internal_keys(cluster);
}

// ---------------------------------------------------------------------------------------------
// WATCH

TEST_CASE("a watched key changed through Lockstep makes EXEC nil and applies nothing",
          "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client(), px_other = cluster.client();
  for (const auto& l : layouts(cluster, "wchg")) {
    const auto& k = l.k;
    for (size_t changed = 0; changed < k.size(); ++changed) {
      INFO("layout: " << l.name << ", changed key " << k[changed]);
      for (const auto& key : k) c.same({"SET", key, "orig"});
      c.same(cat({"WATCH"}, k));
      CHECK(ref_other("SET", k[changed], "other").is_ok());
      CHECK(px_other("SET", k[changed], "other").is_ok());
      c.same({"MULTI"});
      for (const auto& key : k) c.same({"SET", key, "txn"});
      c.same({"INCR", "wchg:counter:" + l.name.substr(0, 3)});
      CHECK(c.same({"EXEC"}).is_nil());
      c.same(cat({"MGET"}, k));
      c.same({"GET", "wchg:counter:" + l.name.substr(0, 3)});
      for (size_t i = 0; i < k.size(); ++i)
        CHECK(direct_get(cluster, k[i]) == Reply::string(i == changed ? "other" : "orig"));
    }
  }
  // Watching a key that did not exist, which another client then creates.
  const std::string fresh = cluster.key_on(1, "wchg:fresh");
  c.same({"WATCH", fresh});
  CHECK(ref_other("SET", fresh, "1").is_ok());
  CHECK(px_other("SET", fresh, "1").is_ok());
  CHECK(same_transaction(c, {{"SET", fresh, "2"}}).is_nil());
  c.same({"GET", fresh});
  check_no_internal_keys(cluster);
}

TEST_CASE("a watched key changed directly on its backend makes EXEC nil", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client();
  for (const auto& l : layouts(cluster, "wdirect")) {
    const auto& k = l.k;
    for (size_t changed = 0; changed < k.size(); ++changed) {
      INFO("layout: " << l.name << ", changed key " << k[changed]);
      for (const auto& key : k) c.same({"SET", key, "orig"});
      c.same(cat({"WATCH"}, k));
      CHECK(ref_other("APPEND", k[changed], "+").integer == 5);
      CHECK(cluster.direct(cluster.owner(k[changed]))("APPEND", k[changed], "+").integer == 5);
      const Reply r = same_transaction(c, {{"SET", k[0], "txn"}, {"DEL", k[1]}, {"INCR", k[2]}});
      CHECK(r.is_nil());
      c.same(cat({"MGET"}, k));
      for (size_t i = 0; i < k.size(); ++i)
        CHECK(direct_get(cluster, k[i]) == Reply::string(i == changed ? "orig+" : "orig"));
    }
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("unchanged watched keys let EXEC apply", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client(), px_other = cluster.client();
  for (const auto& l : layouts(cluster, "wsame")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    c.same({"SET", k[0], "1"});
    // Watched: existing and missing keys, on every backend of the layout; another client
    // touches other keys meanwhile, and reads the watched ones.
    c.same(cat({"WATCH"}, k));
    const std::string unrelated = cluster.key_on(cluster.owner(k[1]), "wsame:other");
    CHECK(ref_other("SET", unrelated, "x").is_ok());
    CHECK(px_other("SET", unrelated, "x").is_ok());
    CHECK(ref_other("GET", k[0]) == px_other("GET", k[0]));
    const Reply r = same_transaction(c, {{"INCR", k[0]}, {"SET", k[1], "b"}, {"RPUSH", k[2], "c"}});
    REQUIRE(r.is_array());
    CHECK(r.elements[0] == Reply::integer_(2));
    c.same({"MGET", k[0], k[1]});
    CHECK(direct_get(cluster, k[1]) == Reply::string("b"));
    // WATCH of a key on a backend the transaction does not write to.
    const std::string elsewhere = cluster.key_on(2, "wsame:elsewhere:" + l.name.substr(0, 3));
    c.same({"WATCH", elsewhere});
    CHECK(same_transaction(c, {{"INCR", k[0]}}) == Reply::array({Reply::integer_(3)}));
    // Several WATCH calls add up.
    c.same({"WATCH", k[0]});
    c.same({"WATCH", k[1], elsewhere});
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"GET", k[1]}}).is_array());
    // A WATCH, then a transaction of PING only.
    c.same({"WATCH", k[0], k[1]});
    CHECK(same_transaction(c, {{"PING"}}) == Reply::array({Reply::status("PONG")}));
    // An empty transaction after WATCH.
    c.same({"WATCH", k[2]});
    CHECK(same_transaction(c, {}) == Reply::array({}));
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("watched keys on two backends, one changed: nothing applied on either",
          "[integration][txn]") {
  Cluster cluster(txn_options());
  Client c = cluster.client();
  const std::string a = cluster.key_on(0, "w2"), b = cluster.key_on(1, "w2"),
                    e = cluster.key_on(2, "w2");
  for (const std::string& changed : {a, b}) {
    INFO("changed: " << changed);
    for (const auto& key : {a, b, e}) REQUIRE(c("SET", key, "orig").is_ok());
    REQUIRE(c("WATCH", a, b).is_ok());
    REQUIRE(cluster.direct(cluster.owner(changed))("SET", changed, "direct").is_ok());
    REQUIRE(c("MULTI").is_ok());
    CHECK(c("SET", a, "txn") == Reply::status("QUEUED"));
    CHECK(c("SET", b, "txn") == Reply::status("QUEUED"));
    CHECK(c("SET", e, "txn") == Reply::status("QUEUED"));
    CHECK(c("EXEC").is_nil());
    CHECK(direct_get(cluster, a) == Reply::string(changed == a ? "direct" : "orig"));
    CHECK(direct_get(cluster, b) == Reply::string(changed == b ? "direct" : "orig"));
    CHECK(direct_get(cluster, e) == Reply::string("orig"));
    check_no_internal_keys(cluster);
  }
  // And unchanged: applied on all three.
  REQUIRE(c("WATCH", a, b).is_ok());
  CHECK(
      c.pipeline({{"MULTI"}, {"SET", a, "1"}, {"SET", b, "2"}, {"SET", e, "3"}, {"EXEC"}}).back() ==
      Reply::array({Reply::status("OK"), Reply::status("OK"), Reply::status("OK")}));
  CHECK(direct_get(cluster, a) == Reply::string("1"));
  CHECK(direct_get(cluster, b) == Reply::string("2"));
  CHECK(direct_get(cluster, e) == Reply::string("3"));
  check_no_internal_keys(cluster);
}

TEST_CASE("UNWATCH, EXEC and DISCARD unwatch", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client(), px_other = cluster.client();
  auto change = [&](const std::string& key) {
    CHECK(ref_other("INCR", key).is_integer());
    CHECK(px_other("INCR", key).is_integer());
  };
  for (const auto& l : layouts(cluster, "unw")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    // WATCH, UNWATCH, change: applied.
    c.same(cat({"WATCH"}, k));
    CHECK(c.same({"UNWATCH"}).is_ok());
    change(k[0]);
    change(k[1]);
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"INCR", k[1]}, {"INCR", k[2]}}).is_array());
    // WATCH, MULTI, EXEC (applied), change, MULTI, EXEC: applied.
    c.same(cat({"WATCH"}, k));
    CHECK(same_transaction(c, {{"INCR", k[2]}}).is_array());
    change(k[0]);
    change(k[1]);
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"INCR", k[1]}}).is_array());
    // WATCH, MULTI, DISCARD, change, MULTI, EXEC: applied.
    c.same(cat({"WATCH"}, k));
    c.same({"MULTI"});
    c.same({"INCR", k[0]});
    CHECK(c.same({"DISCARD"}).is_ok());
    change(k[0]);
    change(k[1]);
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"INCR", k[1]}}).is_array());
    // WATCH, change, EXEC (nil), change again, MULTI, EXEC: applied (the failed EXEC
    // unwatched too).
    c.same({"WATCH", k[1]});
    change(k[1]);
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"INCR", k[1]}}).is_nil());
    change(k[1]);
    CHECK(same_transaction(c, {{"INCR", k[0]}, {"INCR", k[1]}}).is_array());
    // UNWATCH without WATCH; UNWATCH queued inside MULTI.
    CHECK(c.same({"UNWATCH"}).is_ok());
    c.same({"WATCH", k[0]});
    CHECK(same_transaction(c, {{"UNWATCH"}, {"INCR", k[0]}}).is_array());
    change(k[0]);
    CHECK(same_transaction(c, {{"INCR", k[0]}}).is_array());
    c.same(cat({"MGET"}, k));
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("a failed cross-backend EXEC unwatches every backend", "[integration][txn]") {
  // EXEC unwatches all keys whatever its outcome, so a key watched by an EXEC that answered nil
  // must not fail a later transaction of the same or another client.
  RedisServer reference;
  Cluster cluster(txn_options("  conflict_timeout_ms: 2000\n"));
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client(), px_other = cluster.client();
  const std::string a = cluster.key_on(0, "stale"), b = cluster.key_on(1, "stale"),
                    later = cluster.key_on(1, "stale", 3);
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    c.same({"WATCH", a, b});
    // The key on the first-watched backend changes: the transaction fails there first.
    CHECK(ref_other("SET", a, "changed").is_ok());
    CHECK(cluster.direct(0)("SET", a, "changed").is_ok());
    CHECK(same_transaction(c, {{"SET", a, "1"}, {"SET", b, "1"}}).is_nil());
    // Now watch another key on b's backend; b (no longer watched) changes.
    c.same({"WATCH", later});
    CHECK(ref_other("SET", b, "changed").is_ok());
    CHECK(px_other("SET", b, "changed").is_ok());
    const Reply r = same_transaction(c, {{"SET", later, "applied"}});
    CHECK(r == Reply::array({Reply::status("OK")}));
    c.same({"GET", later});
    c.same({"DEL", later});
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("disconnecting drops the client's WATCHes and their backend connections",
          "[integration][txn]") {
  Cluster cluster(txn_options());
  std::vector<Client> probes;  // kept open: counted in the baseline
  for (size_t b = 0; b < cluster.size(); ++b) probes.push_back(cluster.direct(b));
  {
    Client warm = cluster.client();  // every worker's shared connections exist by now
    REQUIRE(warm("PING").str == "PONG");
  }
  std::vector<long long> baseline;
  for (auto& p : probes) baseline.push_back(info_int(p, "clients", "connected_clients"));
  const std::string a = cluster.key_on(0, "disc"), b = cluster.key_on(1, "disc"),
                    e = cluster.key_on(2, "disc");
  auto at_baseline = [&] {
    for (size_t i = 0; i < probes.size(); ++i)
      if (info_int(probes[i], "clients", "connected_clients") != baseline[i]) return false;
    return true;
  };
  for (int i = 0; i < 20; ++i) {
    INFO("client " << i);
    Client w = cluster.client();
    REQUIRE(w("WATCH", a, b, e).is_ok());
    if (i % 2 == 1) {  // sometimes gone in the middle of a transaction
      REQUIRE(w("MULTI").is_ok());
      REQUIRE(w("SET", a, "x") == Reply::status("QUEUED"));
    }
    if (i == 0) {
      // One connection of its own per backend carries its WATCHes.
      CHECK(wait_until(
          [&] {
            for (size_t j = 0; j < probes.size(); ++j)
              if (info_int(probes[j], "clients", "connected_clients") != baseline[j] + 1)
                return false;
            return true;
          },
          5s));
    }
  }  // each client disconnects here
  CHECK(wait_until(at_baseline, 5s));
  // Nothing of theirs still applies: a new client's watched transaction commits.
  Client c = cluster.client();
  REQUIRE(c("WATCH", a, b, e).is_ok());
  REQUIRE(c("MULTI").is_ok());
  REQUIRE(c("SET", a, "y") == Reply::status("QUEUED"));
  REQUIRE(c("SET", e, "y") == Reply::status("QUEUED"));
  CHECK(c("EXEC") == Reply::array({Reply::status("OK"), Reply::status("OK")}));
  CHECK(direct_get(cluster, a) == Reply::string("y"));
  check_no_internal_keys(cluster);
}

TEST_CASE("RESET drops the client's WATCHes", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  Client ref_other = reference.client(), px_other = cluster.client();
  for (const auto& l : layouts(cluster, "reset")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    c.same(cat({"WATCH"}, k));
    CHECK(c.same({"RESET"}) == Reply::status("RESET"));
    CHECK(ref_other("SET", k[1], "other").is_ok());
    CHECK(px_other("SET", k[1], "other").is_ok());
    CHECK(same_transaction(c, {{"SET", k[0], "t"}, {"SET", k[1], "t"}}).is_array());
    c.same(cat({"MGET"}, k));
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("RESET and QUIT inside MULTI act at once as in Redis", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  const std::string a = cluster.key_on(0, "rq"), b = cluster.key_on(1, "rq");
  // RESET leaves the transaction (discarding it) and answers +RESET.
  c.same({"MULTI"});
  c.same({"SET", a, "queued"});
  CHECK(c.same({"RESET"}) == Reply::status("RESET"));
  c.same_error({"EXEC"});
  c.same({"MGET", a, b});
  // QUIT answers +OK and closes the connection; nothing queued is applied.
  RawConn ref(reference.port()), px = cluster.raw();
  raw_pipeline_same(ref, px, {{"MULTI"}, {"SET", a, "queued"}, {"SET", b, "queued"}, {"QUIT"}});
  CHECK(ref.closed_by_peer(5s));
  CHECK(px.closed_by_peer(2s));
  c.same({"MGET", a, b});
}

TEST_CASE("HELLO 3 after WATCH: EXEC still answers in RESP3", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  RawConn ref(reference.port()), px = cluster.raw();
  for (const auto& l : layouts(cluster, "hello")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    for (RawConn* conn : {&ref, &px}) {  // back to RESP2 (HELLO's reply differs: not compared)
      REQUIRE(conn->send(encode_command({"HELLO", "2"})));
      CHECK(or_none(conn->read_raw_reply(5s)).starts_with("*"));
    }
    raw_same(ref, px, {"DEL", k[0], k[1]});
    raw_same(ref, px, {"HSET", k[0], "f", "v"});
    raw_same(ref, px, {"WATCH", k[0], k[1]});
    for (RawConn* conn : {&ref, &px}) {
      REQUIRE(conn->send(encode_command({"HELLO", "3"})));
      CHECK(or_none(conn->read_raw_reply(5s)).starts_with("%"));
    }
    raw_same(ref, px, {"MULTI"});
    raw_same(ref, px, {"HGETALL", k[0]});
    raw_same(ref, px, {"GET", k[1]});
    raw_same(ref, px, {"EXEC"});
  }
  check_no_internal_keys(cluster);
}

// ---------------------------------------------------------------------------------------------
// RESP3 and pipelining

TEST_CASE("RESP3 clients get RESP3 replies from EXEC", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  RawConn ref(reference.port()), px = cluster.raw();
  RawConn ref_other(reference.port()), px_other = cluster.raw();
  for (RawConn* conn : {&ref, &px}) {
    REQUIRE(conn->send(encode_command({"HELLO", "3"})));
    const auto hello = conn->read_raw_reply(5s);
    REQUIRE(hello);
    CHECK(hello->starts_with("%"));
  }
  for (const auto& l : layouts(cluster, "resp3")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    const std::vector<std::vector<std::string>> commands = {
        {"SET", k[0], "1.5"},
        {"HSET", k[1], "f", "v", "g", "w"},
        {"HGETALL", k[1]},
        {"SADD", k[2], "m"},
        {"SMEMBERS", k[2]},
        {"GET", "resp3:missing"},
        {"INCRBYFLOAT", k[0], "1"},
        {"SISMEMBER", k[2], "m"},
        {"MGET", k[0], "resp3:missing", k[2]},
        {"EXISTS", k[0], k[1], k[2]},
        {"INCR", k[1]},  // WRONGTYPE in place
        {"PING"},
        {"ECHO", "e"},
        {"DEL", k[0], k[1], k[2]},
    };
    raw_same(ref, px, {"MULTI"});
    for (const auto& argv : commands) CHECK(raw_same(ref, px, argv) == "+QUEUED\r\n");
    const std::string exec = raw_same(ref, px, {"EXEC"});
    CHECK(exec.starts_with("*14\r\n"));
    CHECK(exec.find("%2\r\n") != std::string::npos);  // HGETALL's map
    CHECK(exec.find("~1\r\n") != std::string::npos);  // SMEMBERS' set
    CHECK(exec.find("_\r\n") != std::string::npos);   // GET's null
    // A watch failure is RESP3's null.
    raw_same(ref, px, {"WATCH", k[0], k[1]});
    for (RawConn* conn : {&ref_other, &px_other}) {
      REQUIRE(conn->send(encode_command({"SET", k[1], "other"})));
      CHECK(or_none(conn->read_raw_reply(5s)) == "+OK\r\n");
    }
    raw_same(ref, px, {"MULTI"});
    raw_same(ref, px, {"SET", k[0], "x"});
    raw_same(ref, px, {"SET", k[1], "x"});
    CHECK(raw_same(ref, px, {"EXEC"}) == "_\r\n");
    // Empty, and aborted.
    raw_same(ref, px, {"MULTI"});
    CHECK(raw_same(ref, px, {"EXEC"}) == "*0\r\n");
    raw_same(ref, px, {"MULTI"});
    raw_same(ref, px, {"SET", k[0]});
    raw_same(ref, px, {"EXEC"});
    raw_same(ref, px, {"MGET", k[0], k[1]});
  }
  check_no_internal_keys(cluster);
}

TEST_CASE("a pipelined MULTI ... EXEC and the commands after it see the transaction",
          "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  RawConn ref(reference.port()), px = cluster.raw();
  for (const auto& l : layouts(cluster, "pipe")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    for (int i = 0; i < 20; ++i) {
      INFO("round " << i);
      const std::string v = std::to_string(i);
      raw_pipeline_same(ref, px,
                        {{"MULTI"},
                         {"SET", k[0], v},
                         {"INCR", k[1]},
                         {"RPUSH", k[2], v},
                         {"EXEC"},
                         {"GET", k[0]},
                         {"GET", k[1]},
                         {"MGET", k[0], k[1], k[2]},
                         {"LRANGE", k[2], "-1", "-1"},
                         {"EXISTS", k[0], k[1], k[2]}});
      // With WATCH in the same write, and a DEL right after EXEC.
      raw_pipeline_same(ref, px,
                        {{"WATCH", k[0], k[2]},
                         {"GET", k[0]},
                         {"MULTI"},
                         {"SET", k[0], v + "w"},
                         {"INCR", k[1]},
                         {"EXEC"},
                         {"GET", k[0]},
                         {"DEL", k[2]},
                         {"MULTI"},
                         {"GET", k[1]},
                         {"RPUSH", k[2], "z"},
                         {"EXEC"},
                         {"LLEN", k[2]}});
    }
  }
  check_no_internal_keys(cluster);
}

// ---------------------------------------------------------------------------------------------
// Lockstep's reserved key space

TEST_CASE("cross-backend transactions leave no internal keys behind", "[integration][txn]") {
  Cluster cluster(txn_options());
  Client c = cluster.client();
  Client other = cluster.client();
  const std::string a = cluster.key_on(0, "clean"), b = cluster.key_on(1, "clean"),
                    e = cluster.key_on(2, "clean");
  auto txn = [&](const std::vector<std::vector<std::string>>& cmds) {
    std::vector<std::vector<std::string>> all{{"MULTI"}};
    all.insert(all.end(), cmds.begin(), cmds.end());
    all.push_back({"EXEC"});
    return c.pipeline(all).back();
  };
  SECTION("committed") {
    CHECK(txn({{"SET", a, "1"}, {"SET", b, "1"}, {"SET", e, "1"}}).is_array());
    CHECK(txn({{"MSET", a, "2", b, "2"}, {"DEL", e}}).is_array());
    CHECK(c("MGET", a, b, e) ==
          Reply::array({Reply::string("2"), Reply::string("2"), Reply::nil()}));
  }
  SECTION("committed with runtime errors") {
    REQUIRE(c("RPUSH", b, "x").integer == 1);
    const Reply r = txn({{"SET", a, "1"}, {"INCR", b}, {"SET", e, "1"}});
    REQUIRE(r.is_array());
    CHECK(r.elements[1].error_starts_with("WRONGTYPE"));
  }
  SECTION("watch failed on the first backend (nothing prepared)") {
    REQUIRE(c("WATCH", a, b, e).is_ok());
    REQUIRE(other("SET", a, "x").is_ok());
    CHECK(txn({{"SET", a, "1"}, {"SET", b, "1"}, {"SET", e, "1"}}).is_nil());
    CHECK(direct_get(cluster, b).is_nil());
  }
  SECTION("watch failed on a later backend (rolled back after a prepare)") {
    REQUIRE(c("WATCH", a, b, e).is_ok());
    REQUIRE(cluster.direct(2)("SET", e, "x").is_ok());
    CHECK(txn({{"SET", a, "1"}, {"SET", b, "1"}, {"SET", e, "1"}}).is_nil());
    CHECK(direct_get(cluster, a).is_nil());
    CHECK(direct_get(cluster, b).is_nil());
  }
  SECTION("aborted at queue time, and discarded") {
    CHECK(txn({{"SET", a, "1"}, {"NOSUCH"}, {"SET", b, "1"}}) == Reply::error(kExecAbort));
    CHECK(c.pipeline({{"WATCH", a, e}, {"MULTI"}, {"SET", a, "1"}, {"DISCARD"}}).back().is_ok());
    CHECK(direct_get(cluster, a).is_nil());
  }
  check_no_internal_keys(cluster);
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("clients can neither read, write nor watch Lockstep's transaction keys",
          "[integration][txn]") {
  Cluster cluster(txn_options());
  Client c = cluster.client();
  const std::string a = cluster.key_on(0, "res");
  // A planted internal key (as an in-flight transaction would leave it), and a real one.
  REQUIRE(cluster.direct(0)("SET", "__lockstep:tx:lock:planted", "t").is_ok());
  REQUIRE(c("SET", a, "v").is_ok());
  const std::vector<std::vector<std::string>> refused = {
      {"GET", "__lockstep:tx:lock:planted"},
      {"SET", "__lockstep:tx:lock:planted", "mine"},
      {"DEL", "__lockstep:tx:lock:planted"},
      {"EXISTS", "__lockstep:tx:active"},
      {"ZRANGE", "__lockstep:tx:active", "0", "-1"},
      {"HGETALL", "__lockstep:tx:intent:0123"},
      {"MGET", a, "__lockstep:tx:lock:planted"},
      {"MSET", a, "1", "__lockstep:tx:lock:x", "2"},
      {"EVAL", "return redis.call('GET', KEYS[1])", "1", "__lockstep:tx:lock:planted"},
      {"RENAME", "__lockstep:tx:lock:planted", "__lockstep:tx:lock:renamed"},
      {"WATCH", "__lockstep:tx:lock:planted"},
      {"WATCH", a, "__lockstep:tx:intent:0123"},
      {"WATCH", "__lockstep:tx:poison:x"},
  };
  for (const auto& argv : refused) {
    INFO("command: " << show(argv));
    CHECK(c.command(argv) == Reply::error(kReserved));
  }
  // Inside MULTI: refused when queued, and the transaction is aborted.
  REQUIRE(c("MULTI").is_ok());
  CHECK(c("SET", a, "w") == Reply::status("QUEUED"));
  CHECK(c("SET", "__lockstep:tx:lock:planted", "x") == Reply::error(kReserved));
  CHECK(c("EXEC") == Reply::error(kExecAbort));
  CHECK(c("GET", a) == Reply::string("v"));
  // Listings leave it out.
  CHECK(c("KEYS", "*") == Reply::strings({a}));
  CHECK(c("KEYS", "__lockstep:*") == Reply::array({}));
  std::vector<std::string> scanned;
  std::string cursor = "0";
  do {
    const Reply r = c("SCAN", cursor, "COUNT", "100");
    REQUIRE(r.is_array());
    REQUIRE(r.elements.size() == 2);
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].as_strings()) scanned.push_back(k);
  } while (cursor != "0");
  CHECK(scanned == std::vector<std::string>{a});
  CHECK(cluster.direct(0)("GET", "__lockstep:tx:lock:planted") == Reply::string("t"));
}

TEST_CASE("RANDOMKEY never answers one of Lockstep's internal keys", "[integration][txn]") {
  Cluster cluster(txn_options());
  Client c = cluster.client();
  // The only key anywhere is an internal one (e.g. a transaction record in flight).
  REQUIRE(cluster.direct(0)("SET", "__lockstep:tx:lock:only", "t").is_ok());
  for (int i = 0; i < 20; ++i) {
    const Reply r = c("RANDOMKEY");
    INFO("RANDOMKEY: " << r);
    CHECK((r.is_nil() || !r.str.starts_with("__lockstep:")));
  }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

TEST_CASE("concurrent cross-backend transactions are atomic and serializable",
          "[integration][txn]") {
  Cluster cluster(txn_options());
  const std::vector<std::string> k = {cluster.key_on(0, "serial"), cluster.key_on(1, "serial"),
                                      cluster.key_on(2, "serial")};
  const int kThreads = 8, kTxns = 200;
  std::atomic<long long> arrays{0}, conflicts{0};
  std::mutex mu;
  std::vector<std::string> problems;  // Catch2 assertions are not thread-safe
  std::vector<long long> values;      // the counter value each committed EXEC saw
  std::atomic<long long> reads{0};
  std::atomic<bool> writing{true};
  {
    std::vector<std::jthread> threads;
    // Readers: a read-only transaction over the three keys never sees half of a writer's.
    const int kReaders = 2;
    for (int t = 0; t < kReaders; ++t) {
      threads.emplace_back([&, t] {
        Client c = cluster.client(30s);
        for (int i = 0; i < 1000 && writing; ++i) {
          const auto r =
              c.pipeline({{"MULTI"}, {"GET", k[0]}, {"GET", k[1]}, {"GET", k[2]}, {"EXEC"}});
          const Reply& exec = r.back();
          if (exec.error_starts_with("TXNCONFLICT")) continue;
          if (r.size() != 5 || !exec.is_array() || exec.elements.size() != 3 ||
              exec.elements[1] != exec.elements[0] || exec.elements[2] != exec.elements[0]) {
            std::lock_guard lock(mu);
            if (problems.size() < 10)
              problems.push_back("reader " + std::to_string(t) + " saw " + exec.to_string());
            return;
          }
          ++reads;
        }
      });
    }
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        Client c = cluster.client(30s);
        std::vector<long long> mine;
        auto problem = [&](const std::string& what) {
          std::lock_guard lock(mu);
          if (problems.size() < 10) problems.push_back("thread " + std::to_string(t) + ": " + what);
        };
        for (int i = 0; i < kTxns; ++i) {
          const auto r =
              c.pipeline({{"MULTI"}, {"INCR", k[0]}, {"INCR", k[1]}, {"INCR", k[2]}, {"EXEC"}});
          if (r.size() != 5 || !r[0].is_ok() || r[1] != Reply::status("QUEUED") ||
              r[2] != Reply::status("QUEUED") || r[3] != Reply::status("QUEUED")) {
            std::string all;
            for (const auto& x : r) all += x.to_string() + " | ";
            problem("unexpected replies: " + all);
            return;
          }
          const Reply& exec = r[4];
          if (exec.is_array()) {
            if (exec.elements.size() != 3 || !exec.elements[0].is_integer() ||
                exec.elements[1] != exec.elements[0] || exec.elements[2] != exec.elements[0]) {
              problem("EXEC saw counters that differ: " + exec.to_string());
            } else {
              mine.push_back(exec.elements[0].integer);
            }
            ++arrays;
          } else if (exec.error_starts_with("TXNCONFLICT")) {
            ++conflicts;
          } else {
            problem("EXEC answered " + exec.to_string());
            return;
          }
        }
        std::lock_guard lock(mu);
        values.insert(values.end(), mine.begin(), mine.end());
      });
    }
    for (auto& w : writers) w.join();
    writing = false;
  }
  for (const auto& p : problems) FAIL_CHECK(p);
  INFO("committed " << arrays.load() << ", gave up (TXNCONFLICT) " << conflicts.load()
                    << ", consistent reads " << reads.load());
  CHECK(arrays + conflicts == kThreads * kTxns);
  CHECK(arrays >= kThreads * kTxns / 2);
  Client c = cluster.client();
  const Reply final_values = c("MGET", k[0], k[1], k[2]);
  const Reply expected = Reply::string(std::to_string(arrays.load()));
  CHECK(final_values == Reply::array({expected, expected, expected}));
  // Serializable: every committed transaction saw a distinct value, 1..N without gaps.
  std::sort(values.begin(), values.end());
  bool sequence = values.size() == static_cast<size_t>(arrays.load());
  for (size_t i = 0; sequence && i < values.size(); ++i)
    sequence = values[i] == static_cast<long long>(i + 1);
  CHECK(sequence);
  check_no_internal_keys(cluster);
}

TEST_CASE("a WATCH-based compare-and-set loop across backends loses no increment",
          "[integration][txn]") {
  Cluster cluster(txn_options());
  const std::string a = cluster.key_on(0, "cas"), b = cluster.key_on(1, "cas");
  const int kThreads = 4, kIncrements = 50;
  std::atomic<long long> retries{0};
  std::mutex mu;
  std::vector<std::string> problems;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Client c = cluster.client(30s);
        auto problem = [&](const std::string& what) {
          std::lock_guard lock(mu);
          if (problems.size() < 10) problems.push_back("thread " + std::to_string(t) + ": " + what);
        };
        for (int done = 0; done < kIncrements;) {
          const auto r = c.pipeline({{"WATCH", a, b}, {"GET", a}, {"GET", b}});
          if (r.size() != 3 || !r[0].is_ok() || !(r[1].is_nil() || r[1].is_string()) ||
              !(r[2].is_nil() || r[2].is_string())) {
            problem("WATCH/GET: " + (r.empty() ? std::string("none") : r.back().to_string()));
            return;
          }
          const long long va = r[1].is_nil() ? 0 : std::stoll(r[1].str);
          const long long vb = r[2].is_nil() ? 0 : std::stoll(r[2].str);
          const auto x = c.pipeline({{"MULTI"},
                                     {"SET", a, std::to_string(va + 1)},
                                     {"SET", b, std::to_string(vb + 1)},
                                     {"EXEC"}});
          if (x.size() != 4) {
            problem("short reply");
            return;
          }
          if (x[3].is_nil()) {
            ++retries;
            continue;
          }
          if (x[3] != Reply::array({Reply::status("OK"), Reply::status("OK")})) {
            problem("EXEC answered " + x[3].to_string());
            return;
          }
          ++done;
        }
      });
    }
  }
  for (const auto& p : problems) FAIL_CHECK(p);
  INFO("retries: " << retries.load());
  const std::string total = std::to_string(kThreads * kIncrements);
  CHECK(direct_get(cluster, a) == Reply::string(total));
  CHECK(direct_get(cluster, b) == Reply::string(total));
  check_no_internal_keys(cluster);
}

// ---------------------------------------------------------------------------------------------
// MSETNX

TEST_CASE("MSETNX across backends is all-or-nothing", "[integration][txn]") {
  RedisServer reference;
  Cluster cluster(txn_options());
  Compare c(reference.client(), cluster.client());
  for (const auto& l : layouts(cluster, "msetnx")) {
    INFO("layout: " << l.name);
    const auto& k = l.k;
    CHECK(c.same({"MSETNX", k[0], "a", k[1], "b"}) == Reply::integer_(1));
    c.same({"MGET", k[0], k[1]});
    CHECK(direct_get(cluster, k[0]) == Reply::string("a"));
    CHECK(direct_get(cluster, k[1]) == Reply::string("b"));
    // One key exists (on either side): nothing is set, on any backend.
    CHECK(c.same({"MSETNX", k[2], "c", k[1], "x"}) == Reply::integer_(0));
    CHECK(c.same({"MSETNX", k[0], "x", k[2], "c"}) == Reply::integer_(0));
    c.same({"MGET", k[0], k[1], k[2]});
    CHECK(direct_get(cluster, k[2]).is_nil());
    CHECK(direct_get(cluster, k[1]) == Reply::string("b"));
    // A key of another type counts as existing; a repeated key takes the last value.
    c.same({"DEL", k[0], k[1]});
    c.same({"RPUSH", k[1], "item"});
    CHECK(c.same({"MSETNX", k[0], "y", k[1], "y"}) == Reply::integer_(0));
    c.same({"DEL", k[1]});
    CHECK(c.same({"MSETNX", k[2], "1", k[0], "2", k[2], "3"}) == Reply::integer_(1));
    c.same({"MGET", k[0], k[1], k[2]});
    c.same_error({"MSETNX", k[0], "1", k[1]});
  }
  // Racing MSETNX of the same keys: exactly one wins, and all its values are set.
  const std::vector<std::string> k = {cluster.key_on(0, "race"), cluster.key_on(1, "race"),
                                      cluster.key_on(2, "race")};
  const int kThreads = 8;
  std::vector<Reply> replies(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Client mine = cluster.client();
        const std::string v = std::to_string(t);
        replies[t] = mine("MSETNX", k[0], v, k[1], v, k[2], v);
      });
    }
  }
  int winners = 0, winner = -1;
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t << ": " << replies[t]);
    CHECK((replies[t] == Reply::integer_(0) || replies[t] == Reply::integer_(1)));
    if (replies[t] == Reply::integer_(1)) {
      ++winners;
      winner = t;
    }
  }
  CHECK(winners == 1);
  const Reply w = Reply::string(std::to_string(winner));
  CHECK(c.proxy()("MGET", k[0], k[1], k[2]) == Reply::array({w, w, w}));
  check_no_internal_keys(cluster);
}

TEST_CASE("MSETNX across backends inside MULTI is refused with the reason",
          "[integration][txn]") {
  // Outside MULTI a cross-backend MSETNX is one two-phase transaction. Inside one, its answer
  // would depend on the commands queued before it, which run only at apply time on each
  // backend: Lockstep refuses to queue it (EXECABORT) rather than answer inexactly. With
  // hash tags (one backend) it queues as in Redis.
  Cluster cluster(txn_options());
  Client c = cluster.client();
  const std::string a = cluster.key_on(0, "mmsetnx"), b = cluster.key_on(1, "mmsetnx");
  REQUIRE(c("MULTI").is_ok());
  const Reply q = c("MSETNX", a, "x", b, "y");
  CHECK(q.error_starts_with("ERR MSETNX across backends cannot be queued"));
  CHECK(c("EXEC").error_starts_with("EXECABORT"));
  CHECK(c("EXISTS", a, b) == Reply::integer_(0));
  REQUIRE(c("MULTI").is_ok());
  CHECK(c("MSETNX", "{t}a", "x", "{t}b", "y") == Reply::status("QUEUED"));
  CHECK(c("EXEC") == Reply::array({Reply::integer_(1)}));
  check_no_internal_keys(cluster);
}
