// LOCK.ACQUIRE / RELEASE / EXTEND / STATUS / GUARD against real redis-servers and a real
// Lockstep: arguments, grants and fences, WAIT queues, OWNER, KEEPALIVE (and losing it),
// fencing of stale writers, the reserved key space, and lock-backend faults with 3 and 5
// lock backends (kill -9, restart, quarantine and fence re-seeding).
#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "lockstep/lock/scripts.h"
#include "support/harness.h"
#include "support/lock_support.h"

#ifndef LOCKSTEP_BINARY
#define LOCKSTEP_BINARY "build/lockstep"
#endif

using namespace lockstep::test;

namespace {

Reply acquire(Client& c, const std::string& name, long long ttl_ms,
              std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"LOCK.ACQUIRE", name, std::to_string(ttl_ms)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return c.command(argv);
}

Reply release(Client& c, const std::string& name, const std::string& token) {
  return c("LOCK.RELEASE", name, token);
}

Reply guard(Client& c, const std::string& name, long long fence, std::vector<std::string> cmd) {
  std::vector<std::string> argv{"LOCK.GUARD", name, std::to_string(fence)};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return c.command(argv);
}

bool is_noquorum(const Reply& r, size_t total) {
  return r.error_starts_with("NOQUORUM") &&
         r.str.find(fmt::format("of {} lock backends answered", total)) != std::string::npos &&
         r.str.find("needed") != std::string::npos;
}

// Bits of randomness a token can carry: 4 per character if it is hex, else 8.
size_t token_bits(const std::string& token) {
  const bool hex = std::all_of(token.begin(), token.end(),
                               [](unsigned char ch) { return std::isxdigit(ch) != 0; });
  return token.size() * (hex ? 4 : 8);
}

// A LOCK.ACQUIRE run on its own connection and thread; records the reply and when it came.
struct AsyncAcquire {
  Reply reply;
  Clock::time_point sent{}, answered{};
  std::thread thread;

  AsyncAcquire(uint16_t port, std::vector<std::string> argv) {
    Client c(port, 30s);
    thread = std::thread([this, c = std::move(c), argv = std::move(argv)]() mutable {
      sent = Clock::now();
      reply = c.command(argv);
      answered = Clock::now();
    });
  }
  void join() {
    if (thread.joinable()) thread.join();
  }
  ~AsyncAcquire() { join(); }
};

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<Millis>(b - a).count();
}

bool wait_waiters(Client& c, const std::string& name, long long n, Millis timeout = 3s) {
  return wait_until(
      [&] {
        auto st = lock_status(c, name);
        return st && st->waiters == n;
      },
      timeout, 5ms);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("locks: every argument error is an ERR and the connection stays usable",
          "[integration][issue4][locks]") {
  LockClusterOptions o;
  o.max_ttl_ms = 3000;
  LockCluster cluster(o);
  Client c = cluster.client();
  const std::string max_plus = "3001";  // above locks.max_ttl_ms
  const std::vector<std::vector<std::string>> bad = {
      // LOCK.ACQUIRE <name> <ttl-ms> [WAIT <ms>] [OWNER <id>] [KEEPALIVE]
      {"LOCK.ACQUIRE"},
      {"LOCK.ACQUIRE", "argl"},
      {"LOCK.ACQUIRE", "argl", "x"},
      {"LOCK.ACQUIRE", "argl", "0"},
      {"LOCK.ACQUIRE", "argl", "1"},  // below the drift: no validity left
      {"LOCK.ACQUIRE", "argl", "-5"},
      {"LOCK.ACQUIRE", "argl", "1.5"},
      {"LOCK.ACQUIRE", "argl", "99999999999999999999999"},
      {"LOCK.ACQUIRE", "argl", max_plus},
      {"LOCK.ACQUIRE", "", "1000"},
      {"LOCK.ACQUIRE", "argl", "1000", "WAIT"},
      {"LOCK.ACQUIRE", "argl", "1000", "WAIT", "-1"},
      {"LOCK.ACQUIRE", "argl", "1000", "WAIT", "soon"},
      {"LOCK.ACQUIRE", "argl", "1000", "WAIT", "10", "WAIT", "10"},
      {"LOCK.ACQUIRE", "argl", "1000", "OWNER"},
      {"LOCK.ACQUIRE", "argl", "1000", "OWNER", ""},
      {"LOCK.ACQUIRE", "argl", "1000", "OWNER", "a", "OWNER", "b"},
      {"LOCK.ACQUIRE", "argl", "1000", "KEEPALIVE", "KEEPALIVE"},
      {"LOCK.ACQUIRE", "argl", "1000", "BOGUS"},
      {"LOCK.ACQUIRE", "argl", "1000", "KEEPALIVE", "extra"},
      // LOCK.RELEASE <name> <token>
      {"LOCK.RELEASE"},
      {"LOCK.RELEASE", "argl"},
      {"LOCK.RELEASE", "argl", "tok", "extra"},
      {"LOCK.RELEASE", "", "tok"},
      // LOCK.EXTEND <name> <token> <ttl-ms>
      {"LOCK.EXTEND"},
      {"LOCK.EXTEND", "argl", "tok"},
      {"LOCK.EXTEND", "argl", "tok", "x"},
      {"LOCK.EXTEND", "argl", "tok", "0"},
      {"LOCK.EXTEND", "argl", "tok", "-1"},
      {"LOCK.EXTEND", "argl", "tok", "1"},
      {"LOCK.EXTEND", "argl", "tok", max_plus},
      {"LOCK.EXTEND", "argl", "tok", "1000", "extra"},
      {"LOCK.EXTEND", "", "tok", "1000"},
      // LOCK.STATUS <name>
      {"LOCK.STATUS"},
      {"LOCK.STATUS", "argl", "extra"},
      {"LOCK.STATUS", ""},
      // LOCK.GUARD <name> <fence> <command> [args...]
      {"LOCK.GUARD"},
      {"LOCK.GUARD", "argl"},
      {"LOCK.GUARD", "argl", "1"},
      {"LOCK.GUARD", "argl", "x", "GET", "k"},
      {"LOCK.GUARD", "argl", "-1", "GET", "k"},
      {"LOCK.GUARD", "argl", "1.5", "GET", "k"},
      {"LOCK.GUARD", "argl", "9007199254740993", "GET", "k"},  // above 2^53
      {"LOCK.GUARD", "", "1", "GET", "k"},
      {"LOCK.GUARD", "argl", "1", "GET"},  // the wrapped command's arity
      {"LOCK.GUARD", "argl", "1", "NOSUCHCOMMAND", "k"},
  };
  for (const auto& argv : bad) {
    Reply r = c.command(argv);
    std::string shown;
    for (const auto& a : argv) shown += "'" + a + "' ";
    INFO(shown << "-> " << r);
    CHECK(r.error_starts_with("ERR "));
  }
  // Exact wording for the Redis-style ones.
  CHECK(c("LOCK.ACQUIRE", "argl") ==
        Reply::error("ERR wrong number of arguments for 'lock.acquire' command"));
  CHECK(c("LOCK.RELEASE", "argl") ==
        Reply::error("ERR wrong number of arguments for 'lock.release' command"));
  CHECK(c("LOCK.STATUS") ==
        Reply::error("ERR wrong number of arguments for 'lock.status' command"));
  CHECK(c("LOCK.ACQUIRE", "argl", "1000", "BOGUS") == Reply::error("ERR syntax error"));
  // Nothing was taken or waited for by any of them, and the connection still works.
  CHECK(c("PING") == Reply::status("PONG"));
  auto st = lock_status(c, "argl");
  REQUIRE(st);
  CHECK(st->held == 0);
  CHECK(st->fence == 0);
  CHECK(st->waiters == 0);
  CHECK(as_grant(acquire(c, "argl", 1000)));
}

TEST_CASE("locks: a misconfigured locks section is a clear error", "[integration][issue4][locks]") {
  TempDir dir;
  auto check_config = [&](const std::string& locks_yaml) {
    const std::string path = dir.file("bad.yaml");
    std::ofstream(path, std::ios::trunc)
        << "listen: 127.0.0.1:1\nbackends:\n  - 127.0.0.1:7001\n  - 127.0.0.1:7002\n"
           "  - 127.0.0.1:7003\n"
        << locks_yaml;
    return run_process({LOCKSTEP_BINARY, "--config", path, "--check-config"}, "");
  };
  {
    auto r = check_config("locks:\n  backends: [nosuch]\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("locks.backends") != std::string::npos);
    CHECK(r.err.find("nosuch") != std::string::npos);
  }
  {
    auto r = check_config("locks:\n  backends: []\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("locks.backends") != std::string::npos);
  }
  {
    // A quarantine shorter than max_ttl + lock_delay is unsafe; the lock service refuses it.
    // --check-config, which "validates", must say so too.
    auto r = check_config("locks:\n  max_ttl_ms: 1000\n  quarantine_ms: 500\n");
    INFO("--check-config with quarantine_ms < max_ttl_ms: exit " << r.exit_code << "\n"
                                                                 << r.out << r.err);
    CHECK(r.exit_code == 1);
  }
  {
    // Started anyway: either it refuses to start, saying why, or LOCK commands say LOCKCONFIG.
    LockstepOptions lo;
    lo.extra_yaml = "locks:\n  max_ttl_ms: 1000\n  quarantine_ms: 500\n";
    lo.wait_ready = false;
    LockstepProcess proxy({"127.0.0.1:1"}, lo);
    std::optional<int> code;
    const bool answered = wait_until(
        [&] {
          code = proxy.wait_exit(0ms);
          if (code) return true;
          auto conn = RawConn::try_connect(proxy.port(), 200ms);
          return conn.has_value();
        },
        5s, 20ms);
    REQUIRE(answered);
    if (code) {
      INFO("lockstep exited with " << *code << ": " << proxy.stderr_text());
      CHECK(*code == 1);
      CHECK(proxy.stderr_text().find("quarantine_ms") != std::string::npos);
    } else {
      Client c = proxy.client();
      Reply r = c("LOCK.ACQUIRE", "cfg", "500");
      INFO(r);
      CHECK(r.error_starts_with("LOCKCONFIG"));
      CHECK(r.str.find("quarantine_ms") != std::string::npos);
    }
  }
}

TEST_CASE("locks: fresh backends (all just started) grant locks once the quarantine is over",
          "[integration][issue4][locks]") {
  // The common deployment: redis-servers and Lockstep started together (scripts/run does
  // this). Lockstep quarantines backends that were up for less than the window; once it is
  // over, with no fence ever committed anywhere, locks must be granted.
  ClusterOptions o;
  o.extra_yaml = "locks:\n  max_ttl_ms: 1000\n";
  Cluster cluster(o);
  Client c = cluster.client();
  const auto start = Clock::now();
  Reply last;
  const bool granted = wait_until(
      [&] {
        last = acquire(c, "fresh", 500);
        return as_grant(last).has_value();
      },
      6s, 50ms);
  INFO("last LOCK.ACQUIRE reply after " << elapsed_ms(start) << " ms: " << last);
  CHECK(granted);
}

TEST_CASE("locks: grants carry unique 128-bit tokens and strictly increasing fences",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  const long long ttl = 1000;
  std::set<std::string> tokens;
  long long last_fence = 0;
  int granted = 0, released = 0, short_tokens = 0, bad_validity = 0, non_increasing = 0;
  std::vector<std::string> problems;
  for (int i = 0; i < 100; ++i) {
    Reply r = acquire(c, "grants", ttl);
    auto g = as_grant(r);
    if (!g) {
      problems.push_back(fmt::format("grant {}: {}", i, r.to_string()));
      continue;
    }
    ++granted;
    if (token_bits(g->token) < 128) ++short_tokens;
    tokens.insert(g->token);
    if (g->validity_ms <= 0 || g->validity_ms > ttl) {
      ++bad_validity;
      problems.push_back(fmt::format("grant {}: validity {}", i, g->validity_ms));
    }
    if (g->fence <= last_fence) {
      ++non_increasing;
      problems.push_back(fmt::format("grant {}: fence {} after {}", i, g->fence, last_fence));
    }
    last_fence = g->fence;
    Reply rel = release(c, "grants", g->token);
    if (rel == Reply::integer_(1))
      ++released;
    else
      problems.push_back(fmt::format("release {}: {}", i, rel.to_string()));
  }
  INFO(fmt::format("{}", fmt::join(problems, "\n")));
  CHECK(granted == 100);
  CHECK(released == 100);
  CHECK(tokens.size() == 100);
  CHECK(short_tokens == 0);
  CHECK(bad_validity == 0);
  CHECK(non_increasing == 0);

  // Held by someone else: nil, for another client, another OWNER, or another connection.
  Client other = cluster.client();
  auto g = as_grant(acquire(c, "grants", 2000));
  REQUIRE(g);
  CHECK(g->fence > last_fence);
  CHECK(acquire(other, "grants", 1000).is_nil());
  CHECK(acquire(other, "grants", 1000, {"OWNER", "someone"}).is_nil());
  CHECK(acquire(c, "grants", 1000).is_nil());  // same connection, no OWNER: still nil

  auto st = lock_status(other, "grants");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(st->fence == g->fence);
  CHECK(st->ttl_ms > 0);
  CHECK(st->ttl_ms <= 2000);
  CHECK(st->waiters == 0);

  // RELEASE with a wrong token: 0 and still held; with the right one: 1, once.
  CHECK(release(other, "grants", "not-the-token") == Reply::integer_(0));
  CHECK(release(other, "grants", std::string(g->token.size(), '0')) == Reply::integer_(0));
  st = lock_status(other, "grants");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(release(other, "grants", g->token) == Reply::integer_(1));  // any client with the token
  CHECK(release(c, "grants", g->token) == Reply::integer_(0));
  st = lock_status(c, "grants");
  REQUIRE(st);
  CHECK(st->held == 0);
  CHECK(st->fence == g->fence);  // fence of the last grant
  CHECK(st->ttl_ms == 0);
  // Released locks are free at once.
  CHECK(as_grant(acquire(other, "grants", 1000)));
  // A lock never used: not held, fence 0.
  st = lock_status(c, "never-used");
  REQUIRE(st);
  CHECK(st->held == 0);
  CHECK(st->fence == 0);
}

TEST_CASE("locks: WAIT is woken by a release, keeps FIFO order, times out, follows the TTL",
          "[integration][issue4][locks]") {
  LockClusterOptions o;
  o.proxies = 2;
  LockCluster cluster(o);
  Client holder = cluster.client();
  Client observer = cluster.client();

  SECTION("woken promptly by a RELEASE from another client, on this and on another Lockstep") {
    for (size_t waiter_proxy : {size_t{0}, size_t{1}}) {
      const std::string name = fmt::format("wake-{}", waiter_proxy);
      auto g = as_grant(acquire(holder, name, 2500));
      REQUIRE(g);
      AsyncAcquire w(cluster.port(waiter_proxy), {"LOCK.ACQUIRE", name, "1000", "WAIT", "5000"});
      Client waiter_side = cluster.client(waiter_proxy);
      REQUIRE(wait_waiters(waiter_side, name, 1));
      std::this_thread::sleep_for(50ms);  // the waiter is really waiting
      const auto released_at = Clock::now();
      CHECK(release(holder, name, g->token) == Reply::integer_(1));
      w.join();
      auto wg = as_grant(w.reply);
      INFO("waiter on proxy " << waiter_proxy << ": " << w.reply << " "
                              << ms_between(released_at, w.answered) << " ms after RELEASE");
      REQUIRE(wg);
      CHECK(wg->fence > g->fence);
      CHECK(ms_between(released_at, w.answered) < 200);
    }
  }

  SECTION("three waiters are granted in FIFO order") {
    const std::string name = "fifo";
    auto g = as_grant(acquire(holder, name, 2500));
    REQUIRE(g);
    std::mutex mu;
    std::vector<int> order;
    std::vector<Reply> replies(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      Client c(cluster.port(), 30s);
      threads.emplace_back([&, i, c = std::move(c)]() mutable {
        Reply r = c("LOCK.ACQUIRE", name, "2000", "WAIT", "10000");
        {
          std::lock_guard<std::mutex> lock(mu);
          order.push_back(i);
          replies[static_cast<size_t>(i)] = r;
        }
        if (auto mine = as_grant(r)) {
          std::this_thread::sleep_for(30ms);
          c("LOCK.RELEASE", name, mine->token);
        }
      });
      REQUIRE(wait_waiters(observer, name, i + 1));  // queued before the next one comes
    }
    CHECK(release(holder, name, g->token) == Reply::integer_(1));
    for (auto& t : threads) t.join();
    INFO("order " << fmt::format("{}", fmt::join(order, ",")) << "; replies " << replies[0] << " "
                  << replies[1] << " " << replies[2]);
    CHECK(order == std::vector<int>{0, 1, 2});
    long long last = g->fence;
    for (int i : order) {
      auto wg = as_grant(replies[static_cast<size_t>(i)]);
      REQUIRE(wg);
      CHECK(wg->fence > last);
      last = wg->fence;
    }
  }

  SECTION("WAIT <ms> returns nil after about <ms> while the lock stays held") {
    auto g = as_grant(acquire(holder, "wait-timeout", 2500));
    REQUIRE(g);
    Client c = cluster.client();
    const auto start = Clock::now();
    Reply r = acquire(c, "wait-timeout", 1000, {"WAIT", "300"});
    const long long ms = elapsed_ms(start);
    INFO(r << " after " << ms << " ms");
    CHECK(r.is_nil());
    CHECK(ms >= 295);
    CHECK(ms <= 500);
    auto st = lock_status(observer, "wait-timeout");
    REQUIRE(st);
    CHECK(st->held == 1);
    CHECK(st->fence == g->fence);
    CHECK(st->waiters == 0);
  }

  SECTION("WAIT 0 is granted when the holder's TTL runs out, without a release") {
    const long long ttl = 800;
    const auto sent = Clock::now();
    Reply hr = acquire(holder, "ttl-wake", ttl);
    const auto granted_at = Clock::now();
    auto g = as_grant(hr);
    REQUIRE(g);
    AsyncAcquire w(cluster.port(), {"LOCK.ACQUIRE", "ttl-wake", "1000", "WAIT", "0"});
    w.join();
    auto wg = as_grant(w.reply);
    INFO("holder validity " << g->validity_ms << "; waiter " << w.reply << " "
                            << ms_between(sent, w.answered) << " ms after the holder's request");
    REQUIRE(wg);
    CHECK(wg->fence > g->fence);
    // Not before the holder's validity ended, and within TTL + ~100 ms.
    CHECK(ms_between(granted_at, w.answered) >= g->validity_ms);
    CHECK(ms_between(sent, w.answered) <= ttl + 100);
  }

  SECTION("a waiter that disconnects leaves the queue") {
    const std::string name = "leaver";
    auto g = as_grant(acquire(holder, name, 2500));
    REQUIRE(g);
    RawConn w1 = cluster.proxy().raw();
    RawConn w2 = cluster.proxy().raw();
    REQUIRE(w1.send(encode_command({"LOCK.ACQUIRE", name, "1000", "WAIT", "0"})));
    REQUIRE(wait_waiters(observer, name, 1));
    REQUIRE(w2.send(encode_command({"LOCK.ACQUIRE", name, "1000", "WAIT", "0"})));
    REQUIRE(wait_waiters(observer, name, 2));
    w1.close();
    CHECK(wait_waiters(observer, name, 1, 1s));
    w2.close();
    CHECK(wait_waiters(observer, name, 0, 1s));
    // Nobody got the lock on their behalf: after the release it stays free.
    CHECK(release(holder, name, g->token) == Reply::integer_(1));
    std::this_thread::sleep_for(150ms);
    auto st = lock_status(observer, name);
    REQUIRE(st);
    CHECK(st->held == 0);
    CHECK(st->fence == g->fence);
  }
}

TEST_CASE("locks: OWNER re-acquires keep token and fence and refresh the TTL",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  Client other = cluster.client();
  auto g1 = as_grant(acquire(c, "owned", 1000, {"OWNER", "alice"}));
  REQUIRE(g1);
  std::this_thread::sleep_for(300ms);
  // From another connection too: OWNER identifies the holder, not the connection.
  Reply r2 = acquire(other, "owned", 2500, {"OWNER", "alice"});
  auto g2 = as_grant(r2);
  INFO("first " << g1->token << "/" << g1->fence << "; re-acquire " << r2);
  REQUIRE(g2);
  CHECK(g2->token == g1->token);
  CHECK(g2->fence == g1->fence);
  CHECK(g2->validity_ms > 1000);  // the new TTL, not what was left of the old one
  CHECK(g2->validity_ms <= 2500);
  auto st = lock_status(c, "owned");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(st->fence == g1->fence);
  CHECK(st->ttl_ms > 1000);
  CHECK(acquire(other, "owned", 1000, {"OWNER", "bob"}).is_nil());
  CHECK(acquire(other, "owned", 1000).is_nil());
  // Past the first TTL it is still held (refreshed).
  std::this_thread::sleep_for(900ms);
  st = lock_status(c, "owned");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(release(c, "owned", g1->token) == Reply::integer_(1));
  auto g3 = as_grant(acquire(c, "owned", 1000, {"OWNER", "alice"}));
  REQUIRE(g3);
  CHECK(g3->token != g1->token);
  CHECK(g3->fence > g1->fence);
}

TEST_CASE("locks: EXTEND prolongs a held lock and never revives an expired one",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  Client other = cluster.client();
  {
    auto g = as_grant(acquire(c, "ext", 500));
    REQUIRE(g);
    Reply x = c("LOCK.EXTEND", "ext", g->token, "2000");
    INFO(x);
    REQUIRE(x.is_integer());
    CHECK(x.integer > 500);
    CHECK(x.integer <= 2000);
    CHECK(c("LOCK.EXTEND", "ext", "wrong-token", "2000") == Reply::integer_(0));
    std::this_thread::sleep_for(800ms);  // past the original 500 ms
    auto st = lock_status(other, "ext");
    REQUIRE(st);
    CHECK(st->held == 1);
    CHECK(st->fence == g->fence);
    CHECK(acquire(other, "ext", 500).is_nil());
    CHECK(release(c, "ext", g->token) == Reply::integer_(1));
  }
  {
    auto g = as_grant(acquire(c, "ext-expired", 200));
    REQUIRE(g);
    std::this_thread::sleep_for(400ms);
    CHECK(c("LOCK.EXTEND", "ext-expired", g->token, "2000") == Reply::integer_(0));
    auto st = lock_status(other, "ext-expired");
    REQUIRE(st);
    CHECK(st->held == 0);
    CHECK(release(c, "ext-expired", g->token) == Reply::integer_(0));
    auto g2 = as_grant(acquire(other, "ext-expired", 500));
    REQUIRE(g2);
    CHECK(g2->fence > g->fence);
  }
}

TEST_CASE("locks: KEEPALIVE renews while connected and releases on disconnect",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client other = cluster.client();
  std::optional<Client> c(cluster.client());
  auto g = as_grant(acquire(*c, "ka", 300, {"KEEPALIVE"}));
  REQUIRE(g);
  std::this_thread::sleep_for(1500ms);
  auto st = lock_status(other, "ka");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(st->fence == g->fence);
  CHECK(acquire(other, "ka", 300).is_nil());
  st = lock_status(other, "ka");
  REQUIRE(st);
  CHECK(st->held == 1);

  c.reset();  // disconnect
  const auto closed = Clock::now();
  // Released (not left to expire: that would take up to the 300 ms TTL).
  const bool freed = wait_until(
      [&] {
        auto s = lock_status(other, "ka");
        return s && s->held == 0;
      },
      2s, 5ms);
  const long long ms = elapsed_ms(closed);
  INFO("free " << ms << " ms after the disconnect");
  CHECK(freed);
  CHECK(ms < 150);
  auto g2 = as_grant(acquire(other, "ka", 300));
  REQUIRE(g2);
  CHECK(g2->fence > g->fence);
}

TEST_CASE("locks: with lock_delay_ms a KEEPALIVE lock stays taken that long after a disconnect",
          "[integration][issue4][locks]") {
  LockClusterOptions o;
  o.lock_delay_ms = 500;
  LockCluster cluster(o);
  Client other = cluster.client();
  std::optional<Client> c(cluster.client());
  auto g = as_grant(acquire(*c, "ka-delay", 300, {"KEEPALIVE"}));
  REQUIRE(g);
  std::this_thread::sleep_for(500ms);
  c.reset();
  const auto closed = Clock::now();
  // A waiter from the moment of the disconnect, and a plain LOCK.ACQUIRE once the 300 ms TTL
  // would have run out: the lock must stay taken for ~500 ms. (LOCK.STATUS is not asked:
  // by design it stops counting the lock as held when its TTL ends, during the delay.)
  AsyncAcquire w(cluster.port(), {"LOCK.ACQUIRE", "ka-delay", "1000", "WAIT", "3000"});
  std::this_thread::sleep_until(closed + 350ms);
  AsyncAcquire plain(cluster.port(), {"LOCK.ACQUIRE", "ka-delay", "1000"});
  plain.join();
  w.join();
  const long long granted_ms = ms_between(closed, w.answered);
  const long long plain_ms = ms_between(closed, plain.answered);
  INFO("waiter " << w.reply << " after " << granted_ms << " ms; LOCK.ACQUIRE sent at 350 ms: "
                 << plain.reply << " at " << plain_ms << " ms");
  if (as_grant(plain.reply)) CHECK(plain_ms >= 450);
  auto wg = as_grant(w.reply);
  CHECK((wg || as_grant(plain.reply)));
  if (wg) {
    CHECK(wg->fence > g->fence);
    // ~500 ms after the disconnect (at most TTL + delay), though the TTL alone ends sooner.
    CHECK(granted_ms >= 450);
    CHECK(granted_ms <= 900);
  }
}

TEST_CASE("locks: a lost KEEPALIVE lock is a RESP3 push or a LOCKLOST error on RESP2",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  // RESP3 connection.
  RawConn r3 = cluster.proxy().raw();
  REQUIRE(r3.send(encode_command({"HELLO", "3"})));
  auto hello = r3.read_reply(2s);
  REQUIRE(hello);
  REQUIRE(hello->type == Reply::Type::kMap);
  REQUIRE(r3.send(encode_command({"LOCK.ACQUIRE", "lost3", "300", "KEEPALIVE"})));
  auto g3r = r3.read_reply(2s);
  REQUIRE(g3r);
  INFO("RESP3 grant " << *g3r);
  REQUIRE(as_grant(*g3r));
  // RESP2 connection.
  Client r2 = cluster.client();
  Reply g2r = acquire(r2, "lost2", 300, {"KEEPALIVE"});
  INFO("RESP2 grant " << g2r);
  REQUIRE(as_grant(g2r));

  // A majority of lock backends stops answering for longer than the TTL.
  {
    ScopeExit resume([&] {
      for (size_t i = 0; i < 2; ++i) cluster.backend(i).resume();
    });
    cluster.backend(0).pause();
    cluster.backend(1).pause();
    std::this_thread::sleep_for(1000ms);
  }
  auto push = r3.read_reply(3s);
  INFO("RESP3 connection read " << or_none(push));
  REQUIRE(push);
  CHECK(push->type == Reply::Type::kPush);
  CHECK(push->as_strings() == std::vector<std::string>{"lock", "lost", "lost3"});
  // The RESP3 client was told by the push; its next LOCK command is answered normally.
  REQUIRE(r3.send(encode_command({"LOCK.STATUS", "lost3"})));
  auto st3 = r3.read_reply(3s);
  INFO("RESP3 LOCK.STATUS after the push: " << or_none(st3));
  REQUIRE(st3);
  CHECK(as_status(*st3).has_value());

  // RESP2: the next LOCK command fails with LOCKLOST, once.
  Reply e = r2("LOCK.STATUS", "lost2");
  INFO("RESP2 next LOCK command: " << e);
  CHECK(e.error_starts_with("LOCKLOST"));
  CHECK(e.str.find("lost2") != std::string::npos);
  CHECK(as_status(r2("LOCK.STATUS", "lost2")).has_value());
  CHECK(r2("PING") == Reply::status("PONG"));
}

TEST_CASE("locks: LOCK.GUARD fences out stale holders per backend",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  const std::string k = cluster.key_on(1, "guarded");
  auto g1 = as_grant(acquire(c, "gl", 2000));
  REQUIRE(g1);
  REQUIRE(release(c, "gl", g1->token) == Reply::integer_(1));
  auto g2 = as_grant(acquire(c, "gl", 2000));
  REQUIRE(g2);
  REQUIRE(g2->fence > g1->fence);
  const long long f = g1->fence, f2 = g2->fence;

  CHECK(guard(c, "gl", f, {"SET", k, "v1"}).is_ok());
  CHECK(guard(c, "gl", f, {"GET", k}) == Reply::string("v1"));  // an equal fence passes
  CHECK(guard(c, "gl", f2, {"SET", k, "v2"}).is_ok());
  Reply stale = guard(c, "gl", f, {"SET", k, "stale"});
  INFO("stale SET: " << stale);
  CHECK(stale.error_starts_with("STALEFENCE"));
  CHECK(guard(c, "gl", f, {"GET", k}).error_starts_with("STALEFENCE"));  // reads too
  CHECK(c("GET", k) == Reply::string("v2"));
  CHECK(cluster.direct(1)("GET", k) == Reply::string("v2"));
  CHECK(guard(c, "gl", f2, {"GET", k}) == Reply::string("v2"));
  // Another lock name has its own fences.
  CHECK(guard(c, "other-lock", 1, {"GET", k}) == Reply::string("v2"));
  // The newest fence is per backend: a backend that never saw f2 still accepts f.
  const std::string k2 = cluster.key_on(2, "guarded");
  CHECK(guard(c, "gl", f, {"SET", k2, "x"}).is_ok());

  // Keyless commands, keys on two backends, blocking commands: errors, nothing runs.
  const std::string a = cluster.key_on(0, "two"), b = cluster.key_on(1, "two");
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"PING"},
                                                               {"TIME"},
                                                               {"DBSIZE"},
                                                               {"MSET", a, "1", b, "2"},
                                                               {"MGET", a, b},
                                                               {"DEL", a, b},
                                                               {"BLPOP", k, "1"}}) {
    Reply r = guard(c, "gl", f2, cmd);
    INFO(fmt::format("LOCK.GUARD gl {} {}", f2, fmt::join(cmd, " ")) << " -> " << r);
    CHECK(r.error_starts_with("ERR"));
  }
  CHECK(c("EXISTS", a) == Reply::integer_(0));
  CHECK(c("EXISTS", b) == Reply::integer_(0));
  // Several keys on one backend (hash tags) are fine.
  CHECK(guard(c, "gl", f2, {"MSET", "{t}a", "1", "{t}b", "2"}).is_ok());
  CHECK(c("GET", "{t}b") == Reply::string("2"));

  // The wrapped command's own errors come back exactly as Redis words them.
  Client direct = cluster.direct(1);
  REQUIRE(direct("SET", "wrongtype-ref", "s").is_ok());
  const Reply wrongtype = direct("LPUSH", "wrongtype-ref", "x");
  REQUIRE(wrongtype.error_starts_with("WRONGTYPE"));
  CHECK(guard(c, "gl", f2, {"LPUSH", k, "x"}) == wrongtype);
  CHECK(guard(c, "gl", f2, {"INCR", k}) ==
        Reply::error("ERR value is not an integer or out of range"));
  CHECK(c("GET", k) == Reply::string("v2"));
}

TEST_CASE("locks: __lockstep: keys are unreachable and hidden; FLUSHALL keeps fences",
          "[integration][issue4][locks]") {
  LockCluster cluster;
  Client c = cluster.client();
  REQUIRE(c("SET", "user:1", "alice").is_ok());
  auto g = as_grant(acquire(c, "x", 2000));
  REQUIRE(g);
  REQUIRE(guard(c, "x", g->fence, {"SET", "user:2", "bob"}).is_ok());
  // The lock state is really there, on the backends.
  const auto internal = cluster.internal_keys();
  INFO("internal keys: " << fmt::format("{}", fmt::join(internal, " ")));
  CHECK(std::find(internal.begin(), internal.end(), "__lockstep:lock:x") != internal.end());

  for (const auto& key : {"__lockstep:lock:x", "__lockstep:fence:x", "__lockstep:guard:x"}) {
    INFO(key);
    CHECK(c("GET", key).is_error());
    CHECK(c("SET", key, "1").is_error());
    CHECK(c("DEL", key).is_error());
  }
  auto st = lock_status(c, "x");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(st->fence == g->fence);

  auto has_internal = [](const std::vector<std::string>& keys) {
    return std::any_of(keys.begin(), keys.end(),
                       [](const std::string& k) { return k.starts_with("__lockstep:"); });
  };
  Reply keys = c("KEYS", "*");
  INFO("KEYS * " << keys);
  CHECK(keys.is_array());
  CHECK_FALSE(has_internal(keys.as_strings()));
  CHECK(keys.sorted() == Reply::strings({"user:1", "user:2"}));
  CHECK(c("KEYS", "__lockstep:*") == Reply::array({}));
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"MATCH", "__lockstep:*"}}) {
    std::vector<std::string> seen;
    std::string cursor = "0";
    int rounds = 0;
    do {
      std::vector<std::string> argv{"SCAN", cursor, "COUNT", "2"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      Reply r = c.command(argv);
      REQUIRE(r.is_array());
      REQUIRE(r.elements.size() == 2);
      cursor = r.elements[0].str;
      for (const auto& k : r.elements[1].as_strings()) seen.push_back(k);
    } while (cursor != "0" && ++rounds < 1000);
    INFO("SCAN " << fmt::format("{}", fmt::join(extra, " ")) << ": "
                 << fmt::format("{}", fmt::join(seen, " ")));
    CHECK_FALSE(has_internal(seen));
  }

  // FLUSHALL / FLUSHDB through Lockstep drop the data but keep locks and fences.
  CHECK(release(c, "x", g->token) == Reply::integer_(1));
  CHECK(c("FLUSHALL").is_ok());
  CHECK(c("EXISTS", "user:1") == Reply::integer_(0));
  auto g2 = as_grant(acquire(c, "x", 2000));
  REQUIRE(g2);
  CHECK(g2->fence > g->fence);
  CHECK(c("FLUSHDB").is_ok());
  // The guard record survived too: the old fence is still stale on that backend.
  CHECK(guard(c, "x", g2->fence, {"SET", "user:2", "carol"}).is_ok());
  CHECK(guard(c, "x", g->fence, {"SET", "user:2", "stale"}).error_starts_with("STALEFENCE"));
  st = lock_status(c, "x");
  REQUIRE(st);
  CHECK(st->held == 1);
  CHECK(st->fence == g2->fence);
  CHECK(release(c, "x", g2->token) == Reply::integer_(1));
  auto g3 = as_grant(acquire(c, "x", 2000));
  REQUIRE(g3);
  CHECK(g3->fence > g2->fence);
}

TEST_CASE("locks: a RELEASE reaches every lock backend, also a slow one without the script",
          "[integration][issue4][locks]") {
  // SCRIPT FLUSH (a client may send it through Lockstep) or a restart empties the backends'
  // script caches: Lockstep's EVALSHA then gets NOSCRIPT and must still run the script. Here
  // one backend is slow (stopped for a moment) while the RELEASE reaches a quorum elsewhere.
  LockCluster cluster;
  Client c = cluster.client();
  auto g = as_grant(acquire(c, "rel", 3000));
  REQUIRE(g);
  Client d2 = cluster.direct(2);
  REQUIRE(wait_until(
      [&] { return d2("HGET", "__lockstep:lock:rel", "token") == Reply::string(g->token); }, 2s));
  REQUIRE(c("SCRIPT", "FLUSH").is_ok());
  {
    ScopeExit resume([&] { cluster.backend(2).resume(); });
    cluster.backend(2).pause();
    CHECK(release(c, "rel", g->token) == Reply::integer_(1));
    std::this_thread::sleep_for(100ms);
  }
  Reply left;
  const bool gone = wait_until(
      [&] {
        left = d2("HGETALL", "__lockstep:lock:rel");
        return left == Reply::array({});
      },
      1s);
  INFO("backend 2 still has the released hold: " << left << ", pttl "
                                                 << d2("PTTL", "__lockstep:lock:rel"));
  CHECK(gone);
  // What that costs: with another backend down, the free lock is not granted (until the
  // stale hold's TTL ends).
  cluster.backend(0).kill9();
  Client other = cluster.client();
  Reply r = acquire(other, "rel", 1000);
  INFO("LOCK.ACQUIRE of the released lock with backend 0 down: " << r);
  CHECK(as_grant(r));
}

// ---------------------------------------------------------------------------------------------
// Faults. A minority of lock backends down: locks work. A majority down: NOQUORUM, quickly.
// A restarted backend (new run_id) is quarantined for max_ttl_ms and re-seeded with the fence
// counters before it votes; while the quorum depends on it, LOCK.ACQUIRE is NOQUORUM.

namespace {

struct FaultRun {
  LockCluster& cluster;
  Client c;
  long long max_fence = 0;
  std::vector<std::string> log;
  std::vector<std::string> bad_releases;  // a RELEASE of a fresh grant that did not say 1

  explicit FaultRun(LockCluster& cl) : cluster(cl), c(cl.client(0, 10s)) {}

  // Acquire + release; the grant, or nullopt with the reply in `last`.
  std::optional<Grant> cycle(Reply* last = nullptr) {
    Reply r = acquire(c, "faulty", 1500);
    if (last != nullptr) *last = r;
    auto g = as_grant(r);
    if (g) {
      Reply rel = release(c, "faulty", g->token);
      log.push_back(fmt::format("grant fence {}, release {}", g->fence, rel.to_string()));
      if (rel != Reply::integer_(1)) bad_releases.push_back(log.back());
    } else {
      log.push_back(r.to_string());
    }
    return g;
  }
};

// The lock key of "faulty" as each live backend has it, and whether the release script is in
// its script cache (for failure messages).
std::string lock_state(LockCluster& cluster, size_t from, size_t n) {
  std::string out;
  for (size_t b = from; b < n; ++b) {
    Client d = cluster.direct(b, 2s);
    out += fmt::format("  backend {}: {} pttl {}; SCRIPT EXISTS release,acquire: {}\n", b,
                       d("HGETALL", "__lockstep:lock:faulty").to_string(),
                       d("PTTL", "__lockstep:lock:faulty").to_string(),
                       d("SCRIPT", "EXISTS", std::string(lockstep::lock::kReleaseScript.sha()),
                         std::string(lockstep::lock::kAcquireScript.sha()))
                           .to_string());
  }
  return out;
}

void fault_scenario(size_t n) {
  LockClusterOptions o;
  o.backends = n;
  o.max_ttl_ms = 2000;  // the quarantine
  LockCluster cluster(o);
  const long long quarantine = cluster.quarantine_ms();
  FaultRun run(cluster);
  const size_t minority = n / 2;  // 1 of 3, 2 of 5
  const std::string fence_key = "__lockstep:fence:faulty";

  for (int i = 0; i < 3; ++i) {
    auto g = run.cycle();
    REQUIRE(g);
    CHECK(g->fence > run.max_fence);
    run.max_fence = std::max(run.max_fence, g->fence);
  }

  INFO("lock backends: " << n);
  // 1. A minority killed: still granted, fences still increasing; a held lock is still nil
  // for others (a majority is there to say so), not NOQUORUM.
  for (size_t i = 0; i < minority; ++i) cluster.backend(i).kill9();
  for (int i = 0; i < 5; ++i) {
    Reply last;
    auto g = run.cycle(&last);
    INFO("minority down, attempt " << i << ": " << last
                                   << "\nhistory: " << fmt::format("{}", fmt::join(run.log, "; "))
                                   << "\nlock state on the live backends:\n"
                                   << (g ? "" : lock_state(cluster, minority, n)));
    CHECK(g);
    if (!g) continue;
    CHECK(g->fence > run.max_fence);
    run.max_fence = std::max(run.max_fence, g->fence);
  }
  {
    Client other = cluster.client();
    Reply hr;
    std::optional<Grant> held;
    // (Retried: a stale hold left by an earlier RELEASE, checked above, may still block it.)
    wait_until(
        [&] {
          hr = acquire(run.c, "faulty", 1500);
          held = as_grant(hr);
          return held.has_value();
        },
        3s, 50ms);
    INFO("holder: " << hr);
    REQUIRE(held);
    run.max_fence = std::max(run.max_fence, held->fence);
    Reply r = acquire(other, "faulty", 1500);
    INFO("LOCK.ACQUIRE of the held lock with a minority down: " << r);
    // The round cannot win after the first "held" vote, but it waits for the last one: held
    // by another holder is nil, NOQUORUM would only mean too few lock backends answered.
    CHECK(r.is_nil());
    Reply w = acquire(other, "faulty", 1500, {"WAIT", "200"});
    INFO("with WAIT 200: " << w);
    CHECK(w.is_nil());
    CHECK(release(run.c, "faulty", held->token) == Reply::integer_(1));
  }

  // 2. The minority restarted: quarantined and re-seeded. Then stop enough of the others that
  // every quorum needs the restarted ones: NOQUORUM during the quarantine, grants after it,
  // with fences above every earlier one.
  const auto restarted_at = Clock::now();
  for (size_t i = 0; i < minority; ++i) cluster.backend(i).restart();
  for (size_t i = 0; i < minority; ++i) {
    Client d = cluster.direct(i, 2s);
    long long seeded = -1;
    const bool reseeded = wait_until(
        [&] {
          Reply r = d("GET", fence_key);
          seeded = r.is_string() ? std::stoll(r.str) : -1;
          return seeded >= run.max_fence;
        },
        Millis(quarantine), 20ms);
    INFO("restarted backend " << i << " fence counter " << seeded << ", highest fence granted "
                              << run.max_fence);
    CHECK(reseeded);
  }
  for (size_t i = minority; i < 2 * minority; ++i) cluster.backend(i).kill9();
  {
    const long long sent = elapsed_ms(restarted_at);
    Reply r = acquire(run.c, "faulty", 1500);
    const long long since = elapsed_ms(restarted_at);
    INFO("during the quarantine (" << sent << ".." << since << " ms after the restart): " << r);
    // The quarantine began after the restart did: a reply before its end is no grant.
    if (since < quarantine) {
      CHECK(is_noquorum(r, n));
      CHECK_FALSE(as_grant(r));
    } else {
      WARN("the quarantine was over before LOCK.ACQUIRE returned (" << since << " ms)");
    }
    if (auto g = as_grant(r)) release(run.c, "faulty", g->token);
  }
  {
    Reply last;
    std::optional<Grant> g;
    long long granted_ms = -1;
    wait_until(
        [&] {
          g = run.cycle(&last);
          if (g) granted_ms = elapsed_ms(restarted_at);
          return g.has_value();
        },
        Millis(quarantine + 4000), 50ms);
    INFO("after the quarantine: " << last << " at " << granted_ms << " ms after the restart");
    REQUIRE(g);
    CHECK(granted_ms >= quarantine);
    CHECK(granted_ms <= quarantine + 2500);
    CHECK(g->fence > run.max_fence);
    run.max_fence = std::max(run.max_fence, g->fence);
  }

  {
    INFO("RELEASEs of fresh grants that did not answer 1: " << fmt::format(
             "{}", fmt::join(run.bad_releases, "; ")));
    CHECK(run.bad_releases.empty());
  }

  // 3. A majority down: NOQUORUM with the counts, in well under a second, and no grant.
  for (size_t i = 0; i < minority; ++i) cluster.backend(i).kill9();  // + the 2nd group: 2m >= q
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    Reply r = acquire(run.c, "faulty", 1500);
    const long long ms = elapsed_ms(start);
    INFO("majority down, attempt " << i << ": " << r << " after " << ms << " ms");
    CHECK(is_noquorum(r, n));
    CHECK(ms < 1000);
    CHECK_FALSE(as_grant(r));
  }

  // 4. The killed backends restarted: a majority of them are new (empty, new run_id). They are
  // quarantined, so LOCK.ACQUIRE stays NOQUORUM during it; then grants resume, and fences stay
  // above every fence granted before. (Re-seeding from a quorum of other backends is not
  // possible here: only a minority kept its data, and it holds the newest fence. The issue
  // asks that locks come back after the quarantine rather than stay unavailable for good.)
  const auto restarted2_at = Clock::now();
  for (size_t i = 0; i < 2 * minority; ++i) cluster.backend(i).restart();
  {
    const long long sent = elapsed_ms(restarted2_at);
    Reply r = acquire(run.c, "faulty", 1500);
    const long long since = elapsed_ms(restarted2_at);
    INFO("majority restarted, during the quarantine (" << sent << ".." << since
                                                       << " ms after the restart): " << r);
    // The quarantine began after the restart did: a reply before its end is no grant.
    if (since < quarantine) {
      CHECK(is_noquorum(r, n));
      CHECK_FALSE(as_grant(r));
    } else {
      WARN("the quarantine was over before LOCK.ACQUIRE returned (" << since << " ms)");
    }
    if (auto g = as_grant(r)) release(run.c, "faulty", g->token);
  }
  {
    Reply last;
    std::optional<Grant> g;
    long long granted_ms = -1;
    wait_until(
        [&] {
          g = run.cycle(&last);
          if (g) granted_ms = elapsed_ms(restarted2_at);
          return g.has_value();
        },
        Millis(quarantine + 4000), 50ms);
    INFO("majority restarted, after the quarantine: last reply " << last << " (" << granted_ms
                                                                 << " ms)");
    CHECK(g);
    if (g) {
      CHECK(granted_ms >= quarantine);
      CHECK(g->fence > run.max_fence);
    }
  }
}

}  // namespace

TEST_CASE("locks: lock backend faults with 3 backends", "[integration][issue4][locks]") {
  fault_scenario(3);
}

TEST_CASE("locks: lock backend faults with 5 backends", "[integration][issue4][locks]") {
  fault_scenario(5);
}
