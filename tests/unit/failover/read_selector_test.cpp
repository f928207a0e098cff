// Read routing under each read_from policy: eligibility (up, replicating, lag), fewest
// outstanding, nearest, the rotation among equals, and the errors when nothing qualifies.
#include <lockstep/failover/read_selector.h>

#include <catch2/catch.hpp>
#include <map>

using namespace lockstep::failover;

namespace {

ReadCandidate primary(bool up = true, uint32_t outstanding = 0, int64_t latency = 100) {
  return {"10.0.0.1:6379", true, up, false, std::nullopt, outstanding, latency};
}
ReadCandidate replica(std::string_view name, uint32_t outstanding = 0, TimeMs staleness = 10,
                      int64_t latency = 100) {
  return {name, false, true, true, staleness, outstanding, latency};
}

}  // namespace

TEST_CASE("read selector: policies", "[failover]") {
  ReadSelector selector;
  std::vector<ReadCandidate> c{primary(), replica("r1", 3), replica("r2", 1)};
  CHECK(selector.pick("b1", ReadFrom::kPrimary, c, 1000).index == 0);
  CHECK(selector.pick("b1", ReadFrom::kReplica, c, 1000).index == 2);  // fewest outstanding
  CHECK(selector.pick("b1", ReadFrom::kPreferReplica, c, 1000).index == 2);
  // nearest: lowest latency wins over outstanding counts, the primary included.
  c[0].latency_us = 40;
  CHECK(selector.pick("b1", ReadFrom::kNearest, c, 1000).index == 0);
  c[1].latency_us = 30;
  CHECK(selector.pick("b1", ReadFrom::kNearest, c, 1000).index == 1);
  // A server never measured is not "near".
  c[2].latency_us = -1;
  c[1].latency_us = 500;
  CHECK(selector.pick("b1", ReadFrom::kNearest, c, 1000).index == 0);
}

TEST_CASE("read selector: lagging, unlinked and down replicas are skipped", "[failover]") {
  ReadSelector selector;
  std::vector<ReadCandidate> c{primary(), replica("r1", 0, 1500), replica("r2", 9)};
  CHECK(selector.pick("b1", ReadFrom::kReplica, c, 1000).index == 2);
  c[2].replicating = false;  // the old primary back as a master, or a link down
  ReadChoice none = selector.pick("b1", ReadFrom::kReplica, c, 1000);
  CHECK_FALSE(none.ok());
  CHECK(none.error ==
        "ERR backend 'b1': no server can serve this read (read_from replica): r1 lags 1500 ms > "
        "1000 ms; r2 not replicating from the primary");
  // prefer-replica falls back to the primary; replica does not.
  CHECK(selector.pick("b1", ReadFrom::kPreferReplica, c, 1000).index == 0);
  c[1].staleness_ms.reset();
  c[2].replicating = true;
  c[2].up = false;
  none = selector.pick("b1", ReadFrom::kReplica, c, 1000);
  CHECK_THAT(none.error, Catch::Contains("r1 lag unknown; r2 down"));
  // The lag bound is inclusive.
  c[2].up = true;
  c[2].staleness_ms = 1000;
  CHECK(selector.pick("b1", ReadFrom::kReplica, c, 1000).index == 2);
  CHECK_FALSE(selector.pick("b1", ReadFrom::kReplica, c, 999).ok());
}

TEST_CASE("read selector: every server down is a clear error", "[failover]") {
  ReadSelector selector;
  std::vector<ReadCandidate> c{primary(false), replica("r1"), replica("r2")};
  c[1].up = false;
  c[2].up = false;
  for (ReadFrom policy :
       {ReadFrom::kPrimary, ReadFrom::kPreferReplica, ReadFrom::kReplica, ReadFrom::kNearest}) {
    ReadChoice choice = selector.pick("b1", policy, c, 1000);
    CHECK_FALSE(choice.ok());
    CHECK(choice.error ==
          "ERR backend 'b1' unavailable: every server of its group is down "
          "(10.0.0.1:6379, r1, r2)");
  }
  c[0].up = true;
  CHECK(selector.pick("b1", ReadFrom::kPrimary, c, 1000).ok());
  CHECK_THAT(selector.pick("b1", ReadFrom::kReplica, c, 1000).error,
             Catch::Contains("read_from replica"));
  c[0].up = false;
  c[1].up = true;
  CHECK_THAT(selector.pick("b1", ReadFrom::kPrimary, c, 1000).error,
             Catch::Contains("10.0.0.1:6379 (primary) down"));
}

TEST_CASE("read selector: equals share the load", "[failover]") {
  ReadSelector selector;
  std::vector<ReadCandidate> c{primary(), replica("r1"), replica("r2"), replica("r3")};
  std::map<int, int> picks;
  for (int i = 0; i < 300; ++i) ++picks[selector.pick("b1", ReadFrom::kReplica, c, 1000).index];
  CHECK(picks.size() == 3);
  for (int i = 1; i <= 3; ++i) CHECK(picks[i] == 100);
  // With outstanding requests, the least loaded, whatever the rotation.
  c[2].outstanding = 0;
  c[1].outstanding = c[3].outstanding = 2;
  for (int i = 0; i < 10; ++i) CHECK(selector.pick("b1", ReadFrom::kReplica, c, 1000).index == 2);
}

TEST_CASE("read selector: policy names", "[failover]") {
  for (ReadFrom policy :
       {ReadFrom::kPrimary, ReadFrom::kPreferReplica, ReadFrom::kReplica, ReadFrom::kNearest}) {
    CHECK(parse_read_from(read_from_name(policy)) == policy);
  }
  CHECK_FALSE(parse_read_from("default"));
  CHECK_FALSE(parse_read_from("Primary"));
}
