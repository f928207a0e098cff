// Keys land on the backend that owns their hash slot (default layout: contiguous even ranges).
#include <set>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("keys are stored on the backend that owns their slot", "[integration][routing]") {
  Cluster cluster;
  Client c = cluster.client();
  std::set<size_t> used;
  for (int i = 0; i < 60; ++i) {
    const std::string key = "route:" + std::to_string(i);
    REQUIRE(c("SET", key, "v" + std::to_string(i)).is_ok());
    INFO("key " << key << " slot " << slot_of(key) << " expected on backend "
                << cluster.owner(key));
    CHECK(cluster.holders(key) == std::vector<size_t>{cluster.owner(key)});
    used.insert(cluster.owner(key));
  }
  CHECK(used.size() == 3);

  // Exactly the slot-range edges: the first and last slot of every backend.
  for (size_t b = 0; b < 3; ++b) {
    const std::string first = cluster.key_on(b, "edge", 0);
    REQUIRE(c("SET", first, "x").is_ok());
    CHECK(cluster.holders(first) == std::vector<size_t>{b});
  }
}

TEST_CASE("slot range boundaries follow i*16384/n", "[integration][routing]") {
  Cluster cluster;
  Client c = cluster.client();
  // For each backend boundary slot, find a key hashing to exactly that slot.
  const std::vector<int> boundaries = {0, 5460, 5461, 10921, 10922, 16383};
  for (int slot : boundaries) {
    std::string key;
    for (int k = 0; key.empty(); ++k) {
      std::string candidate = "b:" + std::to_string(k);
      if (slot_of(candidate) == slot) key = candidate;
    }
    REQUIRE(c("SET", key, "v").is_ok());
    INFO("slot " << slot << " key " << key);
    CHECK(cluster.holders(key) == std::vector<size_t>{owner_of_slot(slot, 3)});
  }
}

TEST_CASE("hash tags co-locate keys", "[integration][routing]") {
  Cluster cluster;
  Client c = cluster.client();
  const std::string following = "{user1000}.following", followers = "{user1000}.followers";
  REQUIRE(slot_of(following) == slot_of(followers));
  REQUIRE(c("SADD", following, "u1", "u2").integer == 2);
  REQUIRE(c("SADD", followers, "u2", "u3").integer == 2);
  const size_t owner = cluster.owner("user1000");
  CHECK(cluster.holders(following) == std::vector<size_t>{owner});
  CHECK(cluster.holders(followers) == std::vector<size_t>{owner});
  CHECK(c("SINTER", following, followers) == Reply::strings({"u2"}));

  // Only the first {...} with non-empty content counts.
  for (const std::string key : {"{}user1000", "a{user1000}{b}", "{user1000", "x{user1000}y"}) {
    REQUIRE(c("SET", key, "v").is_ok());
    INFO("key " << key);
    CHECK(cluster.holders(key) == std::vector<size_t>{cluster.owner(key)});
  }
}

TEST_CASE("data written directly to the owning backend is served through lockstep",
          "[integration][routing]") {
  Cluster cluster;
  Client c = cluster.client();
  for (size_t b = 0; b < 3; ++b) {
    const std::string key = cluster.key_on(b, "direct");
    Client direct = cluster.direct(b);
    REQUIRE(direct("SET", key, "from-backend-" + std::to_string(b)).is_ok());
    CHECK(c("GET", key) == Reply::string("from-backend-" + std::to_string(b)));
    // A copy of the key on a wrong backend is never seen.
    Client wrong = cluster.direct((b + 1) % 3);
    REQUIRE(wrong("SET", key, "wrong").is_ok());
    CHECK(c("GET", key) == Reply::string("from-backend-" + std::to_string(b)));
  }
}

TEST_CASE("backends given as maps: password and db are used on backend connections",
          "[integration][routing][config]") {
  RedisOptions secured;
  secured.password = "backend-pw";
  RedisServer b0(secured);
  RedisServer b1;
  LockstepOptions lo;
  lo.backends_yaml =
      "backends:\n"
      "  - address: " +
      b0.address() +
      "\n"
      "    name: first\n"
      "    password: backend-pw\n"
      "    db: 2\n"
      "  - {address: " +
      b1.address() + ", name: second, db: 3}\n";
  LockstepProcess proxy({}, lo);
  Client c = proxy.client();
  const std::string k0 = key_on(0, 2, "mapped"), k1 = key_on(1, 2, "mapped");
  REQUIRE(c("SET", k0, "zero").is_ok());
  REQUIRE(c("SET", k1, "one").is_ok());
  CHECK(c("MGET", k0, k1) == Reply::strings({"zero", "one"}));
  CHECK(c("DBSIZE") == Reply::integer_(2));
  CHECK(c("SELECT", "0").is_ok());  // clients always see DB 0

  Client d0 = b0.client();
  REQUIRE(d0("AUTH", "backend-pw").is_ok());
  CHECK(d0("GET", k0).is_nil());  // not in DB 0
  REQUIRE(d0("SELECT", "2").is_ok());
  CHECK(d0("GET", k0) == Reply::string("zero"));
  Client d1 = b1.client();
  CHECK(d1("DBSIZE") == Reply::integer_(0));
  REQUIRE(d1("SELECT", "3").is_ok());
  CHECK(d1("GET", k1) == Reply::string("one"));

  // FLUSHDB through the proxy flushes the configured DBs only.
  REQUIRE(d1("SELECT", "0").is_ok());
  REQUIRE(d1("SET", "untouched", "x").is_ok());
  CHECK(c("FLUSHDB").is_ok());
  CHECK(c("DBSIZE") == Reply::integer_(0));
  CHECK(d1("GET", "untouched") == Reply::string("x"));
}

TEST_CASE("explicit slot ranges decide placement", "[integration][routing][config]") {
  RedisServer a, b;
  LockstepOptions lo;
  lo.backends_yaml = "backends:\n  - {address: " + a.address() + ", name: a}\n" +
                     "  - {address: " + b.address() + ", name: b}\n";
  // Uneven: `a` owns only slots 0-99 and 16000-16383.
  lo.extra_yaml =
      "slots:\n"
      "  - {range: 0-99, backend: a}\n"
      "  - {range: 100-15999, backend: b}\n"
      "  - {range: 16000-16383, backend: a}\n";
  LockstepProcess proxy({}, lo);
  Client c = proxy.client();
  Client da = a.client(), db = b.client();
  int checked_a = 0, checked_b = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string key = "custom:" + std::to_string(i);
    const int slot = slot_of(key);
    const bool on_a = slot <= 99 || slot >= 16000;
    REQUIRE(c("SET", key, "v").is_ok());
    INFO("key " << key << " slot " << slot);
    CHECK(da("EXISTS", key) == Reply::integer_(on_a ? 1 : 0));
    CHECK(db("EXISTS", key) == Reply::integer_(on_a ? 0 : 1));
    (on_a ? checked_a : checked_b)++;
  }
  CHECK(checked_a > 0);
  CHECK(checked_b > 0);
}
