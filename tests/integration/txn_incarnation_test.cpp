// Recovery of a crashed replica's transactions by its incarnation, with real processes: three
// Lockstep replicas (a `cluster` section, logs in temp dirs) over three real redis-servers, a
// lease far longer than the test. Replica 1 dies right after preparing a cross-backend EXEC,
// so its intents hold both keys; it comes back, bumps its replicated incarnation, and the
// resolvers see that the intents' coordinator (tagged with the old incarnation) is dead: the
// keys are free again within seconds instead of after the lease, and the transaction is
// all-or-nothing (here: nothing, since the crash came before the commit point).
#include <fmt/format.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;
using namespace std::chrono_literals;

namespace {

constexpr size_t kN = 3;
constexpr long long kLeaseMs = 120000;

std::string info_field(const std::string& info, const std::string& name) {
  size_t p = info.find(name + ":");
  if (p == std::string::npos || (p > 0 && info[p - 1] != '\n')) return {};
  p += name.size() + 1;
  return info.substr(p, info.find('\r', p) - p);
}

// The incarnation in "member_<id>:address=...,incarnation=<k>", or -1.
long long incarnation_of(const std::string& info, int id) {
  const std::string line = info_field(info, fmt::format("member_{}", id));
  const size_t p = line.find("incarnation=");
  if (p == std::string::npos) return -1;
  return std::stoll(line.substr(p + 12));
}

class Replicas {
 public:
  Replicas() {
    for (size_t i = 0; i < kN; ++i) {
      backends_.push_back(std::make_unique<RedisServer>());
      peer_ports_.push_back(free_port());
      dirs_.push_back(std::make_unique<TempDir>());
    }
    nodes_.resize(kN);
  }

  void start(size_t i, const std::string& failpoints = "") {
    std::vector<std::string> addresses;
    for (const auto& b : backends_) addresses.push_back(b->address());
    std::string peers;
    for (size_t j = 0; j < kN; ++j)
      peers += fmt::format("{}{}: 127.0.0.1:{}", j ? ", " : "", j + 1, peer_ports_[j]);
    LockstepOptions o;
    o.extra_yaml = fmt::format(
        "cluster:\n  id: {}\n  listen: 127.0.0.1:{}\n  data_dir: {}\n  secret: test-secret\n"
        "  peers: {{{}}}\n"
        "transactions:\n  lease_ms: {}\n  resolver_interval_ms: 100\n"
        "  conflict_timeout_ms: 1000\n  failpoints: \"{}\"\n",
        i + 1, peer_ports_[i], dirs_[i]->file("node"), peers, kLeaseMs, failpoints);
    nodes_[i] = std::make_unique<LockstepProcess>(addresses, o);
  }

  LockstepProcess& node(size_t i) { return *nodes_[i]; }
  RedisServer& backend(size_t i) { return *backends_[i]; }

  std::string info(size_t i) {
    Client c = nodes_[i]->client(5s);
    Reply r = c.command({"LOCKSTEP", "CLUSTER", "INFO"});
    return r.is_string() ? r.str : std::string();
  }

 private:
  std::vector<std::unique_ptr<RedisServer>> backends_;
  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<std::unique_ptr<LockstepProcess>> nodes_;
};

long long zcard_active(RedisServer& b) {
  return b.client().command({"ZCARD", "__lockstep:tx:active"}).integer;
}

}  // namespace

TEST_CASE("a restarted replica's new incarnation frees its dead transactions before the lease",
          "[integration][txn][cluster][incarnation]") {
  Replicas r;
  r.start(0, "txn.after_prepare=crash");
  r.start(1);
  r.start(2);

  // Replica 1's own bump applied: from then on its transactions carry its incarnation.
  long long first = -1;
  REQUIRE(wait_until(
      [&] {
        const std::string text = r.info(0);
        first = incarnation_of(text, 1);
        return info_field(text, "bootstrapped") == "1" && first >= 1;
      },
      20s, 20ms));

  const std::string a = key_on(0, kN, "acct");
  const std::string b = key_on(1, kN, "acct");
  {
    Client c = r.node(1).client();
    REQUIRE(c.command({"SET", a, "100"}).is_ok());
    REQUIRE(c.command({"SET", b, "100"}).is_ok());
  }

  // Replica 1 prepares both backends and dies before the commit point.
  {
    Client c = r.node(0).client();
    REQUIRE(c.command({"MULTI"}).is_ok());
    REQUIRE(c.command({"DECRBY", a, "10"}).str == "QUEUED");
    REQUIRE(c.command({"INCRBY", b, "10"}).str == "QUEUED");
    CHECK(c.command({"EXEC"}).is_io_error());
  }
  REQUIRE(r.node(0).wait_exit(10s).has_value());
  CHECK(zcard_active(r.backend(0)) == 1);
  CHECK(zcard_active(r.backend(1)) == 1);

  // While replica 1 is down its incarnation is current: the keys stay held (lease only).
  {
    Client c = r.node(1).client();
    REQUIRE(c.command({"MULTI"}).is_ok());
    REQUIRE(c.command({"INCRBY", a, "1"}).str == "QUEUED");
    REQUIRE(c.command({"INCRBY", b, "1"}).str == "QUEUED");
    Reply held = c.command({"EXEC"});
    CHECK(held.error_starts_with("TXNCONFLICT"));
  }
  CHECK(zcard_active(r.backend(0)) == 1);

  // Back without the failpoint: its bump makes the old incarnation dead for every resolver.
  const auto restarted = Clock::now();
  r.start(0);
  const bool resolved =
      wait_until([&] { return zcard_active(r.backend(0)) == 0 && zcard_active(r.backend(1)) == 0; },
                 15s, 20ms);
  CHECK(resolved);
  INFO("resolved " << elapsed_ms(restarted) << " ms after the restart; lease " << kLeaseMs);
  CHECK(elapsed_ms(restarted) < kLeaseMs / 4);
  for (size_t i = 0; i < kN; ++i) {
    Client d = r.backend(i).client();
    CHECK(d.command({"KEYS", "__lockstep:tx:*"}).elements.empty());
  }

  // Every replica sees the new incarnation.
  for (size_t i = 0; i < kN; ++i)
    CHECK(wait_until([&] { return incarnation_of(r.info(i), 1) > first; }, 10s, 20ms));

  // All or nothing: the crash came before the commit point, so nothing.
  {
    Client c = r.node(2).client();
    CHECK(c.command({"GET", a}).str == "100");
    CHECK(c.command({"GET", b}).str == "100");
    // The keys are free: a cross-backend transaction commits through any replica.
    REQUIRE(c.command({"MULTI"}).is_ok());
    REQUIRE(c.command({"DECRBY", a, "10"}).str == "QUEUED");
    REQUIRE(c.command({"INCRBY", b, "10"}).str == "QUEUED");
    Reply done = c.command({"EXEC"});
    REQUIRE(done.is_array());
    REQUIRE(done.elements.size() == 2);
    CHECK(done.elements[0].integer == 90);
    CHECK(done.elements[1].integer == 110);
  }
  {
    Client c = r.node(0).client();
    CHECK(c.command({"GET", a}).str == "90");
    CHECK(c.command({"GET", b}).str == "110");
  }
}
