#include <lockstep/config/config.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "config/schema.h"

namespace {

using namespace lockstep::config;

const std::string kBackends = "backends: [127.0.0.1:7001, 127.0.0.1:7002]\n";

Config accept(const std::string& yaml) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  INFO(error.format());
  REQUIRE(config.has_value());
  return *config;
}

ConfigError reject(const std::string& yaml) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  REQUIRE_FALSE(config.has_value());
  REQUIRE_FALSE(error.message.empty());
  CHECK(error.file == "test.yaml");
  return error;
}

// Asserts a rejection at `line` whose message contains every one of `parts`.
void reject_at(const std::string& yaml, int line, std::initializer_list<std::string> parts) {
  ConfigError error = reject(yaml);
  INFO(yaml);
  INFO(error.format());
  CHECK(error.line == line);
  if (line > 0) CHECK(error.column > 0);
  for (const std::string& part : parts) CHECK_THAT(error.message, Catch::Contains(part));
}

// The unit tests run from the build tree, so the repository is found from this file's path.
std::filesystem::path repo_root() {
  std::filesystem::path here = __FILE__;
  if (here.is_relative()) here = std::filesystem::current_path() / here;
  return here.parent_path().parent_path().parent_path().parent_path();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string slots_yaml(const std::string& items) {
  return "backends:\n"
         "  - {address: 127.0.0.1:7001, name: b1}\n"
         "  - {address: 127.0.0.1:7002, name: b2}\n"
         "slots:\n" +
         items;
}

}  // namespace

TEST_CASE("config: the minimal config", "[config]") {
  Config config = accept(
      "listen: 127.0.0.1:6380\n"
      "backends:\n"
      "  - 127.0.0.1:7001\n"
      "  - 127.0.0.1:7002\n"
      "  - 127.0.0.1:7003\n");
  CHECK(config.listen.host == "127.0.0.1");
  CHECK(config.listen.port == 6380);
  REQUIRE(config.backends.size() == 3);
  for (int i = 0; i < 3; ++i) {
    const BackendConfig& backend = config.backends[i];
    CHECK(backend.address.host == "127.0.0.1");
    CHECK(backend.address.port == 7001 + i);
    CHECK(backend.name == backend.address.str());
    CHECK(backend.username.empty());
    CHECK(backend.password.empty());
    CHECK(backend.db == 0);
  }
  CHECK(config.slots.empty());
}

TEST_CASE("config: every default", "[config]") {
  Config config = accept(kBackends);
  CHECK(config.listen.str() == "127.0.0.1:6380");
  CHECK(config.workers == 0);
  CHECK(config.password.empty());
  CHECK(config.slots.empty());
  CHECK(config.backend_connections == 1);
  CHECK(config.timeouts.connect_ms == 1000);
  CHECK(config.timeouts.request_ms == 5000);
  CHECK(config.timeouts.client_idle_s == 0);
  CHECK(config.timeouts.shutdown_ms == 5000);
  CHECK(config.timeouts.backend_retry_max_ms == 5000);
  CHECK(config.limits.max_clients == 10000);
  CHECK(config.limits.max_bulk_bytes == 512LL * 1024 * 1024);
  CHECK(config.limits.max_request_bytes == 1024LL * 1024 * 1024);
  CHECK(config.limits.max_args == 1024 * 1024);
  CHECK(config.limits.max_inline_bytes == 64 * 1024);
  CHECK(config.limits.client_max_queued_bytes == 64LL * 1024 * 1024);
  CHECK(config.limits.client_max_inflight == 1024);
  CHECK(config.log.level == "info");
  CHECK(config.log.format == "text");
  CHECK(config.log.file.empty());
}

TEST_CASE("config: every key set", "[config]") {
  Config config = accept(
      "listen: 0.0.0.0:7000\n"
      "workers: 4\n"
      "password: s3cret\n"
      "backends: [127.0.0.1:7001]\n"
      "backend_connections: 2\n"
      "timeouts:\n"
      "  connect_ms: 10\n"
      "  request_ms: 20\n"
      "  client_idle_s: 30\n"
      "  shutdown_ms: 40\n"
      "  backend_retry_max_ms: 50\n"
      "limits:\n"
      "  max_clients: 1\n"
      "  max_bulk_bytes: 2\n"
      "  max_request_bytes: 3\n"
      "  max_args: 4\n"
      "  max_inline_bytes: 64\n"
      "  client_max_queued_bytes: 1024\n"
      "  client_max_inflight: 7\n"
      "log:\n"
      "  level: DEBUG\n"
      "  format: json\n"
      "  file: /tmp/lockstep.log\n");
  CHECK(config.listen.str() == "0.0.0.0:7000");
  CHECK(config.workers == 4);
  CHECK(config.effective_workers() == 4);
  CHECK(config.password == "s3cret");
  CHECK(config.backend_connections == 2);
  CHECK(config.timeouts.connect_ms == 10);
  CHECK(config.timeouts.request_ms == 20);
  CHECK(config.timeouts.client_idle_s == 30);
  CHECK(config.timeouts.shutdown_ms == 40);
  CHECK(config.timeouts.backend_retry_max_ms == 50);
  CHECK(config.limits.max_clients == 1);
  CHECK(config.limits.max_bulk_bytes == 2);
  CHECK(config.limits.max_request_bytes == 3);
  CHECK(config.limits.max_args == 4);
  CHECK(config.limits.max_inline_bytes == 64);
  CHECK(config.limits.client_max_queued_bytes == 1024);
  CHECK(config.limits.client_max_inflight == 7);
  CHECK(config.log.level == "debug");  // choices are case-insensitive, stored canonically
  CHECK(config.log.format == "json");
  CHECK(config.log.file == "/tmp/lockstep.log");
}

TEST_CASE("config: backends in map form", "[config]") {
  Config config = accept(
      "backends:\n"
      "  - address: 10.0.0.1:6379\n"
      "    name: primary\n"
      "    username: lockstep\n"
      "    password: pw\n"
      "    db: 3\n"
      "  - {address: redis-2.internal:6379}\n"
      "  - 10.0.0.3:6379\n"
      "  - address: \"[::1]:6379\"\n");
  REQUIRE(config.backends.size() == 4);
  CHECK(config.backends[0].name == "primary");
  CHECK(config.backends[0].address.str() == "10.0.0.1:6379");
  CHECK(config.backends[0].username == "lockstep");
  CHECK(config.backends[0].password == "pw");
  CHECK(config.backends[0].db == 3);
  CHECK(config.backends[1].name == "redis-2.internal:6379");
  CHECK(config.backends[1].db == 0);
  CHECK(config.backends[2].name == "10.0.0.3:6379");
  CHECK(config.backends[3].address.host == "::1");
  CHECK(config.backends[3].name == "[::1]:6379");
}

TEST_CASE("config: flow list of backends", "[config]") {
  Config config = accept("backends: [127.0.0.1:7001, localhost:7002, \"[::1]:7003\"]\n");
  REQUIRE(config.backends.size() == 3);
  CHECK(config.backends[0].address.str() == "127.0.0.1:7001");
  CHECK(config.backends[1].address.host == "localhost");
  CHECK(config.backends[2].address.str() == "[::1]:7003");
}

TEST_CASE("config: host:port parsing", "[config]") {
  HostPort out;
  CHECK(parse_host_port("127.0.0.1:6379", out));
  CHECK(out.host == "127.0.0.1");
  CHECK(out.port == 6379);
  CHECK(parse_host_port("redis-1.example.com:1", out));
  CHECK(parse_host_port("redis_1:65535", out));
  CHECK(parse_host_port("[::1]:6379", out));
  CHECK(out.host == "::1");
  CHECK(out.str() == "[::1]:6379");
  CHECK(parse_host_port("[fe80::1%eth0]:6379", out));

  HostPort untouched{"keep", 1};
  for (const char* bad : {"", "127.0.0.1", ":6379", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80x", "999.1.1.1:80",
                          "1.2.3:80", "::1:6379", "[::1]", "[::1]6379", "[nope]:6379",
                          "-bad.host:80", "bad..host:80", "sp ace:80", "host:000006379"}) {
    INFO(bad);
    CHECK_FALSE(parse_host_port(bad, untouched));
  }
  CHECK(untouched.host == "keep");
  CHECK(HostPort{"10.1.2.3", 80}.str() == "10.1.2.3:80");
}

TEST_CASE("config: ConfigError::format", "[config]") {
  CHECK(ConfigError{"bad", "a.yaml", 3, 7}.format() == "a.yaml:3:7: bad");
  CHECK(ConfigError{"bad", "a.yaml", 0, 0}.format() == "a.yaml: bad");
  CHECK(ConfigError{"bad", "", 2, 0}.format() == "<config>:2: bad");
}

TEST_CASE("config: effective_workers resolves 0", "[config]") {
  Config config;
  CHECK(config.effective_workers() >= 1);
  config.workers = 3;
  CHECK(config.effective_workers() == 3);
}

TEST_CASE("config: unknown keys are rejected with a suggestion", "[config]") {
  reject_at(kBackends + "listne: 127.0.0.1:1\n", 2, {"\"listne\"", "did you mean \"listen\""});
  reject_at(kBackends + "timeouts:\n  reqest_ms: 5\n", 3,
            {"\"timeouts.reqest_ms\"", "did you mean \"timeouts.request_ms\""});
  reject_at(kBackends + "limits:\n  max_client: 5\n", 3, {"did you mean \"limits.max_clients\""});
  reject_at(kBackends + "log:\n  levle: info\n", 3, {"did you mean \"log.level\""});
  reject_at("backends:\n  - address: 127.0.0.1:1\n    nmae: b1\n", 3,
            {"\"backends[0].nmae\"", "did you mean \"backends[0].name\""});
  reject_at(slots_yaml("  - {range: 0-16383, backend: b1, backnd: b2}\n"), 5,
            {"\"slots[0].backnd\"", "did you mean \"slots[0].backend\""});
  // A known key at the wrong level.
  reject_at(kBackends + "request_ms: 5\n", 2, {"did you mean \"timeouts.request_ms\""});
  // Nothing close: the known keys are listed instead.
  ConfigError far = reject(kBackends + "colour: blue\n");
  CHECK(far.line == 2);
  CHECK_THAT(far.message, Catch::Contains("unknown key \"colour\""));
  CHECK_THAT(far.message, Catch::Contains("known keys here: listen, workers"));
  CHECK_THAT(far.message, !Catch::Contains("did you mean"));
  reject_at(kBackends + "timeouts.request_ms: 5\n", 2, {"unknown key", "nested maps"});
  reject_at(kBackends + "limits:\n  max_bulk: 5\n", 3, {"did you mean \"limits.max_bulk_bytes\""});
}

TEST_CASE("config: bad values are rejected with their line", "[config]") {
  // Wrong types.
  reject_at(kBackends + "workers: many\n", 2, {"workers", "expected an integer", "\"many\""});
  reject_at(kBackends + "workers: 1.5\n", 2, {"expected an integer"});
  reject_at(kBackends + "workers: 0x10\n", 2, {"expected an integer"});
  reject_at(kBackends + "workers: [1]\n", 2, {"got a list"});
  reject_at(kBackends + "password: {a: 1}\n", 2, {"password", "got a map"});
  reject_at(kBackends + "timeouts: 5\n", 2, {"timeouts: expected a map", "connect_ms"});
  reject_at(kBackends + "\nworkers:\n", 3, {"workers: missing value"});

  // Ranges.
  reject_at(kBackends + "workers: 257\n", 2, {"workers: 257 is out of range", "0..256"});
  reject_at(kBackends + "workers: -1\n", 2, {"out of range"});
  reject_at(kBackends + "backend_connections: 0\n", 2, {"backend_connections", "1..64"});
  reject_at(kBackends + "backend_connections: 65\n", 2, {"1..64"});
  reject_at(kBackends + "timeouts:\n  connect_ms: 0\n", 3, {"timeouts.connect_ms"});
  reject_at(kBackends + "timeouts:\n  connect_ms: 600001\n", 3, {"1..600000"});
  reject_at(kBackends + "timeouts:\n  request_ms: 3600001\n", 3, {"1..3600000"});
  reject_at(kBackends + "timeouts:\n  client_idle_s: -1\n", 3, {"0..31536000"});
  reject_at(kBackends + "timeouts:\n  shutdown_ms: 600001\n", 3, {"0..600000"});
  reject_at(kBackends + "timeouts:\n  backend_retry_max_ms: 9\n", 3, {"10..600000"});
  reject_at(kBackends + "limits:\n  max_clients: 1000001\n", 3, {"1..1000000"});
  reject_at(kBackends + "limits:\n  max_bulk_bytes: 0\n", 3, {"1..4gb"});
  reject_at(kBackends + "limits:\n  max_request_bytes: 4294967297\n", 3, {"1..4gb"});
  reject_at(kBackends + "limits:\n  max_args: 2147483648\n", 3, {"1..2147483647"});
  reject_at(kBackends + "limits:\n  max_inline_bytes: 63\n", 3, {"64..1mb"});
  reject_at(kBackends + "limits:\n  client_max_queued_bytes: 1023\n", 3, {"1kb..16gb"});
  reject_at(kBackends + "limits:\n  client_max_inflight: 0\n", 3, {"1..1000000"});
  reject_at("backends:\n  - {address: 127.0.0.1:1, db: -1}\n", 2, {"backends[0].db", "-1"});
  reject_at("backends:\n  - {address: 127.0.0.1:1, name: \"\"}\n", 2,
            {"backends[0].name: must not be empty"});

  // Addresses.
  reject_at(kBackends + "listen: 6380\n", 2, {"listen: expected host:port", "\"6380\""});
  reject_at(kBackends + "listen: 127.0.0.1:0\n", 2, {"listen: expected host:port"});
  reject_at(kBackends + "listen: 127.0.0.1:70000\n", 2, {"listen"});
  reject_at(kBackends + "listen: 300.1.1.1:80\n", 2, {"listen"});
  reject_at("backends:\n  - 127.0.0.1:7001\n  - 127.0.0.1\n", 3,
            {"backends[1]: expected \"host:port\"", "\"127.0.0.1\""});
  reject_at("backends:\n  - address: localhost\n", 2, {"backends[0].address"});

  // Log settings.
  reject_at(kBackends + "log:\n  level: verbose\n", 3,
            {"log.level: unknown value \"verbose\"", "trace, debug, info, warn, error"});
  reject_at(kBackends + "log:\n  level: wran\n", 3, {"did you mean \"warn\""});
  reject_at(kBackends + "log:\n  level: warning\n", 3, {"did you mean \"warn\""});
  reject_at(kBackends + "log:\n  format: xml\n", 3, {"log.format", "text, json"});
  reject_at(kBackends + "log:\n  format: jsno\n", 3, {"did you mean \"json\""});
}

TEST_CASE("config: backend list problems", "[config]") {
  reject_at("listen: 127.0.0.1:6380\n", 0, {"missing required key \"backends\""});
  reject_at("listen: 127.0.0.1:6380\nbackends: []\n", 2, {"at least one backend"});
  reject_at("listen: 127.0.0.1:6380\nbackends:\n", 2, {"at least one backend"});
  reject_at("backends: 127.0.0.1:7001\n", 1, {"expected a list"});
  reject_at("backends:\n  - [127.0.0.1:7001]\n", 2, {"backends[0]", "got a list"});
  reject_at("backends:\n  - 127.0.0.1:7001\n  - name: b2\n    db: 1\n", 3,
            {"backends[1]: missing required key \"address\""});
  reject_at("backends:\n  - address: 127.0.0.1:1\n    username: u\n", 3,
            {"backends[0].username: needs a password"});

  reject_at(
      "backends:\n"
      "  - {address: 127.0.0.1:7001, name: b1}\n"
      "  - {address: 127.0.0.1:7002, name: b2}\n"
      "  - {address: 127.0.0.1:7003, name: b1}\n",
      4, {"backends[2]: duplicate backend name \"b1\"", "backends[0], line 2"});
  reject_at(
      "backends:\n"
      "  - 127.0.0.1:7001\n"
      "  - {address: 127.0.0.1:7001, name: other}\n",
      3, {"duplicate backend address 127.0.0.1:7001", "line 2"});
  // The default name is the address, so naming a backend after another's address clashes.
  reject_at(
      "backends:\n"
      "  - 127.0.0.1:7001\n"
      "  - {address: 127.0.0.1:7002, name: \"127.0.0.1:7001\"}\n",
      3, {"duplicate backend name"});
}

TEST_CASE("config: documents that are not a config", "[config]") {
  reject_at("", 0, {"empty"});
  reject_at("# nothing but a comment\n", 0, {"empty"});
  reject_at("just a string\n", 1, {"expected a map of keys at the top level"});
  reject_at("- 127.0.0.1:7001\n", 1, {"top level", "got a list"});
  reject_at(kBackends + "workers: [1, 2\nlog: {}\n", 3, {"YAML syntax error"});
  reject_at(kBackends + "workers: 1\n  log: x\n", 3, {"YAML syntax error"});
  reject_at(kBackends + "listen: [::1]:6380\n", 2, {"YAML syntax error", "must be quoted"});
  reject_at(kBackends + "workers: 1\nworkers: 2\n", 3, {"workers: duplicate key", "line 2"});
  reject_at(kBackends + "timeouts:\n  request_ms: 1\n  request_ms: 2\n", 4,
            {"timeouts.request_ms: duplicate key"});
  reject_at(kBackends + "---\nworkers: 1\n", 3, {"one YAML document"});
  reject_at(kBackends + "[a]: 1\n", 2, {"keys must be plain names"});
}

TEST_CASE("config: empty sections are accepted", "[config]") {
  Config config = accept(kBackends + "timeouts:\nlimits:\nlog: {}\nslots:\n");
  CHECK(config.timeouts.request_ms == 5000);
  CHECK(config.slots.empty());
}

TEST_CASE("config: byte sizes take Redis-style units", "[config]") {
  auto bulk = [](const std::string& value) {
    return accept(kBackends + "limits:\n  max_bulk_bytes: " + value + "\n").limits.max_bulk_bytes;
  };
  CHECK(bulk("1048576") == 1048576);
  CHECK(bulk("64mb") == 64LL * 1024 * 1024);
  CHECK(bulk("512KB") == 512LL * 1024);
  CHECK(bulk("1gb") == 1024LL * 1024 * 1024);
  CHECK(bulk("4gb") == 4LL * 1024 * 1024 * 1024);
  CHECK(bulk("1k") == 1000);
  CHECK(bulk("2m") == 2000000);
  CHECK(bulk("1g") == 1000000000);
  CHECK(bulk("100b") == 100);
  CHECK(accept(kBackends + "limits:\n  max_inline_bytes: 1mb\n").limits.max_inline_bytes ==
        1024 * 1024);
  CHECK(accept(kBackends + "limits:\n  client_max_queued_bytes: 16gb\n")
            .limits.client_max_queued_bytes == 16LL * 1024 * 1024 * 1024);

  reject_at(kBackends + "limits:\n  max_bulk_bytes: 5gb\n", 3, {"5gb is out of range"});
  reject_at(kBackends + "limits:\n  max_bulk_bytes: 64mib\n", 3, {"expected a byte size"});
  reject_at(kBackends + "limits:\n  max_bulk_bytes: 1.5gb\n", 3, {"expected a byte size"});
  reject_at(kBackends + "limits:\n  max_bulk_bytes: 99999999999999gb\n", 3,
            {"expected a byte size"});
  // Units are for sizes only.
  reject_at(kBackends + "limits:\n  max_clients: 1k\n", 3, {"expected an integer"});

  CHECK(schema::parse_bytes("0") == 0);
  CHECK_FALSE(schema::parse_bytes("mb"));
  CHECK_FALSE(schema::parse_bytes(" 1mb"));
  CHECK(schema::format_bytes(512LL * 1024 * 1024) == "512mb");
  CHECK(schema::format_bytes(1000) == "1000");
}

TEST_CASE("config: an explicit slot map", "[config]") {
  Config config =
      accept(slots_yaml("  - {range: 8192-16383, backend: b2}\n"
                        "  - range: 0-8190\n"
                        "    backend: b1\n"
                        "  - {range: 8191, backend: b2}\n"));
  REQUIRE(config.slots.size() == 3);
  CHECK(config.slots[0].from == 8192);
  CHECK(config.slots[0].to == 16383);
  CHECK(config.slots[0].backend == "b2");
  CHECK(config.slots[1].from == 0);
  CHECK(config.slots[1].to == 8190);
  CHECK(config.slots[2].from == 8191);
  CHECK(config.slots[2].to == 8191);

  // Default names (the address) work as slot owners too.
  Config by_address = accept(
      "backends: [127.0.0.1:7001]\nslots:\n  - {range: 0-16383, backend: \"127.0.0.1:7001\"}\n");
  CHECK(by_address.slots[0].backend == "127.0.0.1:7001");
}

TEST_CASE("config: slot map problems", "[config]") {
  reject_at(slots_yaml("  - {range: 0-8191, backend: b1}\n  - {range: 8000-16383, backend: b2}\n"),
            6, {"slots[1].range", "slots 8000-16383 overlap slots 0-8191 of slots[0] (line 5)"});
  // The later entry is blamed even when it sorts first.
  reject_at(slots_yaml("  - {range: 100-16383, backend: b2}\n  - {range: 0-100, backend: b1}\n"), 6,
            {"slots[1].range", "overlap"});
  reject_at(slots_yaml("  - {range: 0-16384, backend: b1}\n"), 5,
            {"slots[0].range: slot 16384 is out of range 0..16383"});
  reject_at(slots_yaml("  - {range: \"-1\", backend: b1}\n"), 5, {"out of range"});
  reject_at(slots_yaml("  - {range: 10-5, backend: b1}\n"), 5, {"ends before it starts"});
  reject_at(slots_yaml("  - {range: all, backend: b1}\n"), 5, {"expected \"from-to\""});
  reject_at(slots_yaml("  - {range: 0-8191, backend: b1}\n  - {range: 8193-16000, backend: b2}\n"),
            5,
            {"slots: 384 of 16384 slots are not assigned to any backend",
             "slot 8192, slots 16001-16383"});
  reject_at(slots_yaml("  - {range: 0-16383, backend: b3}\n"), 5,
            {"slots[0].backend: unknown backend \"b3\"", "did you mean \"b1\""});
  reject_at(slots_yaml("  - {range: 0-16383, backend: elsewhere}\n"), 5,
            {"unknown backend", "backends are b1, b2"});
  reject_at(slots_yaml("  - {range: 0-16383}\n"), 5,
            {"slots[0]: missing required key \"backend\""});
  reject_at(slots_yaml("  - 0-16383\n"), 5, {"slots[0]: expected a map"});
  reject_at(slots_yaml("  range: 0-16383\n"), 5, {"slots: expected a list"});
}

TEST_CASE("config: dump round-trips", "[config]") {
  Config config = accept(
      "listen: \"[::1]:7000\"\n"
      "workers: 3\n"
      "backends:\n"
      "  - {address: 127.0.0.1:7001, name: \"b \\\"one\\\"\", username: \"\", db: 2}\n"
      "  - 127.0.0.1:7002\n"
      "slots:\n"
      "  - {range: 0-100, backend: \"b \\\"one\\\"\"}\n"
      "  - {range: 101-16383, backend: \"127.0.0.1:7002\"}\n"
      "timeouts: {request_ms: 42}\n"
      "limits: {max_bulk_bytes: 12345, client_max_queued_bytes: 2mb}\n"
      "log: {level: warn, format: json, file: \"/var/log/lock\\tstep.log\"}\n"
      "users:\n"
      "  - {name: app, password_sha256: "
      "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4, rules: \"on +@read\"}\n");
  std::string first = dump(config);
  Config again = accept(first);
  CHECK(dump(again) == first);
  CHECK(again.listen.str() == "[::1]:7000");
  CHECK(again.workers == 3);
  REQUIRE(again.backends.size() == 2);
  CHECK(again.backends[0].name == "b \"one\"");
  CHECK(again.backends[0].db == 2);
  CHECK(again.backends[1].name == "127.0.0.1:7002");
  REQUIRE(again.slots.size() == 2);
  CHECK(again.slots[0].backend == "b \"one\"");
  CHECK(again.slots[1].from == 101);
  CHECK(again.timeouts.request_ms == 42);
  CHECK(again.limits.max_bulk_bytes == 12345);
  CHECK(again.limits.client_max_queued_bytes == 2 * 1024 * 1024);
  CHECK(again.log.file == "/var/log/lock\tstep.log");
  REQUIRE(again.users.size() == 1);
  CHECK(again.users[0].rules == "on +@read");

  // Every key is written out, defaults included.
  for (const schema::Key& key : schema::keys()) {
    INFO(key.path);
    std::string leaf(key.path.substr(key.path.rfind('.') + 1));
    CHECK_THAT(first, Catch::Contains(leaf + ":"));
  }
}

TEST_CASE("config: dump redacts secrets", "[config]") {
  Config config = accept(
      "password: client-secret\n"
      "backends:\n  - {address: 127.0.0.1:7001, username: u, password: backend-secret}\n");
  std::string text = dump(config);
  CHECK_THAT(text, !Catch::Contains("client-secret"));
  CHECK_THAT(text, !Catch::Contains("backend-secret"));
  CHECK_THAT(text, Catch::Contains("password: \"<redacted>\""));
  CHECK_THAT(dump(accept(kBackends)), Catch::Contains("password: \"\""));
}

TEST_CASE("config: the reference lists every key", "[config]") {
  std::string reference = reference_markdown();
  CHECK_THAT(reference, Catch::StartsWith("| Key | Type | Default | Description |"));
  for (const schema::Key& key : schema::keys()) {
    INFO(key.path);
    CHECK_THAT(reference, Catch::Contains("| `" + std::string(key.path) + "` |"));
    CHECK_FALSE(key.doc.empty());
  }
  CHECK_THAT(reference, Catch::Contains("| `timeouts.request_ms` | integer 1..3600000 | `5000` |"));
  CHECK_THAT(reference, Catch::Contains("| `limits.max_bulk_bytes` | bytes 1..4gb | `512mb` |"));
}

TEST_CASE("config: schema defaults satisfy their own bounds", "[config]") {
  Config config;
  BackendConfig backend;
  for (const schema::Key& key : schema::keys()) {
    INFO(key.path);
    std::visit(
        [&](auto fn) {
          using Fn = decltype(fn);
          auto check = [&](const auto& value) {
            using Field = std::remove_cvref_t<decltype(value)>;
            if constexpr (std::is_integral_v<Field>) {
              CHECK(key.min <= static_cast<int64_t>(value));
              CHECK(static_cast<int64_t>(value) <= key.max);
              // The loader narrows to the field after the bounds check, so they must fit.
              CHECK(key.max <= static_cast<int64_t>(std::numeric_limits<Field>::max()));
            } else if constexpr (std::is_same_v<Field, std::string>) {
              if (key.kind == schema::Kind::kChoice) {
                auto options = schema::choices(key);
                CHECK(std::find(options.begin(), options.end(), value) != options.end());
              }
            }
          };
          if constexpr (std::is_invocable_v<Fn, Config&>) check(fn(config));
          if constexpr (std::is_invocable_v<Fn, BackendConfig&>) check(fn(backend));
        },
        key.field);
  }
}

TEST_CASE("config: the shipped config files parse", "[config]") {
  std::filesystem::path root = repo_root();
  for (const char* name : {"config/lockstep.yaml", "config/minimal.yaml"}) {
    INFO(name);
    ConfigError error;
    std::optional<Config> config = load_file((root / name).string(), error);
    INFO(error.format());
    REQUIRE(config.has_value());
    CHECK(config->listen.str() == "127.0.0.1:6380");
    REQUIRE(config->backends.size() == 3);
    CHECK(config->backends[2].address.str() == "127.0.0.1:7003");
  }
  CHECK(read_text(root / "config/minimal.yaml") ==
        "listen: 127.0.0.1:6380\n"
        "backends:\n"
        "  - 127.0.0.1:7001\n"
        "  - 127.0.0.1:7002\n"
        "  - 127.0.0.1:7003\n");
}

TEST_CASE("config: lockstep.yaml documents every key with its real default", "[config]") {
  std::filesystem::path root = repo_root();
  std::string text = read_text(root / "config/lockstep.yaml");
  for (const schema::Key& key : schema::keys()) {
    INFO(key.path);
    std::string leaf(key.path.substr(key.path.rfind('.') + 1));
    CHECK_THAT(text, Catch::Contains(leaf + ":"));
  }
  // Uncommenting every commented-out key must give exactly the defaults. A commented key is
  // "# " + indentation + lowercase_name + ":"; prose comments never start that way.
  auto commented_key = [](const std::string& line) {
    if (!line.starts_with("# ")) return false;
    size_t name = line.find_first_not_of(' ', 2);
    size_t colon = line.find(':', 2);
    if (name == std::string::npos || colon == std::string::npos || colon == name) return false;
    for (size_t i = name; i < colon; ++i) {
      if (!std::islower(static_cast<unsigned char>(line[i])) && line[i] != '_') return false;
    }
    return colon + 1 == line.size() || line[colon + 1] == ' ';
  };
  std::istringstream lines(text);
  std::string line;
  std::string uncommented;
  while (std::getline(lines, line)) {
    uncommented += (commented_key(line) ? line.substr(2) : line) + "\n";
  }
  INFO(uncommented);
  CHECK(dump(accept(uncommented)) == dump(accept(read_text(root / "config/minimal.yaml"))));
  CHECK_THAT(uncommented, Catch::Contains("\ntimeouts:\n"));
  CHECK_THAT(uncommented, Catch::Contains("\n  connect_ms: 1000\n"));
}

TEST_CASE("config: load_file reports unreadable files", "[config]") {
  ConfigError error;
  CHECK_FALSE(load_file("/nonexistent/lockstep.yaml", error).has_value());
  CHECK(error.file == "/nonexistent/lockstep.yaml");
  CHECK(error.line == 0);
  CHECK_THAT(error.format(), Catch::StartsWith("/nonexistent/lockstep.yaml: cannot open"));

  CHECK_FALSE(load_file(repo_root().string(), error).has_value());
  CHECK_FALSE(error.message.empty());
}
