// The replicated group state: apply() validation, the generation compare-and-set, encodings
// (round trip, and refusal of malformed or invariant-breaking bytes), and the message codecs.
#include <lockstep/failover/config_lease.h>
#include <lockstep/failover/health_report.h>
#include <lockstep/failover/replication_groups.h>

#include <catch2/catch.hpp>
#include <random>

using namespace lockstep::failover;

namespace {

ReplicationGroups two_groups() {
  ReplicationGroups g;
  REQUIRE(g.apply(GroupChange::define("b1", "10.0.0.1:6379", {"10.0.0.2:6379", "10.0.0.3:6379"}))
              .empty());
  REQUIRE(g.apply(GroupChange::define("b2", "10.0.0.4:6379", {})).empty());
  return g;
}

}  // namespace

TEST_CASE("replication groups: define and look up", "[failover]") {
  ReplicationGroups g = two_groups();
  const Group* b1 = g.find("b1");
  REQUIRE(b1 != nullptr);
  CHECK(b1->primary == "10.0.0.1:6379");
  CHECK(b1->servers() ==
        std::vector<std::string>{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"});
  CHECK(b1->generation == 0);
  CHECK(*g.backend_of("10.0.0.3:6379") == "b1");
  CHECK(*g.backend_of("10.0.0.4:6379") == "b2");
  CHECK(g.backend_of("10.0.0.9:6379") == nullptr);
  CHECK(g.find("nope") == nullptr);
}

TEST_CASE("replication groups: apply refuses what breaks an invariant", "[failover]") {
  ReplicationGroups g = two_groups();
  const ReplicationGroups before = g;
  auto refused = [&](const GroupChange& c, const std::string& part) {
    std::string error = g.apply(c);
    INFO(error);
    CHECK_THAT(error, Catch::StartsWith("ERR "));
    CHECK_THAT(error, Catch::Contains(part));
    CHECK(g == before);
  };
  refused(GroupChange::define("b1", "10.0.0.9:6379", {}), "already exists");
  refused(GroupChange::define("b3", "10.0.0.2:6379", {}), "already a server of backend 'b1'");
  refused(GroupChange::define("b3", "10.0.0.9:6379", {"10.0.0.4:6379"}), "backend 'b2'");
  refused(GroupChange::define("b3", "10.0.0.9:6379", {"10.0.0.9:6379"}),
          "the primary and cannot also be a replica");
  refused(GroupChange::define("b3", "10.0.0.9:6379", {"10.0.0.8:6379", "10.0.0.8:6379"}),
          "listed twice");
  refused(GroupChange::define("b3", "", {}), "needs a primary");
  refused(GroupChange::define("", "10.0.0.9:6379", {}), "backend name");
  refused(GroupChange::remove("b9"), "unknown backend 'b9'");
  refused(GroupChange::add_server("b2", "10.0.0.3:6379"), "already a server of backend 'b1'");
  refused(GroupChange::add_server("b2", ""), "empty");
  refused(GroupChange::remove_server("b1", "10.0.0.1:6379"), "fail over to another server first");
  refused(GroupChange::remove_server("b1", "10.0.0.4:6379"), "not a replica of backend 'b1'");
  refused(GroupChange::set_primary("b1", "10.0.0.4:6379", 0, 1), "not a server of backend 'b1'");
  refused(GroupChange::set_primary("b1", "10.0.0.1:6379", 0, 1), "already the primary");
  refused(GroupChange::set_primary("b1", "10.0.0.2:6379", 7, 1), "generation 0, decided at 7");
}

TEST_CASE("replication groups: a primary change is a compare-and-set", "[failover]") {
  ReplicationGroups g = two_groups();
  // Two leaders decided against generation 0 for different replicas: only the first applies.
  GroupChange first = GroupChange::set_primary("b1", "10.0.0.2:6379", 0, 1700000000000);
  GroupChange second = GroupChange::set_primary("b1", "10.0.0.3:6379", 0, 1700000000050);
  CHECK(first.is_fence());
  CHECK(g.apply(first).empty());
  CHECK_THAT(g.apply(second), Catch::Contains("changed since this decision"));
  const Group& b1 = *g.find("b1");
  CHECK(b1.primary == "10.0.0.2:6379");
  CHECK(b1.generation == 1);
  CHECK(b1.changed_at_ms == 1700000000000);
  // The old primary stays in the group, as a replica to be re-pointed.
  CHECK(b1.replicas == std::vector<std::string>{"10.0.0.3:6379", "10.0.0.1:6379"});
  // The same entry applied twice (a replayed log) changes nothing the second time.
  CHECK_FALSE(g.apply(first).empty());
  CHECK(g.find("b1")->generation == 1);

  CHECK(g.apply(GroupChange::add_server("b2", "10.0.0.5:6379")).empty());
  CHECK(g.apply(GroupChange::remove_server("b1", "10.0.0.1:6379")).empty());
  CHECK(g.find("b1")->replicas == std::vector<std::string>{"10.0.0.3:6379"});
  CHECK(g.apply(GroupChange::remove("b2")).empty());
  CHECK(g.find("b2") == nullptr);
  CHECK(g.backend_of("10.0.0.5:6379") == nullptr);
  CHECK_FALSE(GroupChange::add_server("b1", "x:1").is_fence());
}

TEST_CASE("replication groups: a Sentinel group takes the primary Sentinel names", "[failover]") {
  ReplicationGroups g;
  CHECK(g.apply(GroupChange::define("s1", "", {}, true)).empty());
  CHECK(g.find("s1")->servers().empty());
  CHECK(g.apply(GroupChange::set_primary("s1", "10.0.1.1:6379", 0, 5)).empty());
  CHECK(g.apply(GroupChange::set_primary("s1", "10.0.1.2:6379", 1, 6)).empty());
  CHECK(g.find("s1")->primary == "10.0.1.2:6379");
  CHECK(g.find("s1")->replicas == std::vector<std::string>{"10.0.1.1:6379"});
  CHECK(g.apply(GroupChange::set_primary("s1", "10.0.1.1:6379", 2, 7)).empty());
  CHECK(g.find("s1")->replicas == std::vector<std::string>{"10.0.1.2:6379"});
}

TEST_CASE("replication groups: encodings round-trip and refuse bad bytes", "[failover]") {
  ReplicationGroups g = two_groups();
  REQUIRE(g.apply(GroupChange::set_primary("b1", "10.0.0.3:6379", 0, 42)).empty());
  REQUIRE(g.apply(GroupChange::define("s1", "", {}, true)).empty());
  std::string bytes = g.encode();
  std::optional<ReplicationGroups> back = ReplicationGroups::decode(bytes);
  REQUIRE(back.has_value());
  CHECK(*back == g);
  CHECK(back->encode() == bytes);  // byte-identical: replicas compare snapshots
  CHECK(ReplicationGroups::decode(ReplicationGroups{}.encode()) == ReplicationGroups{});

  for (const GroupChange& c :
       {GroupChange::define("b", "h:1", {"h:2", "h:3"}, true), GroupChange::remove("b"),
        GroupChange::set_primary("b", "h:2", 9, -1), GroupChange::add_server("b", "h:4"),
        GroupChange::remove_server("b", "h:4")}) {
    CHECK(decode_change(encode_change(c)) == c);
  }

  // Every truncation fails; so does trailing garbage and an unknown kind or format.
  for (size_t n = 0; n < bytes.size(); ++n)
    CHECK_FALSE(ReplicationGroups::decode(bytes.substr(0, n)));
  CHECK_FALSE(ReplicationGroups::decode(bytes + "x"));
  std::string change = encode_change(GroupChange::remove("b"));
  for (size_t n = 0; n < change.size(); ++n) CHECK_FALSE(decode_change(change.substr(0, n)));
  std::string bad_kind = change;
  bad_kind[1] = 9;
  CHECK_FALSE(decode_change(bad_kind));
  std::string bad_format = change;
  bad_format[0] = 2;
  CHECK_FALSE(decode_change(bad_format));

  // Bytes that decode but break an invariant (a server in two groups) are refused too.
  ReplicationGroups a;
  REQUIRE(a.apply(GroupChange::define("a", "h:1", {})).empty());
  ReplicationGroups b;
  REQUIRE(b.apply(GroupChange::define("b", "h:1", {})).empty());
  std::string ea = a.encode();
  std::string eb = b.encode();
  // Splice: count 2, then both groups' bodies.
  std::string spliced =
      ea.substr(0, 1) + std::string("\x02\x00\x00\x00", 4) + ea.substr(5) + eb.substr(5);
  CHECK_FALSE(ReplicationGroups::decode(spliced));

  // Random corruption never crashes, and whatever decodes re-encodes to itself.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string corrupt = bytes;
    corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
    if (auto decoded = ReplicationGroups::decode(corrupt)) {
      CHECK(ReplicationGroups::decode(decoded->encode()) == decoded);
    }
  }
}

TEST_CASE("failover messages: reports and lease messages round-trip", "[failover]") {
  HealthReport report{3,
                      {{"10.0.0.1:6379", false, Role::kPrimary, "", false, 1234},
                       {"10.0.0.2:6379", true, Role::kReplica, "10.0.0.1:6379", true, 1200},
                       {"10.0.0.3:6379", true, Role::kUnknown, "", false, -1}}};
  std::string bytes = encode_report(report);
  CHECK(decode_report(bytes) == report);
  CHECK(report.find("10.0.0.2:6379")->offset == 1200);
  CHECK(report.find("nope") == nullptr);
  for (size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decode_report(bytes.substr(0, n)));
  std::string bad_role = bytes;
  bad_role[1 + 8 + 4 + 4 + 13 + 1] = 7;  // first server's role byte
  CHECK_FALSE(decode_report(bad_role));

  LeaseRequest request{2, 99};
  CHECK(decode_lease_request(encode_lease_request(request)) == request);
  LeaseAck ack{1, 2, 99, 17};
  CHECK(decode_lease_ack(encode_lease_ack(ack)) == ack);
  CHECK_FALSE(decode_lease_ack(encode_lease_ack(ack) + "x"));
  CHECK_FALSE(decode_lease_request(encode_lease_request(request).substr(1)));
}

TEST_CASE("failover messages: a view made from a server's health", "[failover]") {
  ServerHealth health(0, 1000);
  ServerView unknown = make_view("10.0.0.2:6379", health, 10);
  CHECK(unknown.up);
  CHECK(unknown.role == Role::kUnknown);
  CHECK(unknown.offset == -1);
  ReplicationInfo info;
  info.role = Role::kReplica;
  info.master_host = "10.0.0.1";
  info.master_port = 6379;
  info.master_link_up = true;
  info.replica_offset = 77;
  health.on_info(20, 21, info);
  ServerView view = make_view("10.0.0.2:6379", health, 2000);
  CHECK_FALSE(view.up);  // silent since 21: down at 2000, but its last INFO is still reported
  CHECK(view.role == Role::kReplica);
  CHECK(view.master == "10.0.0.1:6379");
  CHECK(view.link_up);
  CHECK(view.offset == 77);
}
