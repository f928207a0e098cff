// ServerHealth (up/down from answers and time) and ReplicationLag (staleness from offsets),
// driven by a fake clock.
#include <lockstep/failover/replication_lag.h>
#include <lockstep/failover/server_health.h>

#include <catch2/catch.hpp>

using namespace lockstep::failover;

namespace {

ReplicationInfo replica_info(const std::string& host, uint16_t port, int64_t offset) {
  ReplicationInfo info;
  info.role = Role::kReplica;
  info.master_host = host;
  info.master_port = port;
  info.master_link_up = true;
  info.replica_offset = offset;
  return info;
}

}  // namespace

TEST_CASE("server health: down after down_after_ms without an answer", "[failover]") {
  TimeMs now = 1000;
  ServerHealth health(now, 1000);
  // Presumed up for down_after_ms after creation, so a start is not a mass "down".
  CHECK(health.up(now));
  CHECK_FALSE(health.ever_answered());
  CHECK(health.up(now + 999));
  CHECK_FALSE(health.up(now + 1000));

  now += 500;
  health.on_reply(now, 120);
  CHECK(health.ever_answered());
  CHECK(health.up(now + 999));
  CHECK_FALSE(health.up(now + 1000));
  CHECK(health.silent_for(now + 300) == 300);

  // Failures are counted but do not make a server down by themselves: only silence does.
  for (int i = 0; i < 10; ++i) health.on_failure(now + i, "connection refused");
  CHECK(health.up(now + 10));
  CHECK(health.failures() == 10);
  CHECK(health.consecutive_failures() == 10);
  CHECK(health.last_failure() == "connection refused");
  CHECK_FALSE(health.up(now + 1000));

  // Any answer brings it back at once and resets the streak.
  health.on_reply(now + 5000);
  CHECK(health.up(now + 5000));
  CHECK(health.consecutive_failures() == 0);
  CHECK(health.answers() == 2);
}

TEST_CASE("server health: PING replies that prove life", "[failover]") {
  CHECK(ping_reply_is_alive("+PONG"));
  CHECK(ping_reply_is_alive("-LOADING Redis is loading the dataset in memory"));
  CHECK(ping_reply_is_alive("-MASTERDOWN Link with MASTER is down"));
  CHECK_FALSE(ping_reply_is_alive("-NOAUTH Authentication required."));
  CHECK_FALSE(ping_reply_is_alive("-ERR unknown command"));
  CHECK_FALSE(ping_reply_is_alive(""));
}

TEST_CASE("server health: INFO replies, reordering and latency", "[failover]") {
  ServerHealth health(0, 1000);
  CHECK(health.role() == Role::kUnknown);
  CHECK(health.latency_us() == -1);
  health.on_info(100, 101, replica_info("10.0.0.1", 6379, 50), 800);
  CHECK(health.role() == Role::kReplica);
  CHECK(health.info()->replica_offset == 50);
  CHECK(health.info_sent_at() == 100);
  CHECK(health.latency_us() == 800);
  // A reply to an older probe arriving late does not roll the view back...
  health.on_info(90, 102, replica_info("10.0.0.1", 6379, 40), 300);
  CHECK(health.info()->replica_offset == 50);
  // ...but still counts as an answer, and as a latency sample (EWMA, 1/5 weight).
  CHECK(health.up(1101));
  CHECK(health.latency_us() == (4 * 800 + 300) / 5);
  // The last view is kept while the server is down: the decider needs a dead server's offsets.
  CHECK_FALSE(health.up(5000));
  CHECK(health.info()->replica_offset == 50);
}

TEST_CASE("replication lag: staleness bound from primary offset samples", "[failover]") {
  ReplicationLag lag;
  CHECK(lag.empty());
  CHECK_FALSE(lag.staleness(0, 0));
  lag.on_primary_offset(1000, 100);
  lag.on_primary_offset(1100, 200);
  lag.on_primary_offset(1200, 300);
  // A replica at 300 held all the primary had when the 1200 probe was sent.
  CHECK(lag.staleness(300, 1250) == 50);
  CHECK(lag.staleness(350, 1250) == 50);
  // At 250 it has what the primary had at 1100 at least.
  CHECK(lag.staleness(250, 1250) == 150);
  CHECK(lag.staleness(100, 1250) == 250);
  // Older than every sample: unknown (callers treat it as too stale).
  CHECK_FALSE(lag.staleness(99, 1250));
  // An idle primary: the same offset later tightens the bound.
  lag.on_primary_offset(1500, 300);
  CHECK(lag.staleness(300, 1510) == 10);
  // A reply to an older probe adds nothing (the 1500 sample still bounds a replica at 320).
  lag.on_primary_offset(1400, 320);
  CHECK(lag.staleness(320, 1510) == 10);
  CHECK(lag.staleness(299, 1510) == 410);  // only the 1100 sample (200) is behind it
  // Offsets going backwards: a new stream, history dropped.
  lag.on_primary_offset(1600, 10);
  CHECK(lag.staleness(10, 1610) == 10);
  CHECK_FALSE(lag.staleness(9, 1610));
  lag.reset();
  CHECK(lag.empty());
}

TEST_CASE("replication lag: history is bounded", "[failover]") {
  ReplicationLag lag;
  for (int i = 0; i < 1000; ++i) lag.on_primary_offset(i * 100, i * 10);
  // Only the newest kSamples are kept; a replica older than them is of unknown staleness.
  CHECK(lag.staleness(999 * 10, 999 * 100) == 0);
  CHECK(lag.staleness((1000 - ReplicationLag::kSamples) * 10, 99900).has_value());
  CHECK_FALSE(lag.staleness((1000 - ReplicationLag::kSamples) * 10 - 1, 99900).has_value());
}
