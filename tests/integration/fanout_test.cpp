// Keyspace-wide commands: sent to every backend and merged (DBSIZE, FLUSHDB, FLUSHALL, KEYS,
// RANDOMKEY, SCRIPT LOAD/EXISTS/FLUSH).
#include <set>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

long long direct_dbsize(const Cluster& cluster, size_t b) {
  Reply r = cluster.direct(b)("DBSIZE");
  return r.is_integer() ? r.integer : -1;
}

void fill(Client& c, const std::vector<std::string>& keys) {
  for (const auto& k : keys) REQUIRE(c("SET", k, "v").is_ok());
}

}  // namespace

TEST_CASE("DBSIZE sums the backends", "[integration][fanout]") {
  Cluster cluster;
  Client c = cluster.client();
  CHECK(c("DBSIZE") == Reply::integer_(0));
  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) keys.push_back("size:" + std::to_string(i));
  fill(c, keys);
  CHECK(c("DBSIZE") == Reply::integer_(50));
  long long sum = 0;
  for (size_t b = 0; b < 3; ++b) {
    const long long n = direct_dbsize(cluster, b);
    CHECK(n > 0);  // 50 keys do not all hash to one third of the slots
    sum += n;
  }
  CHECK(sum == 50);
}

TEST_CASE("FLUSHDB and FLUSHALL clear every backend", "[integration][fanout]") {
  Cluster cluster;
  Client c = cluster.client();
  for (const char* flush : {"FLUSHDB", "FLUSHALL"}) {
    INFO(flush);
    std::vector<std::string> keys;
    for (size_t b = 0; b < 3; ++b) {
      for (size_t i = 0; i < 3; ++i) keys.push_back(cluster.key_on(b, flush, i));
    }
    fill(c, keys);
    REQUIRE(c("DBSIZE") == Reply::integer_(9));
    CHECK(c(flush).is_ok());
    for (size_t b = 0; b < 3; ++b) CHECK(direct_dbsize(cluster, b) == 0);
    CHECK(c("DBSIZE") == Reply::integer_(0));
  }
  // The ASYNC / SYNC forms too.
  fill(c, {cluster.key_on(0, "async"), cluster.key_on(2, "async")});
  CHECK(c("FLUSHDB", "ASYNC").is_ok());
  CHECK(wait_until([&] { return c("DBSIZE") == Reply::integer_(0); }, 5s));
  fill(c, {cluster.key_on(1, "sync")});
  CHECK(c("FLUSHALL", "SYNC").is_ok());
  CHECK(c("DBSIZE") == Reply::integer_(0));
}

TEST_CASE("KEYS returns the union over backends", "[integration][fanout]") {
  Cluster cluster;
  Client c = cluster.client();
  CHECK(c("KEYS", "*") == Reply::array({}));
  std::vector<std::string> keys;
  for (size_t b = 0; b < 3; ++b) {
    for (size_t i = 0; i < 4; ++i) keys.push_back(cluster.key_on(b, "keys", i));
  }
  fill(c, keys);
  REQUIRE(c("SET", "other:1", "v").is_ok());
  CHECK(c("KEYS", "keys:*").sorted() == Reply::strings(keys).sorted());
  Reply all = c("KEYS", "*");
  CHECK(all.elements.size() == keys.size() + 1);
  CHECK(c("KEYS", "nomatch*") == Reply::array({}));
  CHECK(c("KEYS", "other:?") == Reply::strings({"other:1"}));
}

TEST_CASE("RANDOMKEY returns an existing key, nil when empty", "[integration][fanout]") {
  Cluster cluster;
  Client c = cluster.client();
  CHECK(c("RANDOMKEY").is_nil());
  // A single key on the last backend: RANDOMKEY must find it wherever it starts looking.
  const std::string only = cluster.key_on(2, "rk");
  REQUIRE(c("SET", only, "v").is_ok());
  for (int i = 0; i < 20; ++i) CHECK(c("RANDOMKEY") == Reply::string(only));
  std::set<std::string> keys{only};
  for (size_t b = 0; b < 2; ++b) {
    keys.insert(cluster.key_on(b, "rk"));
    REQUIRE(c("SET", cluster.key_on(b, "rk"), "v").is_ok());
  }
  for (int i = 0; i < 20; ++i) {
    Reply r = c("RANDOMKEY");
    REQUIRE(r.is_string());
    CHECK(keys.count(r.str) == 1);
  }
  REQUIRE(c("FLUSHALL").is_ok());
  CHECK(c("RANDOMKEY").is_nil());
}

TEST_CASE("SCRIPT LOAD then EVALSHA works for keys on every backend", "[integration][fanout]") {
  Cluster cluster;
  Client c = cluster.client();
  const std::string script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
  Reply sha = c("SCRIPT", "LOAD", script);
  REQUIRE(sha.is_string());
  // Same SHA1 as Redis computes.
  CHECK(sha == cluster.direct(0)("SCRIPT", "LOAD", script));
  for (size_t b = 0; b < 3; ++b) {
    INFO("backend " << b);
    CHECK(cluster.direct(b)("SCRIPT", "EXISTS", sha.str) == Reply::array({Reply::integer_(1)}));
    const std::string key = cluster.key_on(b, "sha");
    CHECK(c("EVALSHA", sha.str, "1", key, "5") == Reply::integer_(5));
    CHECK(c("EVALSHA_RO", sha.str, "1", key, "5").is_error());  // INCRBY is a write
    CHECK(c("GET", key) == Reply::string("5"));
  }
  const std::string bogus(40, 'f');
  CHECK(c("SCRIPT", "EXISTS", sha.str, bogus) ==
        Reply::array({Reply::integer_(1), Reply::integer_(0)}));
  CHECK(c("EVALSHA", bogus, "1", cluster.key_on(1, "sha")) ==
        cluster.direct(1)("EVALSHA", bogus, "1", cluster.key_on(1, "sha")));

  // Loaded on one backend only (behind lockstep's back): SCRIPT EXISTS says 0.
  const std::string partial = "return 'partial'";
  Reply psha = cluster.direct(1)("SCRIPT", "LOAD", partial);
  REQUIRE(psha.is_string());
  CHECK(c("SCRIPT", "EXISTS", psha.str) == Reply::array({Reply::integer_(0)}));

  CHECK(c("SCRIPT", "FLUSH").is_ok());
  CHECK(c("SCRIPT", "EXISTS", sha.str) == Reply::array({Reply::integer_(0)}));
  for (size_t b = 0; b < 3; ++b) {
    CHECK(cluster.direct(b)("SCRIPT", "EXISTS", sha.str) == Reply::array({Reply::integer_(0)}));
  }
}
