// Replica groups in the configuration: `replicas`, `sentinel`, `durability`, `read_from` and
// `read_max_lag_ms` per backend, the top-level read defaults, `health` and `failover`; the
// checks that need the whole backend list (a server in two groups), dump() and set_scalar.
#include <lockstep/config/config.h>

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "config/schema.h"

namespace {

using namespace lockstep::config;

Config accept(const std::string& yaml) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  INFO(error.format());
  REQUIRE(config.has_value());
  return *config;
}

void reject_at(const std::string& yaml, int line, std::initializer_list<std::string> parts) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  REQUIRE_FALSE(config.has_value());
  INFO(error.format());
  CHECK(error.line == line);
  if (line > 0) CHECK(error.column > 0);
  for (const std::string& part : parts) CHECK_THAT(error.message, Catch::Contains(part));
}

std::vector<std::string> texts(const std::vector<HostPort>& list) {
  std::vector<std::string> out;
  for (const HostPort& hp : list) out.push_back(hp.str());
  return out;
}

}  // namespace

TEST_CASE("replica groups: defaults keep a backend a group of one", "[config]") {
  Config config = accept("backends: [127.0.0.1:7001]\n");
  const BackendConfig& b = config.backends[0];
  CHECK(b.replicas.empty());
  CHECK_FALSE(b.sentinel.enabled());
  CHECK(b.durability == "async");
  CHECK(b.read_from == "default");
  CHECK(b.read_max_lag_ms == -1);
  CHECK(texts(b.servers()) == std::vector<std::string>{"127.0.0.1:7001"});
  CHECK(config.read_from == "primary");
  CHECK(config.read_max_lag_ms == 1000);
  CHECK(config.health.interval_ms == 100);
  CHECK(config.failover.down_after_ms == 1000);
  CHECK(config.failover.min_interval_ms == 30000);
  CHECK(config.failover.lease_ms == 400);
  CHECK(config.effective_read_from(b) == "primary");
  CHECK(config.effective_read_max_lag_ms(b) == 1000);
}

TEST_CASE("replica groups: replicas, durability and read settings", "[config]") {
  Config config = accept(
      "read_from: NEAREST\n"
      "read_max_lag_ms: 250\n"
      "health: {interval_ms: 50}\n"
      "failover: {down_after_ms: 700, min_interval_ms: 0, lease_ms: 300}\n"
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    name: b1\n"
      "    replicas: [10.0.0.2:6379, \"[::1]:6379\"]\n"
      "    durability: replica\n"
      "    read_from: prefer-replica\n"
      "    read_max_lag_ms: 0\n"
      "  - address: 10.0.0.4:6379\n"
      "    replicas:\n"
      "      - 10.0.0.5:6379\n"
      "  - 10.0.0.6:6379\n");
  REQUIRE(config.backends.size() == 3);
  const BackendConfig& b1 = config.backends[0];
  CHECK(texts(b1.replicas) == std::vector<std::string>{"10.0.0.2:6379", "[::1]:6379"});
  CHECK(texts(b1.servers()) ==
        std::vector<std::string>{"10.0.0.1:6379", "10.0.0.2:6379", "[::1]:6379"});
  CHECK(b1.durability == "replica");
  CHECK(config.effective_read_from(b1) == "prefer-replica");
  CHECK(config.effective_read_max_lag_ms(b1) == 0);
  // The second inherits the top-level policy; the third has no replica to read from.
  CHECK(config.effective_read_from(config.backends[1]) == "nearest");
  CHECK(config.effective_read_max_lag_ms(config.backends[1]) == 250);
  CHECK(config.effective_read_from(config.backends[2]) == "primary");
  CHECK(config.health.interval_ms == 50);
  CHECK(config.failover.down_after_ms == 700);
  CHECK(config.failover.min_interval_ms == 0);
  CHECK(config.failover.lease_ms == 300);
}

TEST_CASE("replica groups: a Sentinel-managed backend", "[config]") {
  Config config = accept(
      "backends:\n"
      "  - sentinel:\n"
      "      master: mymaster\n"
      "      addresses: [10.0.0.7:26379, 10.0.0.8:26379, 10.0.0.9:26379]\n"
      "    read_from: replica\n"
      "  - {name: other, sentinel: {master: m2, addresses: [10.0.0.7:26379]}}\n");
  const BackendConfig& b = config.backends[0];
  CHECK(b.sentinel.enabled());
  CHECK(b.sentinel.master == "mymaster");
  CHECK(texts(b.sentinel.addresses) ==
        std::vector<std::string>{"10.0.0.7:26379", "10.0.0.8:26379", "10.0.0.9:26379"});
  CHECK(b.name == "mymaster");  // the master name is the default name
  CHECK(b.address.host.empty());
  CHECK(b.servers().empty());
  CHECK(config.effective_read_from(b) == "replica");
  // Sentinels may watch several groups.
  CHECK(config.backends[1].name == "other");
}

TEST_CASE("replica groups: bad groups are refused with their line", "[config]") {
  // The primary listed as its own replica.
  reject_at(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    replicas: [10.0.0.2:6379, 10.0.0.1:6379]\n",
      3, {"backends[0].replicas[1]: 10.0.0.1:6379 is the primary itself"});
  // A server in two groups, as a replica of both, or as one's primary and the other's replica.
  reject_at(
      "backends:\n"
      "  - {address: 10.0.0.1:6379, name: b1, replicas: [10.0.0.2:6379]}\n"
      "  - {address: 10.0.0.3:6379, name: b2, replicas: [10.0.0.2:6379]}\n",
      3,
      {"backends[1].replicas[0]: 10.0.0.2:6379 is already a server of backend \"b1\"",
       "backends[0].replicas[0], line 2", "one group"});
  reject_at(
      "backends:\n"
      "  - {address: 10.0.0.1:6379, name: b1}\n"
      "  - {address: 10.0.0.3:6379, name: b2, replicas: [10.0.0.1:6379]}\n",
      3,
      {"backends[1].replicas[0]: 10.0.0.1:6379 is already a server of backend \"b1\"",
       "backends[0].address"});
  reject_at(
      "backends:\n"
      "  - {address: 10.0.0.1:6379, name: b1, replicas: [10.0.0.2:6379]}\n"
      "  - 10.0.0.2:6379\n",
      3, {"backends[1].address: 10.0.0.2:6379 is already a server of backend \"b1\""});
  // Listed twice in one list.
  reject_at(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    replicas: [10.0.0.2:6379, 10.0.0.2:6379]\n",
      3, {"backends[0].replicas[1]: 10.0.0.2:6379 is listed twice"});
  // Not addresses.
  reject_at("backends:\n  - {address: 10.0.0.1:6379, replicas: 10.0.0.2:6379}\n", 2,
            {"backends[0].replicas: expected a list of host:port"});
  reject_at("backends:\n  - {address: 10.0.0.1:6379, replicas: [10.0.0.2]}\n", 2,
            {"backends[0].replicas[0]: expected host:port", "\"10.0.0.2\""});
  // Sentinel together with address or replicas, or incomplete.
  reject_at(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    sentinel: {master: m, addresses: [10.0.0.7:26379]}\n",
      3, {"backends[0]: give either `sentinel` or `address`/`replicas`, not both"});
  reject_at(
      "backends:\n"
      "  - replicas: [10.0.0.2:6379]\n"
      "    sentinel: {master: m, addresses: [10.0.0.7:26379]}\n",
      3, {"not both"});
  reject_at("backends:\n  - sentinel: {master: m}\n", 2,
            {"backends[0].sentinel.addresses: list at least one sentinel"});
  reject_at("backends:\n  - sentinel: {addresses: [10.0.0.7:26379]}\n", 2,
            {"backends[0].sentinel.master: required"});
  reject_at("backends:\n  - sentinel: {master: m, adresses: [10.0.0.7:26379]}\n", 2,
            {"unknown key \"backends[0].sentinel.adresses\"",
             "did you mean \"backends[0].sentinel.addresses\""});
  reject_at(
      "backends:\n"
      "  - {address: 10.0.0.1:6379, name: b1}\n"
      "  - sentinel: {master: m, addresses: [10.0.0.1:6379]}\n",
      3,
      {"backends[1].sentinel.addresses[0]: 10.0.0.1:6379 is a data server", "backends[0].address"});
  // No address and no sentinel.
  reject_at("backends:\n  - {name: b1, replicas: [10.0.0.2:6379]}\n", 2,
            {"backends[0]: missing required key \"address\""});
  reject_at("backends:\n  - {address: \"\", name: b1}\n", 2,
            {"backends[0]: missing required key \"address\""});
  // Settings the group cannot honour.
  reject_at(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    durability: replica\n",
      3, {"backends[0].durability: replica needs at least one server in `replicas`"});
  reject_at(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    read_from: replica\n",
      3, {"backends[0].read_from: replica needs at least one server in `replicas`"});
  reject_at("backends:\n  - {address: 10.0.0.1:6379, durability: sync}\n", 2,
            {"backends[0].durability: unknown value \"sync\"", "async, replica"});
  reject_at("backends:\n  - {address: 10.0.0.1:6379, read_from: replicas}\n", 2,
            {"did you mean \"replica\""});
  reject_at("backends:\n  - {address: 10.0.0.1:6379, read_max_lag_ms: -2}\n", 2, {"-1..3600000"});
  // Top-level keys.
  reject_at("backends: [10.0.0.1:6379]\nread_from: default\n", 2,
            {"read_from: unknown value \"default\"", "primary, prefer-replica, replica, nearest"});
  reject_at("backends: [10.0.0.1:6379]\nhealth:\n  interval_ms: 5\n", 3, {"10..60000"});
  reject_at("backends: [10.0.0.1:6379]\nfailover:\n  lease_ms: 10\n", 3, {"20..60000"});
  reject_at("backends: [10.0.0.1:6379]\nfailover:\n  down_after: 10\n", 3,
            {"did you mean \"failover.down_after_ms\""});
}

TEST_CASE("replica groups: dump round-trips groups and sentinels", "[config]") {
  Config config = accept(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    name: b1\n"
      "    replicas: [10.0.0.2:6379, \"[::1]:6379\"]\n"
      "    durability: replica\n"
      "    read_from: nearest\n"
      "    read_max_lag_ms: 20\n"
      "  - sentinel: {master: \"my master\", addresses: [10.0.0.7:26379, 10.0.0.8:26379]}\n"
      "read_from: prefer-replica\n"
      "failover: {lease_ms: 999}\n");
  std::string text = dump(config);
  INFO(text);
  CHECK_THAT(text, Catch::Contains("    sentinel:\n      master: \"my master\"\n"));
  Config again = accept(text);
  CHECK(dump(again) == text);
  REQUIRE(again.backends.size() == 2);
  CHECK(texts(again.backends[0].replicas) ==
        std::vector<std::string>{"10.0.0.2:6379", "[::1]:6379"});
  CHECK(again.backends[0].durability == "replica");
  CHECK(again.backends[0].read_from == "nearest");
  CHECK(again.backends[0].read_max_lag_ms == 20);
  CHECK(again.backends[1].sentinel.master == "my master");
  CHECK(again.backends[1].name == "my master");
  CHECK(texts(again.backends[1].sentinel.addresses) ==
        std::vector<std::string>{"10.0.0.7:26379", "10.0.0.8:26379"});
  CHECK(again.read_from == "prefer-replica");
  CHECK(again.failover.lease_ms == 999);
}

TEST_CASE("replica groups: top-level settings through set_scalar", "[config]") {
  Config config = accept("backends: [127.0.0.1:7001]\n");
  std::string normalized;
  CHECK(set_scalar(config, "read_from", "Replica", &normalized).empty());
  CHECK(normalized == "replica");
  CHECK(set_scalar(config, "failover.min_interval_ms", "60000").empty());
  CHECK(config.failover.min_interval_ms == 60000);
  CHECK(get_scalar(config, "health.interval_ms") == "100");
  CHECK_THAT(set_scalar(config, "failover.down_after_ms", "1"), Catch::Contains("10..3600000"));
  CHECK(config.failover.down_after_ms == 1000);
  CHECK_THAT(set_scalar(config, "backends[].read_from", "primary"),
             Catch::Contains("unknown configuration key"));
}
