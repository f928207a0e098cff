// INFO replication parsing: real redis-server 7.0 output, every field the cores read, malformed
// input refused with a clear error, and random corruptions that must never crash.
#include <lockstep/failover/replication_info.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

using namespace lockstep::failover;

namespace {

// Captured from redis-server 7.0.15: a primary with one replica online, and that replica.
const char* kPrimary =
    "# Replication\r\n"
    "role:master\r\n"
    "connected_slaves:1\r\n"
    "slave0:ip=127.0.0.1,port=17102,state=online,offset=64,lag=0\r\n"
    "master_failover_state:no-failover\r\n"
    "master_replid:58b7993d63551913eb52a5b242b7d90e6a3421ba\r\n"
    "master_replid2:0000000000000000000000000000000000000000\r\n"
    "master_repl_offset:64\r\n"
    "second_repl_offset:-1\r\n"
    "repl_backlog_active:1\r\n"
    "repl_backlog_size:1048576\r\n"
    "repl_backlog_first_byte_offset:1\r\n"
    "repl_backlog_histlen:64\r\n";

const char* kReplica =
    "# Replication\r\n"
    "role:slave\r\n"
    "master_host:127.0.0.1\r\n"
    "master_port:17101\r\n"
    "master_link_status:up\r\n"
    "master_last_io_seconds_ago:0\r\n"
    "master_sync_in_progress:0\r\n"
    "slave_read_repl_offset:64\r\n"
    "slave_repl_offset:64\r\n"
    "slave_priority:100\r\n"
    "slave_read_only:1\r\n"
    "replica_announced:1\r\n"
    "connected_slaves:0\r\n"
    "master_failover_state:no-failover\r\n"
    "master_replid:58b7993d63551913eb52a5b242b7d90e6a3421ba\r\n"
    "master_replid2:0000000000000000000000000000000000000000\r\n"
    "master_repl_offset:64\r\n"
    "second_repl_offset:-1\r\n"
    "repl_backlog_active:1\r\n"
    "repl_backlog_size:1048576\r\n"
    "repl_backlog_first_byte_offset:51\r\n"
    "repl_backlog_histlen:14\r\n";

// The same replica two seconds after its primary was killed.
const char* kOrphan =
    "# Replication\r\n"
    "role:slave\r\n"
    "master_host:127.0.0.1\r\n"
    "master_port:17101\r\n"
    "master_link_status:down\r\n"
    "master_last_io_seconds_ago:-1\r\n"
    "master_sync_in_progress:0\r\n"
    "slave_read_repl_offset:64\r\n"
    "slave_repl_offset:64\r\n"
    "master_link_down_since_seconds:2\r\n"
    "slave_priority:100\r\n"
    "master_replid:58b7993d63551913eb52a5b242b7d90e6a3421ba\r\n"
    "master_repl_offset:64\r\n";

ReplicationInfo parse_ok(const std::string& text) {
  ParsedReplicationInfo parsed = parse_replication_info(text);
  INFO(parsed.error);
  REQUIRE(parsed.info.has_value());
  CHECK(parsed.error.empty());
  return *parsed.info;
}

std::string parse_error(const std::string& text) {
  ParsedReplicationInfo parsed = parse_replication_info(text);
  INFO(text);
  REQUIRE_FALSE(parsed.info.has_value());
  CHECK_THAT(parsed.error, Catch::StartsWith("ERR "));
  return parsed.error;
}

}  // namespace

TEST_CASE("replication info: a primary", "[failover]") {
  ReplicationInfo info = parse_ok(kPrimary);
  CHECK(info.role == Role::kPrimary);
  CHECK(info.master_repl_offset == 64);
  CHECK(info.offset() == 64);
  CHECK(info.connected_replicas == 1);
  CHECK(info.replid == "58b7993d63551913eb52a5b242b7d90e6a3421ba");
  REQUIRE(info.replicas.size() == 1);
  CHECK(info.replicas[0] == ReplicaLine{"127.0.0.1", 17102, "online", 64, 0});
  CHECK(info.master_address().empty());
}

TEST_CASE("replication info: a replica, linked and orphaned", "[failover]") {
  ReplicationInfo info = parse_ok(kReplica);
  CHECK(info.role == Role::kReplica);
  CHECK(info.master_host == "127.0.0.1");
  CHECK(info.master_port == 17101);
  CHECK(info.master_address() == "127.0.0.1:17101");
  CHECK(info.master_link_up);
  CHECK(info.master_last_io_s == 0);
  CHECK_FALSE(info.sync_in_progress);
  CHECK(info.replica_offset == 64);
  CHECK(info.offset() == 64);
  CHECK(info.replicas.empty());

  ReplicationInfo orphan = parse_ok(kOrphan);
  CHECK_FALSE(orphan.master_link_up);
  CHECK(orphan.master_last_io_s == -1);
  CHECK(orphan.master_link_down_since_s == 2);
  CHECK(orphan.offset() == 64);
}

TEST_CASE("replication info: line endings, full INFO, unknown fields, IPv6", "[failover]") {
  // "\n" alone, other sections around, fields a future server adds.
  ReplicationInfo info = parse_ok(
      "# Server\nredis_version:7.0.15\nrun_id:abc\n\n# Replication\nrole:slave\n"
      "master_host:::1\nmaster_port:6379\nmaster_link_status:up\nslave_repl_offset:10\n"
      "brand_new_field:whatever:with:colons\n# Keyspace\ndb0:keys=1,expires=0\n");
  CHECK(info.master_host == "::1");
  CHECK(info.master_address() == "[::1]:6379");
  CHECK(info.replica_offset == 10);

  ReplicationInfo primary = parse_ok(
      "role:master\nslave0:ip=::1,port=7002,state=online,offset=5,lag=1\n"
      "slave1:ip=10.0.0.3,port=7003,state=wait_bgsave,offset=0,lag=0\nmaster_repl_offset:5\n");
  REQUIRE(primary.replicas.size() == 2);
  CHECK(primary.replicas[0].ip == "::1");
  CHECK(primary.replicas[1].state == "wait_bgsave");
  // "replica" as the role spelling is accepted too.
  CHECK(parse_ok("role:replica\nmaster_host:h\nmaster_port:1\n").role == Role::kReplica);
  // A primary's stale master fields (mixed text) are not kept.
  CHECK(parse_ok("master_host:old\nmaster_port:1\nrole:master\n").master_host.empty());
}

TEST_CASE("replication info: malformed fields are refused", "[failover]") {
  CHECK_THAT(parse_error(""), Catch::Contains("no role"));
  CHECK_THAT(parse_error("# Replication\r\n"), Catch::Contains("no role"));
  CHECK_THAT(parse_error("role:sentinel\n"), Catch::Contains("field role: 'sentinel'"));
  CHECK_THAT(parse_error("role:master\nmaster_repl_offset:12x\n"),
             Catch::Contains("master_repl_offset"));
  CHECK_THAT(parse_error("role:master\nmaster_repl_offset:\n"), Catch::Contains("master_repl"));
  CHECK_THAT(parse_error("role:master\nmaster_repl_offset:99999999999999999999999\n"),
             Catch::Contains("master_repl_offset"));
  CHECK_THAT(parse_error("role:slave\nmaster_host:h\nmaster_port:70000\n"),
             Catch::Contains("master_port"));
  CHECK_THAT(parse_error("role:slave\nmaster_host:h\nmaster_port:1\nmaster_link_status:maybe\n"),
             Catch::Contains("master_link_status"));
  CHECK_THAT(parse_error("role:slave\nmaster_port:1\n"), Catch::Contains("master_host"));
  CHECK_THAT(parse_error("role:slave\nmaster_host:h\n"), Catch::Contains("master_port"));
  CHECK_THAT(parse_error("role:master\nslave0:ip=1.2.3.4,state=online,offset=1\n"),
             Catch::Contains("slave0"));
  CHECK_THAT(parse_error("role:master\nslave0:ip=1.2.3.4,port=1,offset=x\n"),
             Catch::Contains("slave0"));
  CHECK_THAT(parse_error("role:master\nslave0:garbage\n"), Catch::Contains("slave0"));
  CHECK_THAT(parse_error("role:master\nconnected_slaves:-1\n"), Catch::Contains("connected"));
  // The value is clipped in the error: it comes from a server and goes to logs.
  std::string long_value(500, 'x');
  CHECK(parse_error("role:" + long_value + "\n").size() < 150);
  // Keys that only look like replica lines are ignored, not refused.
  CHECK(parse_ok("role:master\nslave_priority:x\nslaveX:1\n").replicas.empty());
}

TEST_CASE("replication info: corrupted replies never crash", "[failover]") {
  // Truncations, byte flips and random bytes: the parser answers (info or error), never throws,
  // and whatever it accepts keeps its invariants.
  constexpr std::string_view kAlphabet = "role:slavemaster_\r\n:,=0123456789-";
  std::mt19937 rng(20261207);
  std::vector<std::string> seeds{kPrimary, kReplica, kOrphan};
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = seeds[static_cast<size_t>(round) % seeds.size()];
    switch (round % 3) {
      case 0:
        text.resize(std::uniform_int_distribution<size_t>(0, text.size())(rng));
        break;
      case 1:
        for (int flips = 0; flips < 4; ++flips) {
          size_t at = std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng);
          text[at] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
        }
        break;
      default:
        text.assign(std::uniform_int_distribution<size_t>(0, 200)(rng), '\0');
        for (char& c : text) c = kAlphabet[rng() % kAlphabet.size()];
        break;
    }
    ParsedReplicationInfo parsed = parse_replication_info(text);
    CHECK(parsed.info.has_value() == parsed.error.empty());
    if (!parsed.info) continue;
    ++accepted;
    CHECK(parsed.info->role != Role::kUnknown);
    if (parsed.info->role == Role::kReplica) {
      CHECK_FALSE(parsed.info->master_host.empty());
      CHECK(parsed.info->master_port > 0);
    } else {
      CHECK(parsed.info->master_host.empty());
    }
  }
  CHECK(accepted > 0);  // truncations past the role line still parse
}
