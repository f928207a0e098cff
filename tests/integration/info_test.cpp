// INFO through Lockstep: the keyspace section describes the whole keyspace (summed over the
// backends), the other sections keep the fields client libraries look for.
#include <algorithm>
#include <memory>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"
#include "support/resp3.h"

using namespace lockstep::test;

namespace {

// "db0:keys=12,expires=3,avg_ttl=999" -> the number after "<name>=", or -1.
long long keyspace_number(const std::string& db_line, const std::string& name) {
  const std::string needle = name + "=";
  size_t pos = db_line.find(needle);
  if (pos == std::string::npos) return -1;
  pos += needle.size();
  size_t end = pos;
  while (end < db_line.size() && db_line[end] >= '0' && db_line[end] <= '9') ++end;
  if (end == pos) return -1;
  return std::stoll(db_line.substr(pos, end - pos));
}

void run_all(uint16_t port, const std::vector<std::vector<std::string>>& commands) {
  std::string payload;
  for (const auto& c : commands) payload += encode_command(c);
  const auto replies = pipeline_raw(port, payload, commands.size());
  REQUIRE(replies.size() == commands.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    INFO(show(commands[i]) << " -> " << replies[i]);
    REQUIRE_FALSE(replies[i].is_error());
    REQUIRE_FALSE(replies[i].is_io_error());
  }
}

}  // namespace

TEST_CASE("INFO keyspace: keys and expires summed over the backends",
          "[integration][issue3][info]") {
  Cluster cluster;
  Client c = cluster.client();
  // Leftovers on a backend would be counted too: start from nothing.
  REQUIRE(c("SET", "leftover", "x").is_ok());
  REQUIRE(c("FLUSHALL").is_ok());
  {
    const Reply info = c("INFO", "keyspace");
    REQUIRE(info.is_string());
    CHECK(info.str.find("# Keyspace") != std::string::npos);
    CHECK_FALSE(info_field(info.str, "db0"));  // an empty database has no line, as in Redis
  }

  constexpr int kKeys = 900, kWithTtl = 120;
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = "ks:" + std::to_string(i);
    if (i < kWithTtl)
      commands.push_back({"SET", k, "v", "EX", "1000"});
    else if (i % 3 == 0)
      commands.push_back({"HSET", k, "f", "v"});
    else
      commands.push_back({"SET", k, "v"});
  }
  run_all(cluster.port(), commands);

  long long direct_keys = 0, direct_expires = 0;
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client d = cluster.direct(b);
    const Reply info = d("INFO", "keyspace");
    const auto line = info_field(info.str, "db0");
    INFO("backend " << b << ": " << info);
    REQUIRE(line);
    CHECK(keyspace_number(*line, "keys") > 0);
    CHECK(keyspace_number(*line, "expires") > 0);
    direct_keys += keyspace_number(*line, "keys");
    direct_expires += keyspace_number(*line, "expires");
  }
  CHECK(direct_keys == kKeys);
  CHECK(direct_expires == kWithTtl);

  const Reply info = c("INFO", "keyspace");
  INFO(info);
  REQUIRE(info.is_string());
  CHECK(info.str.rfind("# Keyspace\r\n", 0) == 0);
  const auto line = info_field(info.str, "db0");
  REQUIRE(line);
  CHECK(keyspace_number(*line, "keys") == kKeys);
  CHECK(keyspace_number(*line, "expires") == kWithTtl);
  const long long avg_ttl = keyspace_number(*line, "avg_ttl");
  CHECK(avg_ttl >= 0);
  CHECK(avg_ttl <= 1000 * 1000);  // milliseconds; the keys were set to live 1000 s

  // Redis estimates avg_ttl in its expire cycle (0 until then). Once every backend has an
  // estimate, Lockstep's is their average weighted by expires: between their extremes.
  long long lo = 0, hi = 0;
  REQUIRE(wait_until(
      [&] {
        lo = 1LL << 62;
        hi = 0;
        for (size_t b = 0; b < cluster.size(); ++b) {
          Client d = cluster.direct(b);
          const auto l = info_field(d("INFO", "keyspace").str, "db0");
          const long long ttl = l ? keyspace_number(*l, "avg_ttl") : -1;
          if (ttl <= 0) return false;
          lo = std::min(lo, ttl);
          hi = std::max(hi, ttl);
        }
        return true;
      },
      5s, 20ms));
  const auto estimated = info_field(c("INFO", "keyspace").str, "db0");
  REQUIRE(estimated);
  const long long proxy_ttl = keyspace_number(*estimated, "avg_ttl");
  INFO("backends' avg_ttl between " << lo << " and " << hi << "; lockstep: " << *estimated);
  CHECK(proxy_ttl >= lo - 1000);  // a little slack: time passes between the INFO calls
  CHECK(proxy_ttl <= hi + 1000);
  CHECK(proxy_ttl > 900 * 1000);
  CHECK(c("DBSIZE") == Reply::integer_(kKeys));

  // Deleting keys and removing TTLs is reflected at once.
  REQUIRE(c("DEL", "ks:0", "ks:1", "ks:2", "ks:500") == Reply::integer_(4));
  REQUIRE(c("PERSIST", "ks:3") == Reply::integer_(1));
  const auto after = info_field(c("INFO", "keyspace").str, "db0");
  REQUIRE(after);
  CHECK(keyspace_number(*after, "keys") == kKeys - 4);
  CHECK(keyspace_number(*after, "expires") == kWithTtl - 4);

  // Back to empty.
  REQUIRE(c("FLUSHALL").is_ok());
  CHECK_FALSE(info_field(c("INFO", "keyspace").str, "db0"));
}

TEST_CASE("INFO keyspace: the same text as one redis-server with the same keys (no TTLs)",
          "[integration][issue3][info]") {
  Cluster cluster;
  RedisServer reference;
  Compare cmp(reference.client(), cluster.client());
  cmp.same({"INFO", "keyspace"});  // empty
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < 300; ++i) commands.push_back({"SET", "same:" + std::to_string(i), "v"});
  run_all(cluster.port(), commands);
  run_all(reference.port(), commands);
  const Reply r = cmp.same({"INFO", "keyspace"});
  CHECK(r == Reply::string("# Keyspace\r\ndb0:keys=300,expires=0,avg_ttl=0\r\n"));
  cmp.same({"DBSIZE"});
}

TEST_CASE("INFO: default and named sections", "[integration][issue3][info]") {
  Cluster cluster;
  Client c = cluster.client();
  REQUIRE(c("SET", "a", "1").is_ok());
  REQUIRE(c("SET", "b", "2", "EX", "100").is_ok());

  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"INFO"}, {"INFO", "default"}, {"INFO", "all"}, {"INFO", "everything"}}) {
    const Reply info = c.command(argv);
    INFO(show(argv) << " -> " << info);
    REQUIRE(info.is_string());
    CHECK(info.str.find("# Server\r\n") != std::string::npos);
    CHECK(info.str.find("\r\nredis_version:") != std::string::npos);
    CHECK(info.str.find("\r\nloading:0\r\n") != std::string::npos);
    CHECK(info.str.find("# Clients\r\n") != std::string::npos);
    CHECK(info.str.find("# Keyspace\r\n") != std::string::npos);
    CHECK(info_field(info.str, "db0").value_or("").rfind("keys=2,expires=1,", 0) == 0);
    CHECK_FALSE(info.str.ends_with("\r\n\r\n"));  // Redis ends with one CRLF
  }

  // Named sections: only those.
  const Reply server = c("INFO", "server");
  CHECK(server.str.find("redis_version:") != std::string::npos);
  CHECK(server.str.find("# Keyspace") == std::string::npos);
  CHECK(server.str.find("# Clients") == std::string::npos);

  const Reply both = c("INFO", "server", "keyspace");
  CHECK(both.str.find("redis_version:") != std::string::npos);
  CHECK(both.str.find("# Keyspace\r\ndb0:keys=2,expires=1,") != std::string::npos);
  CHECK(both.str.find("# Clients") == std::string::npos);

  const Reply persistence = c("INFO", "persistence");
  CHECK(info_field(persistence.str, "loading") == "0");

  const Reply clients = c("INFO", "clients");
  INFO(clients);
  CHECK(clients.str.rfind("# Clients\r\n", 0) == 0);
  CHECK(info_field(clients.str, "blocked_clients") == "0");
  CHECK(info_int(c, "clients", "connected_clients") >= 1);
  CHECK(clients.str.find("# Keyspace") == std::string::npos);

  // Upper case section names work as in Redis.
  CHECK(c("INFO", "KEYSPACE").str.find("db0:keys=2,") != std::string::npos);
}

TEST_CASE("INFO keyspace: counts the database Lockstep uses on each backend (backends[].db)",
          "[integration][issue3][info]") {
  std::vector<std::unique_ptr<RedisServer>> backends;
  std::string yaml = "backends:\n";
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    backends.push_back(std::make_unique<RedisServer>());
    addresses.push_back(backends.back()->address());
    yaml += "  - {address: " + backends.back()->address() + ", db: 2}\n";
  }
  LockstepOptions options;
  options.backends_yaml = yaml;
  LockstepProcess proxy(addresses, options);

  // Other data in database 0 of every backend is not Lockstep's.
  for (auto& b : backends) {
    Client d = b->client();
    for (int i = 0; i < 5; ++i) REQUIRE(d("SET", "other:" + std::to_string(i), "x").is_ok());
  }
  Client c = proxy.client();
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < 30; ++i)
    commands.push_back({"SET", "mine:" + std::to_string(i), "v", "EX", "1000"});
  run_all(proxy.port(), commands);
  for (auto& b : backends) {
    Client d = b->client();
    REQUIRE(d("SELECT", "2").is_ok());
    CHECK(d("DBSIZE").integer > 0);  // spread over all three
  }
  CHECK(c("DBSIZE") == Reply::integer_(30));
  const Reply info = c("INFO", "keyspace");
  INFO(info);
  const auto line = info_field(info.str, "db0");
  REQUIRE(line);
  CHECK(keyspace_number(*line, "keys") == 30);
  CHECK(keyspace_number(*line, "expires") == 30);
  CHECK_FALSE(info_field(info.str, "db2"));  // clients see one database, db0
}
