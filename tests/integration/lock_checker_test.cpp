// The mutual-exclusion checker: 20 clients over two Lockstep processes (same three lock
// backends) increment one counter under one lock, reading and writing it only through
// LOCK.GUARD with their grant's fence, while a lock backend is killed and restarted and one
// client stalls past its lock's validity between its read and its write.
//
// Checked from the clients' own records:
//   - the counter equals the number of increments whose GET and SET both passed the guard,
//     and those SETs wrote 1, 2, ..., N exactly once each (no lost or doubled update);
//   - grant fences are unique and increase in the order the grants were returned;
//   - no two grants' validity windows overlap: [reply arrived, reply + validity-ms], cut short
//     when the holder sent a RELEASE that answered 1;
//   - no guarded command passed after one with a higher fence had already passed (so the
//     stalled client's late SET is refused whenever a later holder got there first).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "support/harness.h"
#include "support/lock_support.h"

using namespace lockstep::test;

namespace {

constexpr int kClients = 20;
constexpr long long kTtlMs = 1000;
constexpr long long kWaitMs = 3000;
constexpr auto kLoad = 15s;
const std::string kLock = "counter-lock";

struct GrantRecord {
  int client = 0;
  size_t proxy = 0;
  long long fence = 0;
  long long validity_ms = 0;
  Clock::time_point sent{}, replied{};
  Clock::time_point end{};  // validity end, or when RELEASE was sent if sooner
  bool released = false;    // RELEASE sent before the validity end
};

struct GuardRecord {
  int client = 0;
  long long fence = 0;
  bool set = false;  // SET (else GET)
  bool passed = false;
  bool stale = false;
  bool late = false;  // the stalled client's SET after sleeping past its validity
  Clock::time_point sent{}, replied{};
  long long written = 0;  // SET: the value written
  std::string reply;
};

struct Records {
  std::mutex mu;
  std::vector<GrantRecord> grants;
  std::vector<GuardRecord> guards;
  std::vector<std::string> errors;              // unexpected replies
  std::vector<std::string> noquorum_samples;    // the first few NOQUORUM replies, with their time
  std::vector<std::string> held_release_not_1;  // a RELEASE by a holder that did not say 1
  std::vector<long long> held_release_fences;   // ... the fences of those grants
  long long noquorum = 0, nil_after_wait = 0, release_not_1 = 0, increments = 0;
  long long stale_get = 0, stale_set = 0, late_sets = 0, late_sets_refused = 0, pauses = 0;
};

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<Millis>(d).count();
}

void client_loop(int id, uint16_t port, size_t proxy, const std::string& counter,
                 Clock::time_point start, Clock::time_point until, Records& rec) {
  Client c(port, 15s);
  const bool staller = id == 0;
  Clock::time_point last_pause = start;
  while (Clock::now() < until) {
    GrantRecord g;
    g.client = id;
    g.proxy = proxy;
    g.sent = Clock::now();
    Reply r = c("LOCK.ACQUIRE", kLock, std::to_string(kTtlMs), "WAIT", std::to_string(kWaitMs));
    g.replied = Clock::now();
    auto grant = as_grant(r);
    if (!grant) {
      std::lock_guard<std::mutex> lock(rec.mu);
      if (r.is_nil()) {
        ++rec.nil_after_wait;
      } else if (r.error_starts_with("NOQUORUM")) {
        ++rec.noquorum;
        if (rec.noquorum_samples.size() < 3)
          rec.noquorum_samples.push_back(
              fmt::format("client {} at {} ms: {}", id, ms(g.replied - start), r.str));
      } else {
        rec.errors.push_back(fmt::format("client {} LOCK.ACQUIRE: {}", id, r.to_string()));
      }
      if (r.is_io_error()) return;
      if (r.is_error()) std::this_thread::sleep_for(20ms);
      continue;
    }
    g.fence = grant->fence;
    g.validity_ms = grant->validity_ms;
    g.end = g.replied + Millis(grant->validity_ms);
    const std::string fence = std::to_string(grant->fence);

    GuardRecord get;
    get.client = id;
    get.fence = grant->fence;
    get.sent = Clock::now();
    Reply gr = c("LOCK.GUARD", kLock, fence, "GET", counter);
    get.replied = Clock::now();
    get.reply = gr.to_string();
    get.passed = gr.is_string();
    get.stale = gr.error_starts_with("STALEFENCE");

    std::optional<GuardRecord> set;
    if (get.passed) {
      const long long value = std::stoll(gr.str);
      GuardRecord s;
      s.client = id;
      s.fence = grant->fence;
      s.set = true;
      // The stalled client: past its validity between its read and its write (at most once
      // every two seconds, so the others get work done too).
      if (staller && Clock::now() - last_pause > 2s) {
        s.late = true;
        std::this_thread::sleep_until(g.replied + Millis(grant->validity_ms) + 150ms);
        last_pause = Clock::now();
      }
      s.written = value + 1;
      s.sent = Clock::now();
      Reply sr = c("LOCK.GUARD", kLock, fence, "SET", counter, std::to_string(value + 1));
      s.replied = Clock::now();
      s.reply = sr.to_string();
      s.passed = sr.is_ok();
      s.stale = sr.error_starts_with("STALEFENCE");
      set = s;
    }

    // The holder stops using the lock when it sends RELEASE, whatever the reply says.
    const auto release_sent = Clock::now();
    Reply rr = c("LOCK.RELEASE", kLock, grant->token);
    g.released = release_sent < g.end;
    g.end = std::min(g.end, release_sent);

    std::lock_guard<std::mutex> lock(rec.mu);
    rec.grants.push_back(g);
    rec.guards.push_back(get);
    if (get.stale) ++rec.stale_get;
    if (!get.passed && !get.stale)
      rec.errors.push_back(fmt::format("client {} GUARD GET: {}", id, get.reply));
    if (set) {
      rec.guards.push_back(*set);
      if (set->passed) ++rec.increments;
      if (set->stale) ++rec.stale_set;
      if (!set->passed && !set->stale)
        rec.errors.push_back(fmt::format("client {} GUARD SET: {}", id, set->reply));
      if (set->late) {
        ++rec.pauses;
        ++rec.late_sets;
        if (set->stale) ++rec.late_sets_refused;
      }
    }
    if (rr != Reply::integer_(1)) {
      ++rec.release_not_1;
      // Well within its validity (100 ms of margin), a holder's RELEASE must answer 1.
      if (release_sent + 100ms < g.replied + Millis(g.validity_ms)) {
        rec.held_release_fences.push_back(g.fence);
        if (rec.held_release_not_1.size() < 10)
          rec.held_release_not_1.push_back(fmt::format(
              "client {} (proxy {}) fence {} granted at {} ms: RELEASE {} ms after the grant "
              "(validity {} ms) answered {}",
              id, proxy, g.fence, ms(g.replied - start), ms(release_sent - g.replied),
              g.validity_ms, rr.to_string()));
      }
      if (!rr.is_integer() && !rr.error_starts_with("NOQUORUM"))
        rec.errors.push_back(fmt::format("client {} LOCK.RELEASE: {}", id, rr.to_string()));
    }
  }
}

}  // namespace

TEST_CASE("locks: mutual-exclusion checker (20 clients, 2 Locksteps, backend kill, stalled client)",
          "[integration][issue4][locks]") {
  LockClusterOptions o;
  o.backends = 3;
  o.proxies = 2;
  o.max_ttl_ms = 2000;
  LockCluster cluster(o);
  // The counter lives on backend 0; backend 2 (a lock backend only, for this test) is killed.
  const std::string counter = cluster.key_on(0, "counter");
  {
    Client c = cluster.client();
    REQUIRE(c("SET", counter, "0").is_ok());
  }

  Records rec;
  const auto start = Clock::now();
  const auto until = start + kLoad;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    const size_t proxy = static_cast<size_t>(i) % 2;
    threads.emplace_back(client_loop, i, cluster.port(proxy), proxy, counter, start, until,
                         std::ref(rec));
  }
  // Faults: backend 2 killed at 4 s, restarted at 7 s (it is then quarantined and re-seeded
  // while the load goes on).
  int kills = 0, restarts = 0;
  std::this_thread::sleep_until(start + 4s);
  cluster.backend(2).kill9();
  ++kills;
  std::this_thread::sleep_until(start + 7s);
  cluster.backend(2).restart();
  ++restarts;
  for (auto& t : threads) t.join();
  const long long elapsed = elapsed_ms(start);

  Client c = cluster.client();
  const Reply final_value = c("GET", counter);
  const Reply direct_value = cluster.direct(0)("GET", counter);

  std::lock_guard<std::mutex> lock(rec.mu);
  size_t per_proxy[2] = {0, 0};
  for (const auto& g : rec.grants) ++per_proxy[g.proxy];
  long long max_overlap_ms = 0;

  // 1. Fences: unique, and increasing in the order the grants were returned.
  std::vector<GrantRecord> by_fence = rec.grants;
  std::sort(by_fence.begin(), by_fence.end(),
            [](const GrantRecord& a, const GrantRecord& b) { return a.fence < b.fence; });
  std::vector<std::string> dup_fences;
  for (size_t i = 1; i < by_fence.size(); ++i)
    if (by_fence[i].fence == by_fence[i - 1].fence)
      dup_fences.push_back(fmt::format("fence {} granted to clients {} and {}", by_fence[i].fence,
                                       by_fence[i - 1].client, by_fence[i].client));
  std::vector<GrantRecord> by_time = rec.grants;
  std::sort(by_time.begin(), by_time.end(),
            [](const GrantRecord& a, const GrantRecord& b) { return a.replied < b.replied; });
  std::vector<std::string> fence_order, overlaps;
  for (size_t i = 1; i < by_time.size(); ++i) {
    const auto& a = by_time[i - 1];
    const auto& b = by_time[i];
    if (b.fence <= a.fence)
      fence_order.push_back(fmt::format(
          "client {} got fence {} at {} ms, after client {} got "
          "fence {} at {} ms",
          b.client, b.fence, ms(b.replied - start), a.client, a.fence, ms(a.replied - start)));
  }
  // 2. Validity windows: none starts before every earlier one has ended.
  for (size_t i = 0; i < by_time.size(); ++i) {
    for (size_t j = i + 1; j < by_time.size(); ++j) {
      const auto& a = by_time[i];
      const auto& b = by_time[j];
      if (b.replied >= a.end) break;  // sorted by start: later ones start later still
      const long long over = ms(a.end - b.replied);
      max_overlap_ms = std::max(max_overlap_ms, over);
      if (overlaps.size() < 20)
        overlaps.push_back(fmt::format(
            "client {} (proxy {}, fence {}, validity {} ms, {}) held [{}, {}] ms; client {} "
            "(proxy {}, fence {}) got it at {} ms ({} ms overlap)",
            a.client, a.proxy, a.fence, a.validity_ms, a.released ? "released" : "expired",
            ms(a.replied - start), ms(a.end - start), b.client, b.proxy, b.fence,
            ms(b.replied - start), over));
    }
  }
  // 3. Guarded commands: none passed after a higher fence had passed (on the counter's
  // backend, each passed command raised the newest fence seen to at least its own).
  std::vector<GuardRecord> guards = rec.guards;
  std::sort(guards.begin(), guards.end(),
            [](const GuardRecord& a, const GuardRecord& b) { return a.sent < b.sent; });
  std::vector<GuardRecord> by_reply;
  for (const auto& gr : guards)
    if (gr.passed) by_reply.push_back(gr);
  std::sort(by_reply.begin(), by_reply.end(),
            [](const GuardRecord& a, const GuardRecord& b) { return a.replied < b.replied; });
  std::vector<std::string> fence_violations;
  {
    size_t k = 0;
    long long newest = 0;
    const GuardRecord* newest_op = nullptr;
    for (const auto& x : guards) {  // by send time
      while (k < by_reply.size() && by_reply[k].replied < x.sent) {
        if (by_reply[k].fence > newest) {
          newest = by_reply[k].fence;
          newest_op = &by_reply[k];
        }
        ++k;
      }
      if (x.passed && x.fence < newest && fence_violations.size() < 20)
        fence_violations.push_back(fmt::format(
            "client {} {} with fence {} sent at {} ms passed ({}), after client {} {} with "
            "fence {} had passed at {} ms",
            x.client, x.set ? "SET" : "GET", x.fence, ms(x.sent - start), x.reply,
            newest_op->client, newest_op->set ? "SET" : "GET", newest_op->fence,
            ms(newest_op->replied - start)));
    }
  }
  // 4. The values written by passing SETs: 1..N, each once.
  std::vector<long long> written;
  for (const auto& gr : rec.guards)
    if (gr.set && gr.passed) written.push_back(gr.written);
  std::sort(written.begin(), written.end());
  std::vector<std::string> bad_writes;
  for (size_t i = 0; i < written.size() && bad_writes.size() < 20; ++i)
    if (written[i] != static_cast<long long>(i) + 1)
      bad_writes.push_back(fmt::format("#{} wrote {}", i + 1, written[i]));

  const std::string summary = fmt::format(
      "checker: {} ms of load, {} clients over 2 Locksteps; grants {} (proxy 0: {}, proxy 1: "
      "{}), guarded increments {}, counter {}, stale rejections {} (GET {}, SET {}), stalled "
      "client pauses {} (late SETs refused {} of {}), NOQUORUM {}, nil after WAIT {}, RELEASE "
      "not 1 {}, backend kills {}, restarts {}, unexpected replies {}, largest window overlap "
      "{} ms",
      elapsed, kClients, rec.grants.size(), per_proxy[0], per_proxy[1], rec.increments,
      final_value.to_string(), rec.stale_get + rec.stale_set, rec.stale_get, rec.stale_set,
      rec.pauses, rec.late_sets_refused, rec.late_sets, rec.noquorum, rec.nil_after_wait,
      rec.release_not_1, kills, restarts, rec.errors.size(), max_overlap_ms);
  std::printf("%s\n", summary.c_str());
  for (const auto& q : rec.noquorum_samples) std::printf("  NOQUORUM sample: %s\n", q.c_str());
  for (const auto& q : rec.held_release_not_1) std::printf("  holder's RELEASE: %s\n", q.c_str());
  // The grants around each such RELEASE (by fence), to see who else held the lock then.
  std::vector<std::string> neighbours;
  for (size_t k = 0; k < rec.held_release_fences.size() && k < 3; ++k) {
    const long long f = rec.held_release_fences[k];
    for (const auto& g : by_fence)
      if (g.fence >= f - 2 && g.fence <= f + 2)
        neighbours.push_back(fmt::format(
            "fence {}: client {} proxy {}, requested at {} ms, granted at {} ms, validity {} "
            "ms, held until {} ms ({})",
            g.fence, g.client, g.proxy, ms(g.sent - start), ms(g.replied - start), g.validity_ms,
            ms(g.end - start), g.released ? "RELEASE sent" : "validity end"));
  }
  for (const auto& n : neighbours) std::printf("    %s\n", n.c_str());
  for (size_t i = 0; i < overlaps.size() && i < 5; ++i)
    std::printf("  overlap: %s\n", overlaps[i].c_str());
  std::fflush(stdout);

  INFO(summary);
  INFO("unexpected replies (first 10): " << fmt::format(
           "{}",
           fmt::join(rec.errors.begin(),
                     rec.errors.begin() + std::min<std::ptrdiff_t>(
                                              10, static_cast<std::ptrdiff_t>(rec.errors.size())),
                     "\n")));
  CHECK(rec.grants.size() > 100);
  CHECK(rec.increments > 100);
  CHECK(rec.late_sets > 0);
  CHECK(final_value == Reply::string(std::to_string(rec.increments)));
  CHECK(direct_value == final_value);
  {
    INFO(fmt::format("{}", fmt::join(bad_writes, "\n")));
    CHECK(bad_writes.empty());
    CHECK(written.size() == static_cast<size_t>(rec.increments));
  }
  {
    INFO(fmt::format("{}", fmt::join(dup_fences, "\n")));
    CHECK(dup_fences.empty());
  }
  {
    INFO(fmt::format("{}", fmt::join(fence_order, "\n")));
    CHECK(fence_order.empty());
  }
  {
    INFO(fmt::format("{}", fmt::join(rec.held_release_not_1, "\n"))
         << "\ngrants around them:\n"
         << fmt::format("{}", fmt::join(neighbours, "\n")));
    CHECK(rec.held_release_not_1.empty());
  }
  {
    INFO(fmt::format("{}", fmt::join(overlaps, "\n")));
    CHECK(overlaps.empty());
  }
  {
    INFO(fmt::format("{}", fmt::join(fence_violations, "\n")));
    CHECK(fence_violations.empty());
  }
}
