// Unit tests of the Redlock rounds, driven by scripted replies and times: quorum counting,
// validity at its boundary, clean-up after partial failure, retries, extend of an expired lock,
// OWNER re-acquire, error texts, and the request bytes themselves.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "lockstep/lock/redlock.h"

using namespace lockstep::lock;

namespace {

inline Reply I(int64_t v) {
  return Reply::of_integer(v);
}
inline Reply S(std::string_view s) {
  return Reply::of_string(s);
}
inline Reply A(std::vector<Reply> e) {
  return Reply::of_array(std::move(e));
}
inline Reply E(std::string_view message) {
  return Reply::of_error(message);
}

// The acquire script's three answers.
inline Reply acq_fresh(int64_t counter) {
  return A({I(1), S(std::to_string(counter))});
}
inline Reply acq_ours(int64_t counter, std::string_view held_token, int64_t recorded_fence) {
  return A({I(2), S(std::to_string(counter)), S(held_token), S(std::to_string(recorded_fence))});
}
inline Reply acq_busy(int64_t counter, int64_t pttl) {
  return A({I(0), S(std::to_string(counter)), I(pttl)});
}
// The fence-write script's two answers.
inline Reply fence_ok(int64_t v) {
  return A({I(1), S(std::to_string(v))});
}
inline Reply fence_refused(int64_t current) {
  return A({I(0), S(std::to_string(current))});
}

inline Backends all_backends(int n) {
  Backends b;
  b.total = n;
  for (int i = 0; i < n; ++i) b.eligible.push_back(i);
  return b;
}

// The request as its words: EVALSHA/EVAL, sha/body, numkeys, keys..., args...
inline std::vector<std::string> argv_of(const Send& s) {
  std::vector<std::string> out;
  auto r = parse_reply(s.request);
  if (!r) return out;
  for (const auto& e : r->elements) out.push_back(e.text);
  return out;
}

// Which script a request runs ("acquire", "fence-write", ...), by SHA-1 or by body.
inline std::string script_of(const Send& s) {
  const auto argv = argv_of(s);
  if (argv.size() < 2) return "?";
  for (const Script* sc : kAllScripts)
    if (argv[1] == sc->sha() || argv[1] == sc->body) return std::string(sc->name);
  return "?";
}

// ARGV of a script request (after the keys).
inline std::vector<std::string> script_args(const Send& s) {
  const auto argv = argv_of(s);
  const size_t numkeys = std::stoul(argv.at(2));
  return {argv.begin() + static_cast<std::ptrdiff_t>(3 + numkeys), argv.end()};
}

template <class O>
std::vector<Send> awaited(const Effects<O>& fx) {
  std::vector<Send> out;
  for (const auto& s : fx.sends)
    if (s.expects_reply) out.push_back(s);
  return out;
}

template <class O>
std::vector<Send> cleanups(const Effects<O>& fx) {
  std::vector<Send> out;
  for (const auto& s : fx.sends)
    if (!s.expects_reply) out.push_back(s);
  return out;
}

// The id of the awaited request to `backend` in `fx`.
template <class O>
RequestId id_for(const Effects<O>& fx, BackendId backend) {
  for (const auto& s : fx.sends)
    if (s.expects_reply && s.backend == backend) return s.id;
  return 0;
}

AcquireRequest request(std::string token = "tok-new", std::string owner = "", int64_t ttl = 1000,
                       uint64_t seed = 7) {
  AcquireRequest r;
  r.name = "res";
  r.ttl_ms = ttl;
  r.token = std::move(token);
  r.owner = std::move(owner);
  r.jitter_seed = seed;
  return r;
}

// Every clean-up send runs `script` with these ARGV, and there is one per eligible backend.
template <class O>
void require_cleanup_everywhere(const Effects<O>& fx, std::string_view script,
                                const std::vector<std::string>& args, int backends) {
  std::set<BackendId> seen;
  for (const auto& s : cleanups(fx)) {
    if (script_of(s) != script || script_args(s) != args) continue;
    CHECK(argv_of(s)[0] == "EVAL");  // nobody would see a -NOSCRIPT
    seen.insert(s.backend);
  }
  CHECK(static_cast<int>(seen.size()) == backends);
}

}  // namespace

TEST_CASE("quorum, drift and validity formulas", "[lock]") {
  LockSettings s;
  CHECK(quorum(1) == 1);
  CHECK(quorum(2) == 2);
  CHECK(quorum(3) == 2);
  CHECK(quorum(4) == 3);
  CHECK(quorum(5) == 3);
  CHECK(quorum(7) == 4);
  // drift = ttl * 0.01 + 2, subtracted (redlock-py and redsync added it).
  CHECK(drift_ms(s, 1000) == 12);
  CHECK(drift_ms(s, 300) == 5);  // 300 * 0.01 is 2.9999999999999996 in doubles
  CHECK(drift_ms(s, 10000) == 102);
  CHECK(validity_ms(s, 1000, 0) == 988);
  CHECK(validity_ms(s, 1000, 988) == 0);
  CHECK(validity_ms(s, 1000, 1000) == -12);
  CHECK(min_ttl_ms(s) == 3);
  CHECK(effective_quarantine_ms(s) == 60000);
  s.lock_delay_ms = 5000;
  CHECK(effective_quarantine_ms(s) == 65000);
  s.quarantine_ms = 90000;
  CHECK(effective_quarantine_ms(s) == 90000);
}

TEST_CASE("retry delays are randomized by the seed within [d/2, 3d/2]", "[lock]") {
  LockSettings s;
  std::set<int64_t> distinct;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    for (int retry = 1; retry <= 3; ++retry) {
      const int64_t d = retry_delay_ms(s, seed, retry);
      CHECK(d >= 100);
      CHECK(d <= 300);
      distinct.insert(d);
    }
  }
  CHECK(distinct.size() > 150);
  CHECK(retry_delay_ms(s, 42, 1) == retry_delay_ms(s, 42, 1));  // an input, not a clock
  CHECK(retry_delay_ms(s, 42, 1) != retry_delay_ms(s, 42, 2));
}

TEST_CASE("settings validation names the key", "[lock]") {
  LockSettings s;
  CHECK_FALSE(validate(s, 3));
  CHECK(validate(s, 0).value().find("locks.backends") == 0);
  LockSettings q;
  q.quarantine_ms = 1000;
  CHECK(validate(q, 3).value().find("locks.quarantine_ms") == 0);
  LockSettings t;
  t.backend_timeout_ms = 60000;
  CHECK(validate(t, 3).value().find("locks.backend_timeout_ms") == 0);
  LockSettings d;
  d.drift_factor = 0.7;
  CHECK(validate(d, 3).value().find("locks.drift_factor") == 0);
}

TEST_CASE("acquire on 3 backends: a majority grants, phase 2 writes M+1", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(1000);
  REQUIRE(awaited(fx).size() == 3);
  REQUIRE(fx.timer_ms == s.backend_timeout_ms);
  for (const auto& send : fx.sends) {
    const auto argv = argv_of(send);
    CHECK(argv == std::vector<std::string>{"EVALSHA", std::string(kAcquireScript.sha()), "3",
                                           "__lockstep:lock:res", "__lockstep:fence:res",
                                           "__lockstep:lockcfg", "tok-new", "1000", "", "1", "1000",
                                           "0"});
  }
  auto f1 = round.on_reply(id_for(fx, 0), acq_fresh(4), 1003);
  CHECK(f1.sends.empty());
  CHECK_FALSE(f1.done);
  // The second grant makes a quorum: phase 2 proposes max(4, 7) + 1 on every backend.
  auto f2 = round.on_reply(id_for(fx, 1), acq_fresh(7), 1005);
  REQUIRE(awaited(f2).size() == 3);
  for (const auto& send : awaited(f2)) {
    CHECK(script_of(send) == "fence-write");
    CHECK(script_args(send) == std::vector<std::string>{"8", "0", "0"});
  }
  CHECK(f2.timer_ms == s.backend_timeout_ms);
  CHECK(round.on_reply(id_for(fx, 2), acq_fresh(2), 1006).sends.empty());  // late: ignored
  round.on_reply(id_for(f2, 2), fence_refused(9), 1007);
  auto f3 = round.on_reply(id_for(f2, 0), fence_ok(8), 1008);
  CHECK_FALSE(f3.done);
  auto f4 = round.on_reply(id_for(f2, 1), fence_ok(8), 1009);
  REQUIRE(f4.done);
  const auto& g = std::get<Granted>(*f4.done);
  CHECK(g.token == "tok-new");
  CHECK(g.fence == 8);
  CHECK(g.validity_ms == 1000 - 9 - 12);  // elapsed counts both phases
  CHECK_FALSE(g.reacquired);
  // The committed fence is recorded in the hold, after the commit, on every backend.
  require_cleanup_everywhere(f4, "record-fence", {"tok-new", "8", "1"}, 3);
  CHECK(cleanups(f4).size() == 3);  // nothing to abort: every hold this round took is the grant
  CHECK(round.finished());
  CHECK(round.on_timer(5000).sends.empty());
}

TEST_CASE("acquire on 5 backends needs 3: two grants and three holders is Busy at once", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(5), request());
  auto fx = round.start(0);
  REQUIRE(awaited(fx).size() == 5);
  round.on_reply(id_for(fx, 0), acq_fresh(3), 1);
  round.on_reply(id_for(fx, 1), acq_fresh(3), 1);
  round.on_reply(id_for(fx, 2), acq_busy(3, 400), 2);
  round.on_reply(id_for(fx, 3), acq_busy(3, 300), 2);
  auto last = round.on_reply(id_for(fx, 4), acq_busy(3, 500), 3);
  REQUIRE(last.done);
  // Held by someone else on a majority: no retries, nil to the client, and the two partial
  // holds are undone on every backend (all attempts: the round is over).
  CHECK(std::get<Busy>(*last.done).retry_after_ms == 300);  // 3rd smallest of 0,0,300,400,500
  require_cleanup_everywhere(last, "abort", {"tok-new", ""}, 5);
  CHECK(round.attempts() == 1);
}

TEST_CASE("acquire on 5 backends: three grants win even with two failures", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(5), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), E("LOADING Redis is loading the dataset in memory"), 1);
  round.on_timeout(id_for(fx, 1), 2);
  round.on_reply(id_for(fx, 2), acq_fresh(10), 3);
  round.on_reply(id_for(fx, 3), acq_fresh(11), 3);
  auto f = round.on_reply(id_for(fx, 4), acq_fresh(12), 4);
  REQUIRE(awaited(f).size() == 5);
  CHECK(script_args(awaited(f)[0]) == std::vector<std::string>{"13", "0", "0"});
  round.on_reply(id_for(f, 0), fence_ok(13), 5);
  round.on_reply(id_for(f, 2), fence_ok(13), 5);
  auto g = round.on_reply(id_for(f, 4), fence_ok(13), 6);
  REQUIRE(g.done);
  CHECK(std::get<Granted>(*g.done).fence == 13);
}

TEST_CASE("a minority grant is undone everywhere, retried after the delay, then NoQuorum",
          "[lock]") {
  LockSettings s;
  const uint64_t seed = 99;
  AcquireRound round(s, all_backends(3), request("tok-new", "", 1000, seed));
  int64_t now = 0;
  auto fx = round.start(now);
  for (int attempt = 1; attempt <= 1 + s.retry_count; ++attempt) {
    REQUIRE(awaited(fx).size() == 3);
    CHECK(script_args(awaited(fx)[0])[3] == std::to_string(attempt));
    round.on_reply(id_for(fx, 0), acq_fresh(0), now + 1);
    // b1 and b2 never answer: the round's timer ends the phase.
    auto early = round.on_timer(now + 20);
    CHECK(early.timer_ms == 30);  // too early: keep waiting
    CHECK(early.sends.empty());
    auto failed = round.on_timer(now + s.backend_timeout_ms);
    if (attempt <= s.retry_count) {
      REQUIRE_FALSE(failed.done);
      // Undo this attempt's hold on EVERY backend, also those that did not answer.
      require_cleanup_everywhere(failed, "abort", {"tok-new", std::to_string(attempt)}, 3);
      const int64_t delay = retry_delay_ms(s, seed, attempt);
      REQUIRE(failed.timer_ms == delay);
      now += s.backend_timeout_ms;
      CHECK(round.on_timer(now + delay - 1).timer_ms == 1);
      now += delay;
      fx = round.on_timer(now);
    } else {
      REQUIRE(failed.done);
      const auto& nq = std::get<NoQuorum>(*failed.done);
      CHECK(nq.answered == 1);
      CHECK(nq.needed == 2);
      CHECK(nq.total == 3);
      require_cleanup_everywhere(failed, "abort", {"tok-new", ""}, 3);
      const std::vector<std::string> names = {"b1", "b2", "b3"};
      CHECK(error_text(nq, names) ==
            "NOQUORUM 1 of 3 lock backends answered, 2 needed (b1: yes; b2: timeout (50 ms); "
            "b3: timeout (50 ms))");
    }
  }
  CHECK(round.attempts() == 4);
}

TEST_CASE("a split vote retries and ends Busy", "[lock]") {
  LockSettings s;
  s.retry_count = 1;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), acq_fresh(0), 1);
  round.on_reply(id_for(fx, 1), acq_busy(0, 700), 1);
  // b2's request was lost (the driver knows: connection closed): decided without the timer.
  auto f = round.on_timeout(id_for(fx, 2), 2);
  REQUIRE_FALSE(f.done);
  REQUIRE(f.timer_ms);
  fx = round.on_timer(2 + *f.timer_ms);
  REQUIRE(awaited(fx).size() == 3);
  round.on_reply(id_for(fx, 0), acq_busy(0, 500), 300);
  round.on_reply(id_for(fx, 1), acq_fresh(0), 300);
  auto last = round.on_reply(id_for(fx, 2), acq_busy(0, 100), 301);
  REQUIRE(last.done);
  // Two of three are held elsewhere: Busy with no further retry; free when 2 of 3 are free.
  CHECK(std::get<Busy>(*last.done).retry_after_ms == 100);
}

TEST_CASE("validity at the boundary: exactly 0 is no grant", "[lock]") {
  LockSettings s;
  s.retry_count = 0;
  s.backend_timeout_ms = 99;
  const int64_t ttl = 100;  // drift = 1 + 2 = 3, so validity = 97 - elapsed

  SECTION("validity 1 after both phases: granted") {
    AcquireRound round(s, all_backends(3), request("t", "", ttl));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_fresh(0), 40);
    auto f = round.on_reply(id_for(fx, 1), acq_fresh(0), 50);
    round.on_reply(id_for(f, 0), fence_ok(1), 90);
    auto g = round.on_reply(id_for(f, 1), fence_ok(1), 96);
    REQUIRE(g.done);
    CHECK(std::get<Granted>(*g.done).validity_ms == 1);
  }
  SECTION("validity 0 after phase 2: not granted, undone everywhere") {
    AcquireRound round(s, all_backends(3), request("t", "", ttl));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_fresh(0), 40);
    auto f = round.on_reply(id_for(fx, 1), acq_fresh(0), 50);
    round.on_reply(id_for(f, 0), fence_ok(1), 90);
    auto g = round.on_reply(id_for(f, 1), fence_ok(1), 97);
    REQUIRE(g.done);
    const auto& e = std::get<LockError>(*g.done);
    CHECK(e.text.rfind("LOCKTIMEOUT", 0) == 0);
    require_cleanup_everywhere(g, "abort", {"t", ""}, 3);
    for (const auto& c : cleanups(g)) CHECK(script_of(c) != "record-fence");
  }
  SECTION("validity 0 already after phase 1: phase 2 is not even sent") {
    AcquireRound round(s, all_backends(3), request("t", "", ttl));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_fresh(0), 10);
    auto f = round.on_reply(id_for(fx, 1), acq_fresh(0), 97);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<LockError>(*f.done));
    CHECK(awaited(f).empty());
  }
}

TEST_CASE("-NOSCRIPT makes the round resend that request as EVAL", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  auto r = round.on_reply(id_for(fx, 0), E("NOSCRIPT No matching script. Please use EVAL."), 1);
  REQUIRE(r.sends.size() == 1);
  CHECK(r.sends[0].backend == 0);
  CHECK(r.sends[0].expects_reply);
  CHECK(argv_of(r.sends[0])[0] == "EVAL");
  CHECK(argv_of(r.sends[0])[1] == kAcquireScript.body);
  CHECK(r.sends[0].id != id_for(fx, 0));
  CHECK(round.on_reply(id_for(fx, 0), acq_fresh(0), 2).sends.empty());  // the old id is dead
  round.on_reply(r.sends[0].id, acq_fresh(0), 3);
  auto f = round.on_reply(id_for(fx, 1), acq_fresh(0), 3);
  CHECK(awaited(f).size() == 3);  // quorum with the resent request: on to phase 2
  // Each request falls back once; a NOSCRIPT to the EVAL itself is an error, not a loop.
  auto again = round.on_reply(id_for(f, 2), E("NOSCRIPT No matching script."), 4);
  REQUIRE(again.sends.size() == 1);
  CHECK(argv_of(again.sends[0])[1] == kFenceWriteScript.body);
  CHECK(round.on_reply(again.sends[0].id, E("NOSCRIPT No matching script."), 5).sends.empty());
}

TEST_CASE("use_evalsha = false sends EVAL from the start", "[lock]") {
  LockSettings s;
  s.use_evalsha = false;
  ReleaseRound round(s, all_backends(3), "res", "tok");
  auto fx = round.start(0);
  for (const auto& send : fx.sends) CHECK(argv_of(send)[0] == "EVAL");
}

TEST_CASE("misconfigured lock backends give LOCKCONFIG with each backend's vote", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), E("READONLY You can't write against a read only replica."), 1);
  round.on_reply(id_for(fx, 1), acq_fresh(0), 1);
  auto f = round.on_reply(id_for(fx, 2), E("NOPERM this user has no permissions"), 2);
  REQUIRE(f.done);  // no retries: waiting 200 ms will not fix a configuration
  const auto& e = std::get<LockError>(*f.done);
  const std::vector<std::string> names = {"b1", "b2", "b3"};
  CHECK(error_text(e, names) ==
        "LOCKCONFIG lock backends refused the lock script (b1: error READONLY You can't write "
        "against a read only replica.; b2: yes; b3: error NOPERM this user has no permissions)");
  CHECK(round.attempts() == 1);
}

TEST_CASE("a reply that is not what the script returns counts as an error", "[lock]") {
  LockSettings s;
  s.retry_count = 0;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), std::string_view("+OK\r\n"), 1);
  // Truncated. With two errors of three a quorum is impossible: decided without waiting.
  auto f = round.on_reply(id_for(fx, 1), std::string_view("*2\r\n:1\r\n$1\r\n0"), 1);
  REQUIRE(f.done);
  const auto& e = std::get<LockError>(*f.done);
  CHECK(describe_votes(e.votes, {}) ==
        "#0: error unexpected reply to the acquire script; #1: error ERR malformed reply from "
        "backend; #2: no reply yet");
  CHECK(
      round.on_reply(id_for(fx, 2), std::string_view("*2\r\n:1\r\n$1\r\n0\r\n"), 2).sends.empty());
}

TEST_CASE("too few eligible backends: NoQuorum at once; none configured: LOCKCONFIG", "[lock]") {
  LockSettings s;
  Backends b{5, {0, 3}};
  AcquireRound round(s, b, request());
  auto fx = round.start(0);
  REQUIRE(fx.done);
  CHECK(fx.sends.empty());
  const auto& nq = std::get<NoQuorum>(*fx.done);
  CHECK(nq.answered == 0);
  CHECK(nq.needed == 3);
  CHECK(error_text(nq, {}) ==
        "NOQUORUM 0 of 5 lock backends answered, 3 needed (#0: not asked (too few eligible "
        "backends); #1: quarantined or not verified; #2: quarantined or not verified; #3: not "
        "asked (too few eligible backends); #4: quarantined or not verified)");

  AcquireRound none(s, Backends{0, {}}, request());
  auto n = none.start(0);
  REQUIRE(n.done);
  CHECK(std::get<LockError>(*n.done).text.rfind("LOCKCONFIG no lock backends", 0) == 0);

  AcquireRound bad(s, Backends{3, {0, 0, 1}}, request());
  CHECK(std::get<LockError>(*bad.start(0).done).text == "LOCKCONFIG invalid lock backend list");
}

TEST_CASE("quorum counts all configured backends, not only the eligible ones", "[lock]") {
  LockSettings s;
  // 5 configured, 3 eligible (2 quarantined): still 3 grants needed, not 2.
  AcquireRound round(s, Backends{5, {0, 1, 2}}, request());
  auto fx = round.start(0);
  REQUIRE(awaited(fx).size() == 3);
  round.on_reply(id_for(fx, 0), acq_fresh(0), 1);
  auto f = round.on_reply(id_for(fx, 1), acq_fresh(0), 1);
  CHECK(f.sends.empty());
  CHECK_FALSE(f.done);
  auto g = round.on_reply(id_for(fx, 2), acq_fresh(0), 2);
  CHECK(awaited(g).size() == 3);
}

TEST_CASE("with a minority down, a held lock is nil, not NOQUORUM: the round waits for the vote",
          "[lock]") {
  LockSettings s;
  // Backend 0 is down (not eligible); 1 and 2 must both be heard before "held" is known.
  AcquireRound round(s, Backends{3, {1, 2}}, request());
  auto fx = round.start(0);
  auto f = round.on_reply(id_for(fx, 1), acq_busy(3, 400), 1);
  CHECK_FALSE(f.done);  // it cannot win any more, but the last vote decides nil vs NOQUORUM
  auto g = round.on_reply(id_for(fx, 2), acq_busy(3, 300), 2);
  REQUIRE(g.done);
  CHECK(std::get<Busy>(*g.done).retry_after_ms == 400);
  SECTION("release and extend of a lock not held: 0, not NOQUORUM") {
    ReleaseRound release(s, Backends{3, {1, 2}}, "res", "tok");
    auto r = release.start(10);
    CHECK_FALSE(release.on_reply(id_for(r, 1), I(0), 11).done);
    auto r2 = release.on_reply(id_for(r, 2), I(0), 11);
    REQUIRE(r2.done);
    CHECK(std::holds_alternative<NotHeld>(*r2.done));
    ExtendRound extend(s, Backends{3, {1, 2}}, "res", "tok", 1000);
    auto e = extend.start(10);
    CHECK_FALSE(extend.on_reply(id_for(e, 2), I(0), 11).done);
    auto e2 = extend.on_reply(id_for(e, 1), I(0), 11);
    REQUIRE(e2.done);
    CHECK(std::holds_alternative<NotHeld>(*e2.done));
  }
  SECTION("the last vote lost: NOQUORUM") {
    ReleaseRound release(s, Backends{3, {1, 2}}, "res", "tok");
    auto r = release.start(10);
    release.on_reply(id_for(r, 1), I(0), 11);
    auto r2 = release.on_timeout(id_for(r, 2), 12);
    REQUIRE(r2.done);
    CHECK(std::get<NoQuorum>(*r2.done).answered == 1);
  }
}

TEST_CASE("phase 2 without a majority fails the attempt and undoes the holds", "[lock]") {
  LockSettings s;
  s.retry_count = 0;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), acq_fresh(5), 1);
  auto f = round.on_reply(id_for(fx, 1), acq_fresh(5), 1);
  round.on_reply(id_for(f, 0), fence_ok(6), 2);
  round.on_reply(id_for(f, 1), fence_refused(6), 2);  // a racing writer got 6 there first
  auto g = round.on_reply(id_for(f, 2), fence_refused(7), 3);
  REQUIRE(g.done);
  CHECK(std::holds_alternative<Busy>(*g.done));
  require_cleanup_everywhere(g, "abort", {"tok-new", ""}, 3);

  AcquireRound slow(s, all_backends(3), request());
  auto sx = slow.start(0);
  slow.on_reply(id_for(sx, 0), acq_fresh(5), 1);
  auto sf = slow.on_reply(id_for(sx, 1), acq_fresh(5), 1);
  slow.on_reply(id_for(sf, 0), fence_ok(6), 2);
  auto sg = slow.on_timer(1 + s.backend_timeout_ms);  // the others never answer phase 2
  REQUIRE(sg.done);
  const auto& nq = std::get<NoQuorum>(*sg.done);
  CHECK(nq.answered == 1);
  CHECK(describe_votes(nq.votes, {}) == "#0: yes; #1: timeout (50 ms); #2: timeout (50 ms)");
}

TEST_CASE("OWNER re-acquire keeps token and fence, and confirms the fence", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request("tok-new", "worker-1"));
  auto fx = round.start(0);
  CHECK(script_args(awaited(fx)[0])[2] == "worker-1");
  round.on_reply(id_for(fx, 0), acq_ours(5, "tok-old", 5), 1);
  round.on_reply(id_for(fx, 1), acq_fresh(5), 1);  // the old hold was missing there
  auto f = round.on_reply(id_for(fx, 2), acq_ours(5, "tok-old", 5), 2);
  REQUIRE(awaited(f).size() == 3);
  CHECK(script_args(awaited(f)[0]) == std::vector<std::string>{"5", "1", "0"});  // confirm 5
  round.on_reply(id_for(f, 0), fence_ok(5), 3);
  auto g = round.on_reply(id_for(f, 2), fence_ok(5), 4);
  REQUIRE(g.done);
  const auto& granted = std::get<Granted>(*g.done);
  CHECK(granted.token == "tok-old");
  CHECK(granted.fence == 5);
  CHECK(granted.reacquired);
  CHECK(granted.validity_ms == 1000 - 4 - 12);
  // The fresh hold this round took on b1 with its own token is not part of the grant; the
  // adopted holds' record is refreshed only where one exists (attempt '').
  require_cleanup_everywhere(g, "abort", {"tok-new", ""}, 3);
  require_cleanup_everywhere(g, "record-fence", {"tok-old", "5", ""}, 3);
}

TEST_CASE("OWNER re-acquire takes a fresh fence when the record is missing or overtaken",
          "[lock]") {
  LockSettings s;
  SECTION("no recorded fence: an unfinished round's hold is not adopted") {
    // Its round may still abort it (a late clean-up), so it counts as held by someone else.
    s.retry_count = 0;
    AcquireRound round(s, all_backends(3), request("tok-new", "w"));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_ours(5, "tok-old", 0), 1);
    auto f = round.on_reply(id_for(fx, 1), acq_ours(5, "tok-old", 0), 1);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<Busy>(*f.done));  // held on a majority, not by a grant
  }
  SECTION("a counter above the recorded fence") {
    AcquireRound round(s, all_backends(3), request("tok-new", "w"));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_ours(9, "tok-old", 5), 1);
    auto f = round.on_reply(id_for(fx, 1), acq_ours(5, "tok-old", 5), 1);
    CHECK(script_args(awaited(f)[0]) == std::vector<std::string>{"10", "0", "0"});
    round.on_reply(id_for(f, 0), fence_ok(10), 2);
    auto g = round.on_reply(id_for(f, 1), fence_ok(10), 2);
    const auto& granted = std::get<Granted>(*g.done);
    CHECK(granted.token == "tok-old");
    CHECK(granted.fence == 10);
    CHECK(granted.reacquired);
  }
  SECTION("the confirm is refused by a majority: only this round's own holds are undone") {
    s.retry_count = 0;
    AcquireRound round(s, all_backends(3), request("tok-new", "w"));
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), acq_ours(5, "tok-old", 5), 1);
    auto f = round.on_reply(id_for(fx, 1), acq_ours(5, "tok-old", 5), 1);
    round.on_reply(id_for(f, 0), fence_refused(8), 2);
    auto g = round.on_reply(id_for(f, 1), fence_refused(8), 2);
    REQUIRE(g.done);
    CHECK(std::holds_alternative<Busy>(*g.done));
    // The OWNER's earlier hold is another round's: left as it was (refreshed, never shorter).
    require_cleanup_everywhere(g, "abort", {"tok-new", ""}, 3);
    for (const auto& c : cleanups(g)) CHECK(script_args(c)[0] == "tok-new");
  }
}

TEST_CASE("a fresh majority beats the OWNER's older minority hold, which is left alone", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request("tok-new", "w"));
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), acq_ours(3, "tok-old", 3), 1);
  round.on_reply(id_for(fx, 1), acq_fresh(3), 1);
  auto f = round.on_reply(id_for(fx, 2), acq_fresh(3), 1);
  round.on_reply(id_for(f, 1), fence_ok(4), 2);
  auto g = round.on_reply(id_for(f, 2), fence_ok(4), 2);
  const auto& granted = std::get<Granted>(*g.done);
  CHECK(granted.token == "tok-new");
  CHECK_FALSE(granted.reacquired);
  // A minority blocks no one, and that hold is another round's to delete: no abort at all.
  for (const auto& c : cleanups(g)) CHECK(script_of(c) == "record-fence");
}

TEST_CASE("abandon undoes the round's holds and ends it Cancelled", "[lock]") {
  LockSettings s;
  AcquireRound round(s, all_backends(3), request());
  auto fx = round.start(0);
  round.on_reply(id_for(fx, 0), acq_fresh(0), 1);
  auto a = round.abandon(2);
  REQUIRE(a.done);
  CHECK(std::holds_alternative<Cancelled>(*a.done));
  require_cleanup_everywhere(a, "abort", {"tok-new", ""}, 3);
  CHECK(round.on_reply(id_for(fx, 1), acq_fresh(0), 3).sends.empty());
  CHECK(round.abandon(4).sends.empty());
}

TEST_CASE("release counts only with a majority", "[lock]") {
  LockSettings s;
  SECTION("2 of 3 deleted: released, without waiting for the third") {
    ReleaseRound round(s, all_backends(3), "res", "tok");
    auto fx = round.start(0);
    REQUIRE(awaited(fx).size() == 3);
    // Always EVAL: a late -NOSCRIPT after the round decided would leave the hold in place.
    CHECK(argv_of(fx.sends[0]) == std::vector<std::string>{"EVAL", std::string(kReleaseLua), "1",
                                                           "__lockstep:lock:res", "tok", "0"});
    round.on_reply(id_for(fx, 0), I(1), 1);
    auto f = round.on_reply(id_for(fx, 1), std::string_view(":1\r\n"), 2);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<Released>(*f.done));
  }
  SECTION("1 of 3 deleted, 2 say not held: 0") {
    ReleaseRound round(s, all_backends(3), "res", "tok");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), I(1), 1);
    round.on_reply(id_for(fx, 1), I(0), 1);
    auto f = round.on_reply(id_for(fx, 2), I(0), 2);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<NotHeld>(*f.done));
  }
  SECTION("1 of 3 deleted, 2 timed out: NoQuorum") {
    ReleaseRound round(s, all_backends(3), "res", "tok");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), I(1), 1);
    auto f = round.on_timer(50);
    REQUIRE(f.done);
    CHECK(std::get<NoQuorum>(*f.done).answered == 1);
  }
  SECTION("a hold adopted by an OWNER re-acquire is released by the generation it answered") {
    ReleaseRound round(s, all_backends(3), "res", "tok");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), I(1), 1);
    auto again = round.on_reply(id_for(fx, 1), A({I(2), S("3")}), 1);
    REQUIRE(again.sends.size() == 1);
    CHECK(again.sends[0].backend == 1);
    CHECK(script_args(again.sends[0]) == std::vector<std::string>{"tok", "3"});
    CHECK_FALSE(again.done);
    auto f = round.on_reply(again.sends[0].id, I(1), 2);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<Released>(*f.done));
  }
  SECTION("a hold adopted again while it is being released is not deleted") {
    ReleaseRound round(s, all_backends(3), "res", "tok");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), I(0), 1);
    auto again = round.on_reply(id_for(fx, 1), A({I(2), S("1")}), 1);
    REQUIRE(again.sends.size() == 1);
    auto f = round.on_reply(again.sends[0].id, A({I(2), S("2")}), 2);
    CHECK(f.sends.empty());
    REQUIRE(f.done);  // two backends answered "not released": a quorum cannot say yes
    CHECK(std::holds_alternative<NotHeld>(*f.done));
  }
  SECTION("5 backends: 2 deleted and 3 not held is 0") {
    ReleaseRound round(s, all_backends(5), "res", "tok");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), I(1), 1);
    round.on_reply(id_for(fx, 1), I(1), 1);
    round.on_reply(id_for(fx, 2), I(0), 1);
    CHECK_FALSE(round.on_reply(id_for(fx, 3), I(0), 1).done);  // 2 yes + 1 pending can make 3
    auto f = round.on_reply(id_for(fx, 4), I(0), 1);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<NotHeld>(*f.done));
  }
}

TEST_CASE("extend of an expired lock returns 0 and never revives it", "[lock]") {
  // Revival would need a request that creates a hold; the extend round sends nothing but the
  // compare-and-pexpire script, which never creates one (verified on redis-server, and by the
  // model in fence_model_test.cpp).
  LockSettings s;
  ExtendRound round(s, all_backends(3), "res", "tok", 5000);
  auto fx = round.start(0);
  REQUIRE(awaited(fx).size() == 3);
  CHECK(script_of(fx.sends[0]) == "extend");
  CHECK(script_args(fx.sends[0]) == std::vector<std::string>{"tok", "5000", "5000", "0"});
  round.on_reply(id_for(fx, 0), I(0), 1);
  round.on_reply(id_for(fx, 1), I(1), 1);  // one backend still had it
  auto f = round.on_reply(id_for(fx, 2), I(0), 2);
  REQUIRE(f.done);
  CHECK(std::holds_alternative<NotHeld>(*f.done));
  // No follow-up at all: the minority copy blocks no one and expires; a release sent now could
  // land after the same OWNER re-acquired the hold.
  CHECK(f.sends.empty());
}

TEST_CASE("extend: a quorum gives the new validity; validity 0 is lost", "[lock]") {
  LockSettings s;
  s.lock_delay_ms = 250;
  {
    ExtendRound round(s, all_backends(3), "res", "tok", 2000);
    auto fx = round.start(100);
    CHECK(script_args(fx.sends[0]) == std::vector<std::string>{"tok", "2000", "2250", "0"});
    round.on_reply(id_for(fx, 2), I(1), 104);
    auto f = round.on_reply(id_for(fx, 0), I(1), 110);
    REQUIRE(f.done);
    CHECK(std::get<Extended>(*f.done).validity_ms == 2000 - 10 - 22);
  }
  {
    s.backend_timeout_ms = 99;
    ExtendRound round(s, all_backends(3), "res", "tok", 100);  // validity = 97 - elapsed
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 2), I(1), 10);
    auto f = round.on_reply(id_for(fx, 0), I(1), 97);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<NotHeld>(*f.done));
    CHECK(f.sends.empty());
  }
  {
    ExtendRound round(s, all_backends(3), "res", "tok", 1000);
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 2), I(1), 10);
    auto f = round.on_timer(99);
    REQUIRE(f.done);
    CHECK(std::get<NoQuorum>(*f.done).answered == 1);
    CHECK(f.sends.empty());
  }
}

TEST_CASE("status: held while a quorum holds it, for the quorum-th longest time", "[lock]") {
  LockSettings s;
  {
    StatusRound round(s, all_backends(3), "res");
    auto fx = round.start(0);
    CHECK(script_of(fx.sends[0]) == "status");
    round.on_reply(id_for(fx, 0), A({I(1), S("7"), I(900), S("7")}), 1);
    auto mid = round.on_reply(id_for(fx, 1), A({I(1), S("7"), I(800), S("7")}), 1);
    CHECK_FALSE(mid.done);  // status waits for everyone (or the deadline)
    auto f = round.on_reply(id_for(fx, 2), A({I(0), S("8"), I(0), S("0")}), 2);
    REQUIRE(f.done);
    const auto& st = std::get<LockStatus>(*f.done);
    CHECK(st.held);
    CHECK(st.ttl_ms == 800);
    CHECK(st.fence == 7);  // the current hold's recorded fence, not the counter maximum
    CHECK(st.answered == 3);
  }
  {
    StatusRound round(s, all_backends(3), "res");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), A({I(1), S("7"), I(900), S("7")}), 1);
    round.on_reply(id_for(fx, 1), A({I(0), S("9"), I(0), S("0")}), 1);
    auto f = round.on_timer(50);
    REQUIRE(f.done);
    const auto& st = std::get<LockStatus>(*f.done);
    CHECK_FALSE(st.held);
    CHECK(st.ttl_ms == 0);
    CHECK(st.fence == 9);
  }
  {
    StatusRound round(s, all_backends(3), "res");
    auto fx = round.start(0);
    round.on_reply(id_for(fx, 0), A({I(1), S("7"), I(900), S("7")}), 1);
    auto f = round.on_timer(50);
    REQUIRE(f.done);
    CHECK(std::holds_alternative<NoQuorum>(*f.done));
  }
}

TEST_CASE("KeepAlive renews at a third of the validity and stops for good", "[lock]") {
  KeepAlive k(3000, 1000, 2960);
  CHECK(k.active());
  CHECK(k.next_renewal_at() == 1000 + 986);
  CHECK(k.valid_until() == 3960);
  k.on_extended(2000, 2900);
  CHECK(k.next_renewal_at() == 2000 + 966);
  k.on_failed();
  CHECK(k.state() == KeepAlive::State::kLost);
  k.on_extended(3000, 2900);  // a late success does not bring it back
  CHECK(k.state() == KeepAlive::State::kLost);
  CHECK(k.valid_until() == 4900);

  KeepAlive closed(3000, 0, 2960);
  closed.stop();
  CHECK(closed.state() == KeepAlive::State::kStopped);
  CHECK_FALSE(closed.active());
}

TEST_CASE("script SHA-1s are computed at compile time", "[lock]") {
  static_assert(detail::sha1_hex("abc")[0] == 'a');
  auto hex = [](std::string_view s) {
    auto h = detail::sha1_hex(s);
    return std::string(h.data(), h.size());
  };
  CHECK(hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(hex(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  for (const Script* sc : kAllScripts) CHECK(sc->sha() == hex(sc->body));
  CHECK(lock_key("x") == "__lockstep:lock:x");
  CHECK(fence_key("x") == "__lockstep:fence:x");
  CHECK(guard_key("x") == "__lockstep:guard:x");
  CHECK(released_channel("x") == "__lockstep:released:x");
}

TEST_CASE("guard request: guard key and the command's keys, fence then the command", "[lock]") {
  const std::string_view keys[] = {"acct:1"};
  const std::string_view cmd[] = {"SET", "acct:1", "100"};
  Send s{0, 1, guard_request("res", 42, keys, cmd, ScriptMode::kEvalSha), true};
  CHECK(argv_of(s) == std::vector<std::string>{"EVALSHA", std::string(kGuardScript.sha()), "2",
                                               "__lockstep:guard:res", "acct:1", "42", "SET",
                                               "acct:1", "100"});
  Send e{0, 1, guard_request("res", 42, keys, cmd, ScriptMode::kEval), true};
  CHECK(argv_of(e)[1] == kGuardScript.body);
}

TEST_CASE("reply parser", "[lock]") {
  auto r = parse_reply("*4\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*1\r\n+OK\r\n");
  REQUIRE(r);
  REQUIRE(r->type == Reply::Type::kArray);
  REQUIRE(r->elements.size() == 4);
  CHECK(r->elements[0].integer == 1);
  CHECK(r->elements[1].text == "abc");
  CHECK(r->elements[2].type == Reply::Type::kNil);
  CHECK(r->elements[3].elements[0].text == "OK");

  auto err = parse_reply("-NOSCRIPT No matching script.\r\n");
  REQUIRE(err);
  CHECK(err->error_code() == "NOSCRIPT");
  CHECK(parse_reply("!9\r\nBUSY busy\r\n")->error_code() == "BUSY");

  // RESP3 shapes fold into what a script reply looks like in RESP2.
  CHECK(parse_reply("_\r\n")->type == Reply::Type::kNil);
  CHECK(parse_reply("#t\r\n")->integer == 1);
  CHECK(parse_reply(",1.5\r\n")->text == "1.5");
  CHECK(parse_reply("=7\r\ntxt:abc\r\n")->text == "abc");
  CHECK(parse_reply("%1\r\n+k\r\n:2\r\n")->elements.size() == 2);
  CHECK(parse_reply("|1\r\n+a\r\n+b\r\n:5\r\n")->integer == 5);
  CHECK(parse_reply("$2\r\n12\r\n")->as_int() == 12);
  CHECK_FALSE(parse_reply("$2\r\nab\r\n")->as_int());

  for (std::string_view bad : {"", ":1", ":1\r\n:2\r\n", "$5\r\nab\r\n", "*2\r\n:1\r\n", "?x\r\n",
                               ":01\r\n", "*-2\r\n", "$3\r\nabcd\r\n", "*99999999\r\n:1\r\n"})
    CHECK_FALSE(parse_reply(bad));
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  CHECK_FALSE(parse_reply(deep));
}
