// Multi-key commands: split-and-merge ones (MGET/MSET/DEL/UNLINK/EXISTS/TOUCH) work across
// backends; the others need all keys on one backend, else CROSSSLOT.
#include <set>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

const char* const kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";

// Keys on backends 0,1,2,0,1,2,... in an order that interleaves the backends.
std::vector<std::string> spread_keys(const Cluster& cluster, const std::string& prefix,
                                     size_t per_backend) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < per_backend; ++i) {
    for (size_t b = 0; b < cluster.size(); ++b) keys.push_back(cluster.key_on(b, prefix, i));
  }
  return keys;
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("MSET and MGET across backends", "[integration][multikey]") {
  RedisServer reference;
  Cluster cluster;
  Compare c(reference.client(), cluster.client());
  const auto keys = spread_keys(cluster, "mk", 3);  // 9 keys, 3 per backend

  std::vector<std::string> mset{"MSET"};
  for (const auto& k : keys) {
    mset.push_back(k);
    mset.push_back("val-" + k);
  }
  CHECK(c.same(mset).is_ok());
  for (const auto& k : keys) {
    INFO("key " << k);
    CHECK(cluster.holders(k) == std::vector<size_t>{cluster.owner(k)});
  }

  // Reverse order, with missing keys in between (nil in place).
  std::vector<std::string> mget{"MGET"};
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    mget.push_back(*it);
    mget.push_back("mk:missing:" + *it);
  }
  Reply r = c.same(mget);
  REQUIRE(r.elements.size() == keys.size() * 2);
  CHECK(r.elements[0] == Reply::string("val-" + keys.back()));
  CHECK(r.elements[1].is_nil());

  c.same({"MGET", keys[0]});
  c.same({"MGET", "mk:none1", "mk:none2"});
  c.same({"MGET", keys[1], keys[1], keys[0], keys[1]});  // duplicates
  // MSET with the same key twice: the last value wins.
  c.same({"MSET", keys[0], "first", keys[1], "x", keys[0], "second"});
  c.same({"MGET", keys[0], keys[1]});
  // A wrong-type key inside MGET reads as nil, as in Redis.
  const std::string list = cluster.key_on(2, "mklist");
  c.same({"RPUSH", list, "x"});
  c.same({"MGET", keys[0], list, keys[1]});
  c.same_error({"MSET", keys[0], "a", keys[1]});  // odd argument count

  // A large MGET touching every backend many times.
  const auto many = spread_keys(cluster, "big", 100);
  std::vector<std::string> mset_many{"MSET"};
  for (const auto& k : many) {
    mset_many.push_back(k);
    mset_many.push_back(k + "!");
  }
  c.same(mset_many);
  c.same(cat({"MGET"}, many));
}

TEST_CASE("DEL, UNLINK, EXISTS and TOUCH across backends sum the counts",
          "[integration][multikey]") {
  RedisServer reference;
  Cluster cluster;
  Compare c(reference.client(), cluster.client());
  const auto keys = spread_keys(cluster, "cnt", 3);
  for (const auto& k : keys) c.same({"SET", k, "v"});

  c.same(cat({"EXISTS"}, keys));
  c.same({"EXISTS", keys[0], keys[0], keys[1], "cnt:missing"});  // duplicates count twice
  c.same(cat({"TOUCH"}, keys));
  c.same({"TOUCH", "cnt:missing", keys[4]});
  c.same({"DEL", keys[0], keys[1], "cnt:missing", keys[0]});
  c.same(cat({"EXISTS"}, keys));
  c.same({"UNLINK", keys[2], keys[3], keys[4], "cnt:missing"});
  c.same(cat({"DEL"}, keys));
  c.same(cat({"EXISTS"}, keys));
  c.same({"DEL", "cnt:nothing"});
  for (size_t b = 0; b < 3; ++b) CHECK(cluster.direct(b)("DBSIZE") == Reply::integer_(0));
}

TEST_CASE("multi-key commands across backends get CROSSSLOT", "[integration][multikey]") {
  Cluster cluster;
  Client c = cluster.client();
  const std::string a = cluster.key_on(0, "x"), b = cluster.key_on(1, "x"),
                    e = cluster.key_on(2, "x");
  REQUIRE(c("SET", a, "1").is_ok());
  REQUIRE(c("SADD", cluster.key_on(0, "s"), "m").integer == 1);
  const std::string sa = cluster.key_on(0, "s"), sb = cluster.key_on(2, "s");

  const std::vector<std::vector<std::string>> commands = {
      {"RENAME", a, b},
      {"RENAMENX", a, e},
      {"SMOVE", sa, sb, "m"},
      {"LMOVE", a, b, "LEFT", "RIGHT"},
      {"RPOPLPUSH", b, e},
      {"SINTERSTORE", a, b, e},
      {"SINTER", sa, sb},
      {"ZUNIONSTORE", a, "2", b, e},
      {"EVAL", "return 1", "2", a, b},
      {"EVAL", "return redis.call('GET', KEYS[1])", "2", a, e},
  };
  for (const auto& argv : commands) {
    INFO("command: " << show(argv));
    CHECK(c.command(argv) == Reply::error(kCrossSlot));
  }
  // Nothing moved, and the connection is still fine.
  CHECK(c("GET", a) == Reply::string("1"));
  CHECK(c("SMEMBERS", sa) == Reply::strings({"m"}));
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("the same multi-key commands work with hash-tagged keys", "[integration][multikey]") {
  RedisServer reference;
  Cluster cluster;
  Compare c(reference.client(), cluster.client());
  for (const std::string tag : {"{a}", "{b}", "{c}"}) {
    c.same({"SET", tag + "k1", "v"});
    c.same({"RENAME", tag + "k1", tag + "k2"});
    c.same({"SADD", tag + "s1", "m", "n"});
    c.same({"SADD", tag + "s2", "n"});
    c.same({"SMOVE", tag + "s1", tag + "s2", "m"});
    c.unordered({"SMEMBERS", tag + "s2"});
    c.same({"RPUSH", tag + "l1", "1", "2"});
    c.same({"LMOVE", tag + "l1", tag + "l2", "LEFT", "RIGHT"});
    c.same({"LRANGE", tag + "l2", "0", "-1"});
    c.same({"SINTERSTORE", tag + "s3", tag + "s1", tag + "s2"});
    c.same({"ZADD", tag + "z1", "1", "a"});
    c.same({"ZADD", tag + "z2", "2", "a", "3", "b"});
    c.same({"ZUNIONSTORE", tag + "z3", "2", tag + "z1", tag + "z2"});
    c.same({"ZRANGE", tag + "z3", "0", "-1", "WITHSCORES"});
    c.same({"EVAL", "return {redis.call('GET', KEYS[1]), redis.call('LLEN', KEYS[2])}", "2",
            tag + "k2", tag + "l2"});
  }
  // The three tags above do not all live on one backend.
  std::set<size_t> owners{cluster.owner("a"), cluster.owner("b"), cluster.owner("c")};
  CHECK(owners.size() > 1);
}
