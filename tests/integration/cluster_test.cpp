// The replicated configuration with real processes: three Lockstep replicas (Multi-Paxos over
// the peer transport, logs in temp dirs) over three real redis-servers. A change made on any
// replica appears on all; the leader killed with -9 is replaced and changes still commit; a
// stopped replica does not stop the other two; a full restart keeps the configuration (from
// disk); every replica's data plane routes by the new slot map; the admin access rules; and a
// lone replica without `cluster` applies LOCKSTEP CONFIG SET locally.
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;
using namespace std::chrono_literals;

namespace {

std::string field(const std::string& info, const std::string& name) {
  size_t p = info.find(name + ":");
  if (p == std::string::npos || (p > 0 && info[p - 1] != '\n')) return {};
  p += name.size() + 1;
  return info.substr(p, info.find('\r', p) - p);
}

// Three replicas over three backends; each replica keeps its data dir across restarts.
class Replicas {
 public:
  Replicas() {
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<RedisServer>());
      peer_ports_.push_back(free_port());
      dirs_.push_back(std::make_unique<TempDir>());
    }
    for (int i = 0; i < 3; ++i) start(i);
  }

  std::vector<std::string> addresses() const {
    std::vector<std::string> out;
    for (const auto& b : backends_) out.push_back(b->address());
    return out;
  }

  std::string yaml(int i) const {
    std::string peers;
    for (int j = 0; j < 3; ++j)
      peers += fmt::format("{}{}: 127.0.0.1:{}", j ? ", " : "", j + 1, peer_ports_[j]);
    return fmt::format(
        "cluster:\n  id: {}\n  listen: 127.0.0.1:{}\n  data_dir: {}\n  secret: test-secret\n"
        "  peers: {{{}}}\n",
        i + 1, peer_ports_[i], dirs_[i]->file("node"), peers);
  }

  void start(int i) {
    LockstepOptions o;
    o.extra_yaml = yaml(i);
    nodes_.resize(3);
    nodes_[i] = std::make_unique<LockstepProcess>(addresses(), o);
  }
  void kill9(int i) {
    nodes_[i]->signal(SIGKILL);
    nodes_[i]->wait_exit(5s);
  }
  void stop(int i) {
    nodes_[i]->signal(SIGTERM);
    nodes_[i]->wait_exit(10s);
  }

  LockstepProcess& node(int i) { return *nodes_[i]; }
  RedisServer& backend(int i) { return *backends_[i]; }
  uint16_t peer_port(int i) const { return peer_ports_[i]; }

  Reply admin(int i, const std::vector<std::string>& args) {
    Client c = nodes_[i]->client(5s);
    std::vector<std::string> argv{"LOCKSTEP"};
    argv.insert(argv.end(), args.begin(), args.end());
    return c.command(argv);
  }
  std::string info(int i) {
    Reply r = admin(i, {"CLUSTER", "INFO"});
    return r.is_string() ? r.str : std::string();
  }
  // Every live replica bootstrapped and agreeing on one leader; returns its index.
  int wait_leader(const std::vector<int>& live, Millis timeout = 10s) {
    int leader = -1;
    bool ok = wait_until(
        [&] {
          std::string id;
          for (int i : live) {
            std::string text = info(i);
            std::string l = field(text, "leader");
            if (field(text, "bootstrapped") != "1" || l.empty() || l == "0") return false;
            if (!id.empty() && id != l) return false;
            id = l;
          }
          leader = std::stoi(id) - 1;
          return true;
        },
        timeout, 20ms);
    return ok ? leader : -1;
  }

 private:
  std::vector<std::unique_ptr<RedisServer>> backends_;
  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<std::unique_ptr<LockstepProcess>> nodes_;
};

// Retries a change through replica `i` until it commits (TRYAGAIN while there is no leader).
Reply commit(Replicas& r, int i, const std::vector<std::string>& args, Millis timeout = 10s) {
  Reply last;
  wait_until(
      [&] {
        last = r.admin(i, args);
        return !(last.is_error() && last.str.rfind("TRYAGAIN", 0) == 0) && !last.is_io_error();
      },
      timeout, 20ms);
  return last;
}

}  // namespace

TEST_CASE("cluster: changes replicate, route the data plane and survive a full restart",
          "[integration][cluster]") {
  Replicas r;
  REQUIRE(r.wait_leader({0, 1, 2}) >= 0);

  // A setting changed through any replica is applied on all of them.
  for (int i = 0; i < 3; ++i) {
    std::string value = fmt::format("0.0{}", i + 2);
    REQUIRE(commit(r, i, {"CONFIG", "SET", "locks.drift_factor", value}).is_ok());
    CHECK(wait_until(
        [&] {
          for (int j = 0; j < 3; ++j)
            if (r.admin(j, {"CONFIG", "GET", "locks.drift_factor"}).str != value) return false;
          return true;
        },
        5s));
  }
  // Commit latency (acknowledged = chosen and applied on the replica asked), through the
  // leader and through a follower (which learns the commit from the leader's immediate
  // heartbeat).
  const int leader = r.wait_leader({0, 1, 2});
  for (int via : {leader, (leader + 1) % 3}) {
    std::vector<long long> us;
    for (int n = 0; n < 20; ++n) {
      auto t0 = Clock::now();
      REQUIRE(
          r.admin(via, {"CONFIG", "SET", "timeouts.request_ms", std::to_string(5000 + n)}).is_ok());
      us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    WARN("commit latency via the " << (via == leader ? "leader" : "follower")
                                   << " (3 replicas, fsync on, incl. client round trip): p50 "
                                   << us[us.size() / 2] << " us, max " << us.back() << " us");
  }
  // Bad values are refused by the schema, before anything is proposed.
  CHECK_THAT(r.admin(0, {"CONFIG", "SET", "timeouts.request_ms", "-5"}).str,
             Catch::Contains("out of range"));
  CHECK(r.admin(0, {"CONFIG", "GET", "no.such.key"}).is_error());
  CHECK(r.admin(1, {"CONFIG", "SET", "listen", "1.2.3.4:5"}).is_error());

  // SLOTS ASSIGN: move a key's slot from backend 0 to backend 2; every replica routes there.
  const std::string key = key_on(0, 3, "moved");
  const int slot = slot_of(key);
  const std::string target = r.backend(2).address();
  REQUIRE(commit(r, 1, {"SLOTS", "ASSIGN", fmt::format("{}-{}", slot, slot), target}).is_ok());
  const long long epoch_moved = std::stoll(r.admin(1, {"CONFIG", "GET", "epoch"}).str);
  for (int i = 0; i < 3; ++i) {
    // Each replica applies the change when it learns it was chosen: wait for that, then its
    // data plane routes the key to backend 2.
    CHECK(wait_until(
        [&] {
          return std::stoll(r.admin(i, {"CONFIG", "GET", "epoch"}).str) >= epoch_moved;
        },
        5s, 10ms));
    Client c = r.node(i).client();
    const std::string value = fmt::format("v{}", i);
    REQUIRE(c.command({"SET", key, value}).is_ok());
    CHECK(r.backend(2).client().command({"GET", key}).str == value);
    CHECK(r.backend(0).client().command({"EXISTS", key}).integer == 0);
  }
  // A slot whose source backend holds keys is not moved without FORCE.
  const std::string busy = key_on(1, 3, "busy");
  const int busy_slot = slot_of(busy);
  REQUIRE(r.backend(1).client().command({"SET", busy, "x"}).is_ok());
  Reply refused =
      commit(r, 2, {"SLOTS", "ASSIGN", std::to_string(busy_slot), r.backend(0).address()});
  CHECK(refused.is_error());
  CHECK_THAT(refused.str, Catch::Contains("key migration is not implemented"));
  CHECK(
      commit(r, 2, {"SLOTS", "ASSIGN", std::to_string(busy_slot), r.backend(0).address(), "FORCE"})
          .is_ok());
  Reply list = r.admin(0, {"BACKEND", "LIST"});
  REQUIRE(list.is_array());
  CHECK(list.elements.size() == 3);

  // CONFIG WATCH: blocks until the epoch passes and returns the change.
  const std::string epoch = field(r.info(2), "epoch");  // replica 2 applied the FORCE move
  Client watcher = r.node(2).client();
  watcher.append({"LOCKSTEP", "CONFIG", "WATCH", epoch});
  REQUIRE(commit(r, 0, {"CONFIG", "SET", "locks.retry_count", "5"}).is_ok());
  Reply change = watcher.read_reply();
  REQUIRE(change.is_array());
  CHECK(change.elements.at(0).integer == std::stoll(epoch) + 1);
  CHECK_THAT(change.elements.at(1).str, Catch::Contains("locks.retry_count 5"));
  // A watcher that disconnects leaves at once, not at the next change.
  {
    RawConn gone = r.node(2).raw();
    REQUIRE(gone.send(
        encode_command({"LOCKSTEP", "CONFIG", "WATCH", std::to_string(std::stoll(epoch) + 1000)})));
    CHECK(wait_until([&] { return field(r.info(2), "config_watchers") == "1"; }, 5s, 10ms));
  }
  CHECK(wait_until([&] { return field(r.info(2), "config_watchers") == "0"; }, 5s, 10ms));

  // All three restarted: the configuration comes back from disk.
  for (int i = 0; i < 3; ++i) r.stop(i);
  for (int i = 0; i < 3; ++i) r.start(i);
  REQUIRE(r.wait_leader({0, 1, 2}) >= 0);
  // Reads are local: a replica learns that the last entries were chosen once the new leader
  // has re-proposed them, so wait for it.
  for (int i = 0; i < 3; ++i) {
    CHECK(wait_until(
        [&] {
          return r.admin(i, {"CONFIG", "GET", "locks.drift_factor"}).str == "0.04" &&
                 r.admin(i, {"CONFIG", "GET", "locks.retry_count"}).str == "5";
        },
        5s, 20ms));
    CHECK(r.node(i).client().command({"GET", key}).str == "v2");  // still routed to backend 2
  }
}

TEST_CASE("cluster: followers apply at once; LINEARIZABLE reads see every acknowledged change",
          "[integration][cluster]") {
  Replicas r;
  const int leader = r.wait_leader({0, 1, 2});
  REQUIRE(leader >= 0);
  REQUIRE(commit(r, leader, {"CONFIG", "SET", "locks.retry_count", "3"}).is_ok());

  // A change proposed through a follower is acknowledged once that follower applied it. The
  // leader announces a new commit index at once (not at its next 50 ms heartbeat), so this
  // takes a few round trips and two fsyncs, far below the heartbeat period.
  const int follower = (leader + 1) % 3;
  std::vector<long long> us;
  for (int n = 0; n < 21; ++n) {
    auto t0 = Clock::now();
    REQUIRE(r.admin(follower, {"CONFIG", "SET", "locks.retry_delay_ms", std::to_string(300 + n)})
                .is_ok());
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  WARN("commit latency via a follower: p50 " << us[us.size() / 2] << " us, max " << us.back()
                                             << " us");
  CHECK(us[us.size() / 2] < 20000);

  // LINEARIZABLE: a change acknowledged on one replica is seen by the next linearizable read
  // on any other, whichever is the leader.
  for (int n = 0; n < 12; ++n) {
    const int writer = n % 3,
              reader = (n + 1 + n / 3) % 3 == writer ? (writer + 2) % 3 : (n + 1 + n / 3) % 3;
    const std::string value = std::to_string(1000 + n);
    REQUIRE(commit(r, writer, {"CONFIG", "SET", "locks.lock_delay_ms", value}).is_ok());
    Reply got = r.admin(reader, {"CONFIG", "GET", "locks.lock_delay_ms", "LINEARIZABLE"});
    INFO("writer " << writer << " reader " << reader);
    REQUIRE(got.is_string());
    CHECK(got.str == value);
  }
  CHECK(r.admin(follower, {"CONFIG", "GET", "epoch", "linearizable"}).is_string());
  CHECK_THAT(r.admin(follower, {"CONFIG", "GET", "no.such.key", "LINEARIZABLE"}).str,
             Catch::Contains("unknown configuration path"));
  CHECK(r.admin(follower, {"CONFIG", "GET", "epoch", "SOMEHOW"}).is_error());

  // Without a leader a linearizable read cannot be confirmed: it waits for the next leader.
  r.kill9(leader);
  const int survivor = (leader + 2) % 3;
  Reply after;
  REQUIRE(wait_until(
      [&] {
        after = r.admin(survivor, {"CONFIG", "GET", "locks.lock_delay_ms", "LINEARIZABLE"});
        return !(after.is_error() && after.str.rfind("TRYAGAIN", 0) == 0);
      },
      10s, 20ms));
  CHECK(after.str == "1011");
}

TEST_CASE("cluster: leader failure, a stopped replica, and outsiders on the peer port",
          "[integration][cluster]") {
  Replicas r;
  int leader = r.wait_leader({0, 1, 2});
  REQUIRE(leader >= 0);
  REQUIRE(commit(r, 0, {"CONFIG", "SET", "locks.retry_delay_ms", "100"}).is_ok());

  // kill -9 the leader: the other two elect a new one and go on committing.
  auto t0 = Clock::now();
  r.kill9(leader);
  std::vector<int> live;
  for (int i = 0; i < 3; ++i)
    if (i != leader) live.push_back(i);
  Reply after = commit(r, live[0], {"CONFIG", "SET", "locks.retry_delay_ms", "150"});
  const long long failover_ms = elapsed_ms(t0);
  REQUIRE(after.is_ok());
  WARN("leader killed -> next commit: " << failover_ms << " ms (election timeout 300 ms)");
  CHECK(failover_ms < 3000);
  const int new_leader = r.wait_leader(live);
  CHECK(new_leader >= 0);
  CHECK(new_leader != leader);

  // The killed replica restarts from its disk and catches up.
  r.start(leader);
  CHECK(wait_until(
      [&] {
        return r.admin(leader, {"CONFIG", "GET", "locks.retry_delay_ms"}).str == "150";
      },
      10s, 20ms));

  // SIGSTOP one replica: the two others go on; once resumed, it catches up.
  const int stopped = (r.wait_leader({0, 1, 2}) + 1) % 3;
  r.node(stopped).signal(SIGSTOP);
  const int other = (stopped + 1) % 3;
  CHECK(commit(r, other, {"CONFIG", "SET", "locks.retry_delay_ms", "175"}).is_ok());
  r.node(stopped).signal(SIGCONT);
  CHECK(wait_until(
      [&] {
        return r.admin(stopped, {"CONFIG", "GET", "locks.retry_delay_ms"}).str == "175";
      },
      10s, 20ms));

  // An outsider that does not know the secret gets a challenge it cannot answer.
  RawConn outsider(r.peer_port(0));
  REQUIRE(outsider.send("*3\r\n$5\r\nHELLO\r\n$1\r\n9\r\n$16\r\n0123456789abcdef\r\n"));
  REQUIRE(
      outsider.read_until([](std::string_view b) { return b.find("CHALLENGE") != b.npos; }, 2s));
  REQUIRE(outsider.send("*2\r\n$5\r\nPROOF\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n"));
  CHECK(outsider.closed_by_peer(2s));
  // Nor can it skip the handshake and inject a message.
  RawConn injector(r.peer_port(1));
  REQUIRE(injector.send("*4\r\n$1\r\nM\r\n$1\r\n1\r\n$1\r\nP\r\n$1\r\nx\r\n"));
  CHECK(injector.closed_by_peer(2s));
  CHECK(commit(r, 0, {"CONFIG", "SET", "locks.retry_delay_ms", "200"}).is_ok());
}

TEST_CASE("cluster: admin access needs AUTH admin when admin_password is set",
          "[integration][cluster]") {
  ClusterOptions o;
  o.extra_yaml = "admin_password: adm1n\npassword: datapw\n";
  Cluster c(o);
  Client client = c.client();
  CHECK_THAT(client.command({"LOCKSTEP", "CLUSTER", "INFO"}).str, Catch::StartsWith("NOPERM"));
  CHECK_THAT(client.command({"AUTH", "admin", "wrong"}).str, Catch::StartsWith("WRONGPASS"));
  CHECK(client.command({"AUTH", "admin", "adm1n"}).is_ok());
  Reply info = client.command({"LOCKSTEP", "CLUSTER", "INFO"});
  REQUIRE(info.is_string());
  CHECK(field(info.str, "id") == "1");
  // Admin access grants no data access: the data plane still wants its own password.
  CHECK_THAT(client.command({"GET", "k"}).str, Catch::StartsWith("NOAUTH"));
  // Another connection is not admin.
  CHECK_THAT(c.client().command({"LOCKSTEP", "BACKEND", "LIST"}).str, Catch::StartsWith("NOPERM"));
}

TEST_CASE("cluster: a lone replica without `cluster` applies LOCKSTEP CONFIG SET locally",
          "[integration][cluster]") {
  Cluster c;
  Client client = c.client();  // loopback, no admin_password: allowed
  Reply info;
  REQUIRE(wait_until(
      [&] {
        info = client.command({"LOCKSTEP", "CLUSTER", "INFO"});
        return info.is_string() && field(info.str, "bootstrapped") == "1";
      },
      5s));
  CHECK(field(info.str, "leader") == "1");
  CHECK(client.command({"LOCKSTEP", "CONFIG", "GET", "timeouts.request_ms"}).str == "5000");
  CHECK(client.command({"LOCKSTEP", "CONFIG", "SET", "timeouts.request_ms", "1234"}).is_ok());
  CHECK(client.command({"LOCKSTEP", "CONFIG", "GET", "timeouts.request_ms"}).str == "1234");
  CHECK(client.command({"LOCKSTEP", "CONFIG", "GET", "timeouts.request_ms", "LINEARIZABLE"}).str ==
        "1234");
  CHECK(client.command({"LOCKSTEP", "CONFIG", "SET", "locks.drift_factor", "0.7"}).is_error());
  CHECK(client.command({"LOCKSTEP", "NOPE"}).is_error());
  // Moving an empty slot changes routing at once.
  const std::string key = c.key_on(0, "solo");
  const int slot = slot_of(key);
  CHECK(client
            .command({"LOCKSTEP", "SLOTS", "ASSIGN", fmt::format("{}-{}", slot, slot),
                      c.backend(1).address()})
            .is_ok());
  REQUIRE(client.command({"SET", key, "here"}).is_ok());
  CHECK(c.direct(1).command({"GET", key}).str == "here");
  CHECK(c.direct(0).command({"EXISTS", key}).integer == 0);
  // The data plane still serves as before.
  CHECK(client.command({"PING"}).str == "PONG");
}

TEST_CASE("cluster: a backend added at runtime receives slots and routes live on every replica",
          "[integration][cluster]") {
  Replicas r;
  REQUIRE(r.wait_leader({0, 1, 2}) >= 0);
  RedisServer extra;
  REQUIRE(commit(r, 1, {"BACKEND", "ADD", "b4", extra.address()}).is_ok());
  // An empty slot of backend 0 moves to the new backend (no FORCE: nothing to migrate).
  const std::string key = key_on(0, 3, "grown");
  const int slot = slot_of(key);
  REQUIRE(commit(r, 2, {"SLOTS", "ASSIGN", fmt::format("{}-{}", slot, slot), "b4"}).is_ok());
  const long long epoch = std::stoll(r.admin(2, {"CONFIG", "GET", "epoch"}).str);
  const std::string other = key_on(1, 3, "grown");  // stays on backend 1
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i + 1);
    CHECK(wait_until(
        [&] {
          return std::stoll(r.admin(i, {"CONFIG", "GET", "epoch"}).str) >= epoch;
        },
        5s, 10ms));
    Client c = r.node(i).client();
    const std::string value = fmt::format("r{}", i);
    REQUIRE(c.command({"SET", key, value}).is_ok());
    CHECK(extra.client().command({"GET", key}).str == value);
    CHECK(r.backend(0).client().command({"EXISTS", key}).integer == 0);
    // A transaction over the new backend and an old one commits on both.
    REQUIRE(c.command({"MULTI"}).is_ok());
    c.command({"INCR", "{" + key + "}:n"});  // same slot as key: on the new backend
    c.command({"INCR", other});
    const Reply exec = c.command({"EXEC"});
    REQUIRE(exec.is_array());
    CHECK(exec.elements.size() == 2);
  }
  CHECK(r.backend(1).client().command({"GET", other}).str == "3");
  CHECK(extra.client().command({"GET", "{" + key + "}:n"}).str == "3");
  Reply list = r.admin(0, {"BACKEND", "LIST"});
  REQUIRE(list.is_array());
  CHECK(list.elements.size() == 4);
}

TEST_CASE("cluster: a new replica joins as a learner, catches up and is promoted",
          "[integration][cluster]") {
  Replicas r;
  REQUIRE(r.wait_leader({0, 1, 2}) >= 0);
  REQUIRE(commit(r, 0, {"CONFIG", "SET", "locks.retry_count", "7"}).is_ok());
  // Replica 4: an empty data dir and `start: join`; its peers list names everyone.
  TempDir dir;
  const uint16_t peer4 = free_port();
  std::string peers;
  for (int j = 0; j < 3; ++j) peers += fmt::format("{}: 127.0.0.1:{}, ", j + 1, r.peer_port(j));
  peers += fmt::format("4: 127.0.0.1:{}", peer4);
  LockstepOptions o;
  o.extra_yaml = fmt::format(
      "cluster:\n  id: 4\n  listen: 127.0.0.1:{}\n  data_dir: {}\n  secret: test-secret\n"
      "  peers: {{{}}}\n  start: join\n",
      peer4, dir.file("node"), peers);
  std::vector<std::string> addrs;
  for (int i = 0; i < 3; ++i) addrs.push_back(r.backend(i).address());
  LockstepProcess joiner(addrs, o);
  Client j = joiner.client();
  auto info4 = [&] {
    Reply rep = j.command({"LOCKSTEP", "CLUSTER", "INFO"});
    return rep.is_string() ? rep.str : std::string();
  };
  CHECK(field(info4(), "bootstrapped") == "0");  // not a member yet: it knows nothing
  REQUIRE(commit(r, 1, {"MEMBER", "ADD", "4", fmt::format("127.0.0.1:{}", peer4)}).is_ok());
  // It receives the state (snapshot or log) and applies what the cluster applied.
  CHECK(wait_until(
      [&] {
        return j.command({"LOCKSTEP", "CONFIG", "GET", "locks.retry_count"}).str == "7";
      },
      10s, 20ms));
  // Later changes reach it too, and the leader promotes it to a voter once caught up.
  REQUIRE(commit(r, 2, {"CONFIG", "SET", "locks.retry_count", "9"}).is_ok());
  CHECK(wait_until(
      [&] {
        return j.command({"LOCKSTEP", "CONFIG", "GET", "locks.retry_count"}).str == "9";
      },
      10s, 20ms));
  CHECK(wait_until(
      [&] {
        const std::string text = r.info(0);
        return text.find(fmt::format("member_4:address=127.0.0.1:{},voter=1", peer4)) !=
               std::string::npos;
      },
      10s, 20ms));
  CHECK(field(info4(), "bootstrapped") == "1");
}

TEST_CASE("cluster: transaction settings are replicated and take effect on every replica",
          "[integration][cluster]") {
  Replicas r;
  REQUIRE(r.wait_leader({0, 1, 2}) >= 0);
  REQUIRE(commit(r, 0, {"CONFIG", "SET", "transactions.max_queued", "2"}).is_ok());
  const long long epoch = std::stoll(r.admin(0, {"CONFIG", "GET", "epoch"}).str);
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i + 1);
    REQUIRE(wait_until(
        [&] {
          return std::stoll(r.admin(i, {"CONFIG", "GET", "epoch"}).str) >= epoch;
        },
        5s, 10ms));
    Client c = r.node(i).client();
    REQUIRE(c.command({"MULTI"}).is_ok());
    CHECK(c.command({"SET", "q1", "a"}) == Reply::status("QUEUED"));
    CHECK(c.command({"SET", "q2", "b"}) == Reply::status("QUEUED"));
    CHECK(c.command({"SET", "q3", "c"}).error_starts_with("ERR too many commands"));
    CHECK(c.command({"EXEC"}).error_starts_with("EXECABORT"));
  }
  CHECK(r.admin(1, {"CONFIG", "SET", "transactions.isolation", "sometimes"}).is_error());
  REQUIRE(commit(r, 1, {"CONFIG", "SET", "transactions.isolation", "writes"}).is_ok());
  CHECK(r.admin(1, {"CONFIG", "GET", "transactions.isolation"}).str == "writes");
}
