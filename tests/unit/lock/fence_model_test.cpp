// The fence argument, checked by simulation.
//
// FakeBackend executes the lock scripts' semantics (the same rules as the Lua in scripts.h,
// which the report verified against a real redis-server) on an in-memory key space with key
// expiry. A simulated network carries the REAL AcquireRound / ExtendRound / ReleaseRound
// requests to it with random delays, losses, reordering and a few very late deliveries (past
// every ttl), while several clients compete for one lock, hold it, extend it, release it or let
// it expire, and re-acquire it with their OWNER. Over thousands of schedules it checks:
//   - fences strictly increase in the order grants were decided (an OWNER re-acquire may
//     return the previous grant's fence, and only its own);
//   - validity intervals of different holders never overlap (Redlock's mutual exclusion).
// On the same schedules it also computes the fence a "max of independent INCRs" scheme would
// have given (INCR on each backend that granted, take the maximum), and shows it is not
// monotonic: the counter-example from the notes, found by the same test.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <catch2/catch.hpp>

#include <array>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lockstep/lock/redlock.h"

using namespace lockstep::lock;

namespace {

Reply I(int64_t v) {
  return Reply::of_integer(v);
}
Reply S(std::string_view s) {
  return Reply::of_string(s);
}
Reply A(std::vector<Reply> e) {
  return Reply::of_array(std::move(e));
}
std::string str(int64_t v) {
  return std::to_string(v);
}

std::vector<std::string> argv_of(const std::string& request) {
  std::vector<std::string> out;
  auto r = parse_reply(request);
  if (r)
    for (const auto& e : r->elements) out.push_back(e.text);
  return out;
}

// One redis-server as the lock scripts see it.
class FakeBackend {
 public:
  Reply execute(const std::string& request, int64_t now) {
    const auto argv = argv_of(request);
    const Script* script = nullptr;
    for (const Script* sc : kAllScripts)
      if (argv.size() > 2 && (argv[1] == sc->sha() || argv[1] == sc->body)) script = sc;
    if (script == nullptr) return Reply::of_error("NOSCRIPT No matching script.");
    const size_t numkeys = std::stoul(argv[2]);
    const std::vector<std::string> keys(argv.begin() + 3, argv.begin() + 3 + numkeys);
    const std::vector<std::string> args(argv.begin() + 3 + numkeys, argv.end());
    if (holds_.count(keys[0]) && now >= holds_[keys[0]].expires_at) holds_.erase(keys[0]);
    Hold* h = holds_.count(keys[0]) ? &holds_[keys[0]] : nullptr;

    if (script == &kAcquireScript) {
      const std::string counter = str(counters_[keys[1]]);
      const int64_t ttl = std::stoll(args[1]), key_ms = std::stoll(args[4]);
      const int attempt = std::stoi(args[3]);
      if (h) {
        if (now < h->deadline &&
            (h->token == args[0] || (!args[2].empty() && h->owner == args[2]))) {
          if (now + ttl > h->deadline) {
            h->deadline = now + ttl;
            h->expires_at = now + key_ms;
          }
          if (h->token == args[0])
            h->attempt = std::max(h->attempt, attempt);
          else
            ++h->gen;
          return A({I(2), S(counter), S(h->token), S(str(h->fence))});
        }
        return A({I(0), S(counter), I(h->expires_at - now)});
      }
      holds_[keys[0]] = Hold{args[0], args[2], attempt, now + ttl, 0, now + key_ms};
      return A({I(1), S(counter)});
    }
    if (script == &kFenceWriteScript) {
      int64_t& cur = counters_[keys[0]];
      const int64_t v = std::stoll(args[0]);
      if (cur < v || (args[1] == "1" && cur == v)) {
        cur = std::max(cur, v);
        return A({I(1), S(args[0])});
      }
      return A({I(0), S(str(cur))});
    }
    if (script == &kRecordFenceScript) {
      if (!h || h->token != args[0]) return I(0);
      if (args[2].empty() ? h->fence == 0 : h->attempt != std::stoi(args[2])) return I(0);
      h->fence = std::stoll(args[1]);
      return I(1);
    }
    if (script == &kReleaseScript) {
      if (!h || h->token != args[0] || now >= h->deadline) return I(0);
      if (str(h->gen) != args[1]) return A({I(2), S(str(h->gen))});
      holds_.erase(keys[0]);
      return I(1);
    }
    if (script == &kAbortScript) {
      if (!h || h->token != args[0] || (!args[1].empty() && h->attempt != std::stoi(args[1])))
        return I(0);
      holds_.erase(keys[0]);
      return I(1);
    }
    if (script == &kExtendScript) {
      if (!h || h->token != args[0] || now >= h->deadline) return I(0);
      if (now + std::stoll(args[1]) > h->deadline) {
        h->deadline = now + std::stoll(args[1]);
        h->expires_at = now + std::stoll(args[2]);
      }
      return I(1);
    }
    return Reply::of_error("ERR script not modelled");
  }

  // Whether `token` holds lock `name` at `now` (before its deadline).
  bool holds(const std::string& name, const std::string& token, int64_t now) const {
    auto it = holds_.find(lock_key(name));
    return it != holds_.end() && it->second.token == token && now < it->second.deadline &&
           now < it->second.expires_at;
  }
  void set_counter(const std::string& name, int64_t v) { counters_[fence_key(name)] = v; }
  int64_t counter(const std::string& name) { return counters_[fence_key(name)]; }

 private:
  struct Hold {
    std::string token, owner;
    int attempt = 0;
    int64_t deadline = 0;  // end of the hold (the script's `deadline` field)
    int64_t fence = 0;     // recorded fence, 0 = none
    int64_t expires_at = 0;
    int64_t gen = 0;  // adoptions by OWNER re-acquires
  };
  std::map<std::string, Hold> holds_;
  std::map<std::string, int64_t> counters_;
};

struct Grant {
  uint64_t order = 0;  // decision order (simulation event order)
  int64_t start = 0;
  int64_t end = 0;  // validity end, cut short by the holder's release / re-acquire
  std::string token;
  int64_t fence = 0;
  bool reacquired = false;
  int64_t naive_fence = 0;  // what max-of-INCR on the granting backends would have said
};

struct Params {
  int backends = 3;
  int clients = 3;
  double drop = 0.08;          // a request or reply lost
  double lost_reported = 0.5;  // of lost requests, the driver learns it (connection error)
  int64_t max_delay = 3;       // ms one way; a round trip above the timeout now and then
  double late = 0.01;          // delivered very late: after every ttl
  int64_t duration = 1500;
};

class Simulation {
 public:
  Simulation(uint64_t seed, Params p)
      : rng_(seed), p_(p), backends_(static_cast<size_t>(p.backends)) {
    settings_.backend_timeout_ms = 5;
    settings_.retry_delay_ms = 20;
    settings_.retry_count = 2;
    settings_.max_ttl_ms = 200;
    settings_.lock_delay_ms = pick(0, 1) ? 0 : 15;
    naive_.assign(static_cast<size_t>(p.backends), 0);
    for (int c = 0; c < p_.clients; ++c) {
      clients_.push_back(std::make_unique<Client>());
      clients_.back()->owner = pick(0, 1) ? "owner-" + str(c) : "";
      at(pick(0, 30), [this, c] { start_acquire(c); });
    }
  }

  void run() {
    while (!events_.empty() && events_.top().at <= p_.duration) {
      Event e = events_.top();
      events_.pop();
      now_ = e.at;
      ++order_;
      e.fn();
    }
  }

  const std::vector<Grant>& grants() const { return grants_; }
  // With trace on, every delivery, reply, timer and outcome is recorded (to replay a seed).
  void trace_on() { trace_ = true; }
  const std::vector<std::string>& trace() const { return trace_log_; }
  // Acquire outcomes by AcquireOutcome index (Granted, Busy, NoQuorum, LockError, Cancelled).
  const std::array<int, 5>& outcomes() const { return outcomes_; }

 private:
  struct Event {
    int64_t at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator<(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Client {
    std::string owner;
    uint64_t gen = 0;  // the current round; anything for an older one is dropped
    uint64_t timer = 0;
    int tokens = 0;
    std::unique_ptr<AcquireRound> acquire;
    std::unique_ptr<ExtendRound> extend;
    std::unique_ptr<ReleaseRound> release;
    std::string token;                       // of the current acquire round
    std::map<RequestId, int> attempt_of;     // acquire requests: which attempt
    std::map<int, std::set<BackendId>> yes;  // acquire phase: who granted, per attempt
    std::optional<size_t> holding;           // index into grants_
  };

  int64_t pick(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void at(int64_t t, std::function<void()> fn) { events_.push(Event{t, seq_++, std::move(fn)}); }

  int64_t delay() { return chance(p_.late) ? pick(250, 700) : pick(0, p_.max_delay); }

  void note(int c, std::string_view what) {
    if (trace_) trace_log_.push_back(str(now_) + " c" + str(c) + " " + std::string(what));
  }
  static std::string describe(const Send& s) {
    std::string out = "b" + str(s.backend) + " #" + str(static_cast<int64_t>(s.id));
    const auto argv = argv_of(s.request);
    for (const Script* sc : kAllScripts)
      if (argv.size() > 2 && (argv[1] == sc->sha() || argv[1] == sc->body))
        out += " " + std::string(sc->name);
    for (size_t i = 3; i < argv.size(); ++i)
      if (argv[i].rfind("__lockstep", 0) != 0) out += " " + argv[i];
    return out;
  }
  static std::string describe(const Reply& r) {
    if (r.type != Reply::Type::kArray) return r.text.empty() ? str(r.integer) : r.text;
    std::string out = "[";
    for (const auto& e : r.elements) out += (e.text.empty() ? str(e.integer) : e.text) + " ";
    return out + "]";
  }

  // Carries one request to its backend and, if awaited, the reply back to the round.
  void transmit(int c, const Send& s) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    const uint64_t gen = cl.gen;
    if (chance(p_.drop)) {
      note(c, "lost " + describe(s));
      if (s.expects_reply && chance(p_.lost_reported))
        at(now_ + pick(0, 3), [this, c, gen, id = s.id] {
          if (clients_[static_cast<size_t>(c)]->gen == gen) feed_lost(c, id);
        });
      return;
    }
    at(now_ + delay(), [this, c, gen, s] {
      Reply r = backends_[static_cast<size_t>(s.backend)].execute(s.request, now_);
      note(c, "at " + describe(s) + " -> " + describe(r));
      if (!s.expects_reply || chance(p_.drop)) return;
      at(now_ + delay(), [this, c, gen, s, r] {
        if (clients_[static_cast<size_t>(c)]->gen == gen) feed_reply(c, s, r);
      });
    });
  }

  template <class O>
  void apply(int c, Effects<O>& fx) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    for (const auto& s : fx.sends) {
      if (cl.acquire && s.expects_reply) {
        const auto argv = argv_of(s.request);
        if (argv.size() == 12) cl.attempt_of[s.id] = std::stoi(argv[9]);  // acquire's ARGV[4]
      }
      transmit(c, s);
    }
    if (fx.timer_ms) {
      const uint64_t gen = cl.gen, t = ++cl.timer;
      at(now_ + *fx.timer_ms, [this, c, gen, t] {
        Client& x = *clients_[static_cast<size_t>(c)];
        if (x.gen == gen && x.timer == t) feed_timer(c);
      });
    }
  }

  void feed_reply(int c, const Send& s, const Reply& r) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    note(c, "reply " + describe(s) + " <- " + describe(r));
    if (cl.acquire) {
      auto a = cl.attempt_of.find(s.id);
      if (a != cl.attempt_of.end() && r.type == Reply::Type::kArray && !r.elements.empty() &&
          r.elements[0].integer != 0)
        cl.yes[a->second].insert(s.backend);
      auto fx = cl.acquire->on_reply(s.id, r, now_);
      on_acquire(c, fx);
    } else if (cl.extend) {
      auto fx = cl.extend->on_reply(s.id, r, now_);
      on_extend(c, fx);
    } else if (cl.release) {
      auto fx = cl.release->on_reply(s.id, r, now_);
      on_release(c, fx);
    }
  }

  void feed_lost(int c, RequestId id) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    note(c, "reported lost #" + str(static_cast<int64_t>(id)));
    if (cl.acquire) {
      auto fx = cl.acquire->on_timeout(id, now_);
      on_acquire(c, fx);
    } else if (cl.extend) {
      auto fx = cl.extend->on_timeout(id, now_);
      on_extend(c, fx);
    } else if (cl.release) {
      auto fx = cl.release->on_timeout(id, now_);
      on_release(c, fx);
    }
  }

  void feed_timer(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    note(c, "timer");
    if (cl.acquire) {
      auto fx = cl.acquire->on_timer(now_);
      on_acquire(c, fx);
    } else if (cl.extend) {
      auto fx = cl.extend->on_timer(now_);
      on_extend(c, fx);
    } else if (cl.release) {
      auto fx = cl.release->on_timer(now_);
      on_release(c, fx);
    }
  }

  void next_round(Client& cl) {
    ++cl.gen;
    cl.acquire.reset();
    cl.extend.reset();
    cl.release.reset();
    cl.attempt_of.clear();
    cl.yes.clear();
  }

  void start_acquire(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    next_round(cl);
    AcquireRequest req;
    req.name = "res";
    req.ttl_ms = pick(30, 150);
    req.token = "c" + str(c) + "-" + str(++cl.tokens);
    req.owner = cl.owner;
    req.jitter_seed = rng_();
    cl.token = req.token;
    cl.acquire = std::make_unique<AcquireRound>(settings_, all(), req);
    auto fx = cl.acquire->start(now_);
    on_acquire(c, fx);
  }

  void on_acquire(int c, Effects<AcquireOutcome>& fx) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    apply(c, fx);
    if (!fx.done) return;
    note(c, "acquire outcome " + str(static_cast<int64_t>(fx.done->index())) +
                (std::holds_alternative<Granted>(*fx.done)
                     ? " granted " + std::get<Granted>(*fx.done).token + " validity " +
                           str(std::get<Granted>(*fx.done).validity_ms)
                     : ""));
    const auto yes = cl.yes[cl.acquire->attempts()];
    next_round(cl);
    ++outcomes_[fx.done->index()];
    if (const auto* g = std::get_if<Granted>(&*fx.done)) {
      Grant grant{order_, now_, now_ + g->validity_ms, g->token, g->fence, g->reacquired, 0};
      if (!g->reacquired) {
        for (BackendId b : yes) grant.naive_fence = std::max(grant.naive_fence, ++naive_[b]);
      }
      grants_.push_back(grant);
      cl.holding = grants_.size() - 1;
      plan_holding(c);
    } else {
      at(now_ + pick(1, 40), [this, c] { start_acquire(c); });
    }
  }

  // What a holder does next: release, extend, re-acquire with its OWNER, or let it expire.
  void plan_holding(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    const Grant& g = grants_[*cl.holding];
    const int64_t left = g.end - now_;
    const uint64_t gen = cl.gen;
    const int64_t when = now_ + pick(0, std::max<int64_t>(0, left + 10));
    const int choice = static_cast<int>(pick(0, 9));
    auto guarded = [this, c, gen](std::function<void()> fn) {
      return [this, c, gen, fn] {
        if (clients_[static_cast<size_t>(c)]->gen == gen) fn();
      };
    };
    if (choice < 4) {
      at(when, guarded([this, c] { start_release(c); }));
    } else if (choice < 6) {
      at(when, guarded([this, c] { start_extend(c); }));
    } else if (choice < 8 && !cl.owner.empty()) {
      at(when, guarded([this, c] {
           stop_using(c);
           start_acquire(c);
         }));
    } else {
      at(std::max(now_, g.end) + pick(0, 30), guarded([this, c] {
           stop_using(c);
           start_acquire(c);
         }));
    }
  }

  // The holder stops relying on the lock now (it may still be granted again to it).
  void stop_using(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    if (cl.holding) grants_[*cl.holding].end = std::min(grants_[*cl.holding].end, now_);
    cl.holding.reset();
  }

  void start_release(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    const std::string token = grants_[*cl.holding].token;
    stop_using(c);
    next_round(cl);
    cl.release = std::make_unique<ReleaseRound>(settings_, all(), "res", token);
    auto fx = cl.release->start(now_);
    on_release(c, fx);
  }

  void on_release(int c, Effects<ReleaseOutcome>& fx) {
    apply(c, fx);
    if (!fx.done) return;
    next_round(*clients_[static_cast<size_t>(c)]);
    at(now_ + pick(1, 40), [this, c] { start_acquire(c); });
  }

  void start_extend(int c) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    next_round(cl);
    const Grant& g = grants_[*cl.holding];
    cl.extend = std::make_unique<ExtendRound>(settings_, all(), "res", g.token, pick(30, 150));
    auto fx = cl.extend->start(now_);
    on_extend(c, fx);
  }

  void on_extend(int c, Effects<ExtendOutcome>& fx) {
    Client& cl = *clients_[static_cast<size_t>(c)];
    apply(c, fx);
    if (!fx.done) return;
    next_round(cl);
    if (const auto* x = std::get_if<Extended>(&*fx.done)) {
      // The same grant goes on: same token, same fence, an end no earlier (never shortened).
      grants_[*cl.holding].end = std::max(grants_[*cl.holding].end, now_ + x->validity_ms);
      plan_holding(c);
    } else {
      stop_using(c);  // lost
      at(now_ + pick(1, 40), [this, c] { start_acquire(c); });
    }
  }

  Backends all() const {
    Backends b;
    b.total = p_.backends;
    for (int i = 0; i < p_.backends; ++i) b.eligible.push_back(i);
    return b;
  }

  std::mt19937_64 rng_;
  Params p_;
  LockSettings settings_;
  std::vector<FakeBackend> backends_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::priority_queue<Event> events_;
  std::vector<Grant> grants_;
  std::vector<int64_t> naive_;
  std::array<int, 5> outcomes_{};
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t order_ = 0;
  bool trace_ = false;
  std::vector<std::string> trace_log_;
};

// The first violation of "fences strictly increase in decision order", or "" if none.
std::string fence_violation(const std::vector<Grant>& grants) {
  int64_t max_fence = 0;
  const Grant* last = nullptr;
  for (const Grant& g : grants) {
    const bool same_hold = g.reacquired && last && last->token == g.token &&
                           last->fence == g.fence && g.fence == max_fence;
    if (g.fence <= max_fence && !same_hold)
      return "grant " + g.token + " at " + str(g.start) + " got fence " + str(g.fence) +
             " after fence " + str(max_fence);
    max_fence = std::max(max_fence, g.fence);
    last = &g;
  }
  return "";
}

// The first overlap of two different holders' validity intervals, or "".
std::string exclusion_violation(const std::vector<Grant>& grants) {
  for (size_t j = 0; j < grants.size(); ++j)
    for (size_t i = 0; i < j; ++i)
      if (grants[i].token != grants[j].token && grants[j].start < grants[i].end)
        return grants[j].token + " granted at " + str(grants[j].start) + " while " +
               grants[i].token + " valid until " + str(grants[i].end);
  return "";
}

bool naive_is_monotonic(const std::vector<Grant>& grants) {
  int64_t max_fence = 0;
  for (const Grant& g : grants) {
    if (g.reacquired) continue;
    if (g.naive_fence <= max_fence) return false;
    max_fence = g.naive_fence;
  }
  return true;
}

// Runs a round on from `fx` to its end against backends that answer at once, except `down`
// ones (their requests are reported lost); a pending timer is fired when nothing else can
// happen. Clean-up requests are executed too, in order.
template <class Round, class O>
O finish(Round& round, Effects<O> fx, std::vector<FakeBackend>& backends,
         const std::set<BackendId>& down, int64_t now) {
  std::deque<Send> queue;
  while (true) {
    queue.insert(queue.end(), fx.sends.begin(), fx.sends.end());
    fx.sends.clear();
    if (fx.done) break;
    if (queue.empty()) {  // only a timer can move it on (a retry delay)
      REQUIRE(fx.timer_ms);
      now += *fx.timer_ms;
      fx = round.on_timer(now);
      continue;
    }
    const Send s = queue.front();
    queue.pop_front();
    if (down.count(s.backend)) {
      if (s.expects_reply) fx = round.on_timeout(s.id, now);
      continue;
    }
    Reply r = backends[static_cast<size_t>(s.backend)].execute(s.request, now);
    if (s.expects_reply) fx = round.on_reply(s.id, r, now);
  }
  for (const Send& s : queue)
    if (!down.count(s.backend)) backends[static_cast<size_t>(s.backend)].execute(s.request, now);
  return *fx.done;
}

template <class Round>
auto drive(Round& round, std::vector<FakeBackend>& backends, const std::set<BackendId>& down,
           int64_t now) {
  return finish(round, round.start(now), backends, down, now);
}

AcquireRequest req(std::string token, int64_t ttl = 1000, std::string owner = "") {
  AcquireRequest r;
  r.name = "res";
  r.ttl_ms = ttl;
  r.token = std::move(token);
  r.owner = std::move(owner);
  return r;
}

// --- Hand-made interleavings: the test decides when each request reaches its backend. ---

std::string script_of(const Send& s) {
  const auto argv = argv_of(s.request);
  for (const Script* sc : kAllScripts)
    if (argv.size() > 1 && (argv[1] == sc->sha() || argv[1] == sc->body))
      return std::string(sc->name);
  return "?";
}

// Takes the request for `backend` running `script` out of `inflight`.
Send take(std::vector<Send>& inflight, BackendId backend, std::string_view script) {
  for (auto it = inflight.begin(); it != inflight.end(); ++it) {
    if (it->backend == backend && script_of(*it) == script) {
      Send s = *it;
      inflight.erase(it);
      return s;
    }
  }
  FAIL("no " << script << " request for backend " << backend << " in flight");
  return {};
}

template <class O>
void keep(std::vector<Send>& inflight, Effects<O>& fx) {
  inflight.insert(inflight.end(), fx.sends.begin(), fx.sends.end());
  fx.sends.clear();
}

// Delivers everything still in flight (late), in order.
void deliver_all(std::vector<Send>& inflight, std::vector<FakeBackend>& backends, int64_t now) {
  for (const Send& s : inflight) backends[static_cast<size_t>(s.backend)].execute(s.request, now);
  inflight.clear();
}

int holders(std::vector<FakeBackend>& backends, const std::string& token, int64_t now) {
  int n = 0;
  for (const auto& b : backends) n += b.holds("res", token, now) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("max of independent INCRs is not monotonic (the counter-example)", "[lock][fence]") {
  // Counters A=10 B=3 C=2. Holder 1 wins {A,B}: INCR gives A=11 B=4, fence max = 11. Holder 2
  // later wins {B,C}: B=5 C=3, fence max = 5 < 11.
  int64_t a = 10, b = 3, c = 2;
  const int64_t first = std::max(++a, ++b);
  const int64_t second = std::max(++b, ++c);
  CHECK(first == 11);
  CHECK(second == 5);
  CHECK(second < first);
}

TEST_CASE("the two-phase fence on the same counters and the same majorities", "[lock][fence]") {
  LockSettings s;
  std::vector<FakeBackend> backends(3);
  backends[0].set_counter("res", 10);
  backends[1].set_counter("res", 3);
  backends[2].set_counter("res", 2);
  const Backends all{3, {0, 1, 2}};

  AcquireRound first(s, all, req("holder-1"));
  auto g1 = std::get<Granted>(drive(first, backends, {2}, 0));  // wins {A,B}
  CHECK(g1.fence == 11);
  ReleaseRound release(s, all, "res", "holder-1");
  CHECK(std::holds_alternative<Released>(drive(release, backends, {2}, 10)));

  AcquireRound second(s, all, req("holder-2"));
  auto g2 = std::get<Granted>(drive(second, backends, {0}, 20));  // wins {B,C}
  // Phase 1 read B=11 (phase 2 of holder 1 wrote it there), so the fence goes on from 11.
  CHECK(g2.fence == 12);
  CHECK(backends[0].counter("res") == 11);
  CHECK(backends[1].counter("res") == 12);
  CHECK(backends[2].counter("res") == 12);
}

TEST_CASE("re-acquire with the same OWNER keeps token and fence, end to end", "[lock][fence]") {
  LockSettings s;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  AcquireRequest r1 = req("tok-1");
  r1.owner = "job-7";
  AcquireRound first(s, all, r1);
  auto g1 = std::get<Granted>(drive(first, backends, {}, 0));
  AcquireRequest r2 = req("tok-2");
  r2.owner = "job-7";
  AcquireRound again(s, all, r2);
  auto g2 = std::get<Granted>(drive(again, backends, {1}, 100));
  CHECK(g2.token == "tok-1");
  CHECK(g2.fence == g1.fence);
  CHECK(g2.reacquired);
  // Another owner is refused, and the next fresh grant after release goes on from there.
  AcquireRequest r3 = req("tok-3");
  r3.owner = "job-8";
  AcquireRound other(s, all, r3);
  CHECK(std::holds_alternative<Busy>(drive(other, backends, {}, 200)));
  ReleaseRound rel(s, all, "res", "tok-1");
  CHECK(std::holds_alternative<Released>(drive(rel, backends, {}, 300)));
  AcquireRound next(s, all, r3);
  CHECK(std::get<Granted>(drive(next, backends, {}, 400)).fence == g1.fence + 1);
}

TEST_CASE("an expired lock is never revived by extend, end to end", "[lock][fence]") {
  LockSettings s;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  AcquireRound first(s, all, req("tok-1", 100));
  REQUIRE(std::holds_alternative<Granted>(drive(first, backends, {}, 0)));
  ExtendRound late(s, all, "res", "tok-1", 1000);
  CHECK(std::holds_alternative<NotHeld>(drive(late, backends, {}, 100)));
  AcquireRound other(s, all, req("tok-2"));
  CHECK(std::holds_alternative<Granted>(drive(other, backends, {}, 101)));
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kSchedules = 200;  // sanitizers check memory; the normal build checks the model
#else
constexpr uint64_t kSchedules = 1500;
#endif

TEST_CASE("fences increase and holders exclude each other over random schedules", "[lock][fence]") {
  int naive_broken = 0, grants = 0, reacquired = 0;
  std::array<int, 5> outcomes{};
  for (int backends : {3, 5}) {
    for (uint64_t seed = 1; seed <= kSchedules; ++seed) {
      Params p;
      p.backends = backends;
      p.clients = 2 + static_cast<int>(seed % 3);
      Simulation sim(seed * 7919 + static_cast<uint64_t>(backends), p);
      sim.run();
      for (size_t i = 0; i < outcomes.size(); ++i) outcomes[i] += sim.outcomes()[i];
      const auto& g = sim.grants();
      grants += static_cast<int>(g.size());
      for (const auto& x : g) reacquired += x.reacquired ? 1 : 0;
      INFO("backends " << backends << " seed " << seed);
      const std::string fence = fence_violation(g);
      CHECK(fence == "");
      const std::string exclusion = exclusion_violation(g);
      CHECK(exclusion == "");
      if (!naive_is_monotonic(g)) ++naive_broken;
    }
  }
  // The schedules exercise what they should: many grants, OWNER re-acquires, and enough
  // divergence between backends that independent INCRs go backwards.
  const int schedules = static_cast<int>(2 * kSchedules);
  CHECK(grants > 10 * schedules);
  CHECK(reacquired > schedules / 3);
  CHECK(naive_broken > schedules / 30);
  CHECK(outcomes[1] > 10 * schedules);  // Busy
  CHECK(outcomes[2] > schedules);       // NoQuorum
  WARN("grants " << grants << ", re-acquired " << reacquired << ", busy " << outcomes[1]
                 << ", no quorum " << outcomes[2] << ", errors " << outcomes[3]
                 << ", schedules where max-of-INCR went backwards " << naive_broken);
}

// LOCKSTEP_FENCE_SEED=<backends>:<seed> replays one schedule of the test above and prints its
// history (every delivery, reply, timer and outcome) when it violates a property.
TEST_CASE("replay one random schedule", "[lock][fence][replay]") {
  const char* env = std::getenv("LOCKSTEP_FENCE_SEED");
  if (env == nullptr) return;
  const std::string spec = env;
  const int backends = std::stoi(spec.substr(0, spec.find(':')));
  const uint64_t seed = std::stoull(spec.substr(spec.find(':') + 1));
  Params p;
  p.backends = backends;
  p.clients = 2 + static_cast<int>(seed % 3);
  Simulation sim(seed * 7919 + static_cast<uint64_t>(backends), p);
  sim.trace_on();
  sim.run();
  const std::string violation = fence_violation(sim.grants()) + exclusion_violation(sim.grants());
  INFO("history:\n" << fmt::format("{}", fmt::join(sim.trace(), "\n")));
  CHECK(violation == "");
}

TEST_CASE("interleaving: the strict compare stops a second commit of the same fence",
          "[lock][fence]") {
  // G1 takes {A,B} and commits fence 1 on {B,C}; its write to A is slow. G2's acquire reads C
  // before G1's write lands there, and reaches A only after G1 released: G2 then holds {A,C},
  // has read only zeros and proposes 1 as well. B and C already have 1: with "<=" instead of
  // "<" they would accept and fence 1 would be handed out twice.
  LockSettings s;
  s.retry_count = 1;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  const BackendId A = 0, B = 1, C = 2;
  std::vector<Send> g1_net, g2_net;

  AcquireRound g1(s, all, req("g1"));
  auto f = g1.start(0);
  keep(g1_net, f);
  Send sa = take(g1_net, A, "acquire"), sb = take(g1_net, B, "acquire");
  g1.on_reply(sa.id, backends[A].execute(sa.request, 1), 1);
  f = g1.on_reply(sb.id, backends[B].execute(sb.request, 1), 1);
  keep(g1_net, f);  // phase 2: fence 1 to all

  AcquireRound g2(s, all, req("g2"));
  auto h = g2.start(2);
  keep(g2_net, h);
  Send gc = take(g2_net, C, "acquire");
  h = g2.on_reply(gc.id, backends[C].execute(gc.request, 2), 2);  // C free, counter 0
  keep(g2_net, h);

  Send wb = take(g1_net, B, "fence-write"), wc = take(g1_net, C, "fence-write");
  g1.on_reply(wb.id, backends[B].execute(wb.request, 3), 3);
  f = g1.on_reply(wc.id, backends[C].execute(wc.request, 3), 3);
  REQUIRE(f.done);
  REQUIRE(std::get<Granted>(*f.done).fence == 1);
  ReleaseRound rel(s, all, "res", "g1");
  const auto out1 = finish(rel, rel.start(4), backends, {C}, 4);  // reaches A and B
  REQUIRE(std::holds_alternative<Released>(out1));

  Send ga = take(g2_net, A, "acquire");
  h = g2.on_reply(ga.id, backends[A].execute(ga.request, 5), 5);  // quorum {A,C}, max 0
  keep(g2_net, h);
  Send pa = take(g2_net, A, "fence-write");
  CHECK(argv_of(pa.request)[5] == "1");  // the very fence G1 committed
  g2.on_reply(pa.id, backends[A].execute(pa.request, 6), 6);
  Send pb = take(g2_net, B, "fence-write"), pc = take(g2_net, C, "fence-write");
  g2.on_reply(pb.id, backends[B].execute(pb.request, 6), 6);
  h = g2.on_reply(pc.id, backends[C].execute(pc.request, 6), 6);
  CHECK_FALSE(h.done);  // refused by B and C: the attempt fails and will retry
  keep(g2_net, h);
  deliver_all(g2_net, backends, 7);  // its aborts, and G2's late acquire to B
  const auto out = finish(g2, g2.on_timer(7 + *h.timer_ms), backends, {}, 300);
  CHECK(std::get<Granted>(out).fence == 2);  // the retry read 1 and went on from there
}

TEST_CASE("interleaving: a late abort of attempt 1 cannot delete attempt 2's grant",
          "[lock][fence]") {
  LockSettings s;
  s.retry_count = 1;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  std::vector<Send> late;
  AcquireRound round(s, all, req("t"));
  auto fx = round.start(0);
  keep(late, fx);  // attempt 1's acquires are all slow
  fx = round.on_timer(s.backend_timeout_ms);
  REQUIRE_FALSE(fx.done);
  keep(late, fx);  // and so are its aborts
  const int64_t retry_at = s.backend_timeout_ms + *fx.timer_ms;
  const auto out = finish(round, round.on_timer(retry_at), backends, {}, retry_at);
  REQUIRE(std::holds_alternative<Granted>(out));
  const int before = holders(backends, "t", retry_at + 2);
  CHECK(before >= 2);
  // Attempt 1's acquires arrive now (same token: a refresh, the stamp stays 2), then its aborts.
  deliver_all(late, backends, retry_at + 2);
  CHECK(holders(backends, "t", retry_at + 2) == before);
}

TEST_CASE(
    "interleaving: an OWNER re-acquire does not adopt a hold its failed round may still "
    "delete",
    "[lock][fence]") {
  // R1 (owner O) takes A and B, but their replies are lost; R1 gives up and its aborts are
  // slow. R2 (owner O) sees R1's holds on A and B. They carry no recorded fence (R1 was never
  // granted), so they are not adopted: adopting them would hand out a lock that R1's late
  // aborts then delete.
  LockSettings s;
  s.retry_count = 0;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  std::vector<Send> late;
  AcquireRound r1(s, all, req("t1", 1000, "O"));
  auto f = r1.start(0);
  for (const Send& x : f.sends)
    if (x.backend != 2) backends[x.backend].execute(x.request, 1);  // replies lost
  f = r1.on_timer(s.backend_timeout_ms);
  REQUIRE(f.done);
  keep(late, f);

  AcquireRound r2(s, all, req("t2", 1000, "O"));
  const auto out = drive(r2, backends, {}, 60);
  deliver_all(late, backends, 64);
  if (const auto* granted = std::get_if<Granted>(&out))
    CHECK(holders(backends, granted->token, 64) >= 2);  // still held by a quorum
  CHECK(std::holds_alternative<Busy>(out));
}

TEST_CASE("interleaving: a late RELEASE cannot delete the hold an OWNER re-acquire adopted",
          "[lock][fence]") {
  // R1 (owner O) is granted token t. The holder releases: A deletes, the request to B is
  // lost, the one to C is slow, so the release reports NOQUORUM and the holder re-acquires
  // with its OWNER, which adopts t on B and C. Then the slow release reaches C. Before
  // holds had generations it deleted t there, leaving the re-acquired lock on one backend of
  // three while the holder counted on its validity (found by the random schedules, seed 3:956).
  LockSettings s;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  AcquireRound r1(s, all, req("t", 1000, "O"));
  const auto first = drive(r1, backends, {}, 0);
  REQUIRE(std::holds_alternative<Granted>(first));

  ReleaseRound release(s, all, "res", "t");
  std::vector<Send> net;
  auto f = release.start(10);
  keep(net, f);
  Send a = take(net, 0, "release");
  f = release.on_reply(a.id, backends[0].execute(a.request, 11), 11);
  take(net, 1, "release");  // lost
  f = release.on_timer(10 + s.backend_timeout_ms);
  REQUIRE(f.done);
  CHECK(std::holds_alternative<NoQuorum>(*f.done));  // the request to C is still in flight

  AcquireRound again(s, all, req("t-again", 1000, "O"));
  const auto second = drive(again, backends, {}, 100);
  REQUIRE(std::holds_alternative<Granted>(second));
  CHECK(std::get<Granted>(second).token == "t");
  CHECK(std::get<Granted>(second).reacquired);
  CHECK(holders(backends, "t", 101) == 2);
  deliver_all(net, backends, 102);  // the slow release reaches C now
  CHECK(holders(backends, "t", 102) == 2);

  // A release sent after the re-acquire still releases it (asking again by generation).
  ReleaseRound later(s, all, "res", "t");
  CHECK(std::holds_alternative<Released>(drive(later, backends, {}, 103)));
  CHECK(holders(backends, "t", 104) == 0);
}

TEST_CASE("interleaving: a fence is recorded only on holds of the granted attempt",
          "[lock][fence]") {
  // Attempt 1 of R takes A (its abort to A is slow); attempt 2 never reaches A and is granted
  // on {B,C}. The record must not land on A's attempt-1 hold: R's late abort deletes that one,
  // and an OWNER re-acquire counting it would lose it from under its grant.
  LockSettings s;
  s.retry_count = 1;
  std::vector<FakeBackend> backends(3);
  const Backends all{3, {0, 1, 2}};
  const BackendId A = 0, C = 2;
  std::vector<Send> late, net;
  AcquireRound r(s, all, req("t", 1000, "O"));
  auto f = r.start(0);
  keep(net, f);
  Send a1 = take(net, A, "acquire");
  f = r.on_reply(a1.id, backends[A].execute(a1.request, 1), 1);
  f = r.on_timer(s.backend_timeout_ms);  // B and C: no answer
  keep(late, f);                         // attempt 1's aborts: slow
  net.clear();
  const int64_t t2 = s.backend_timeout_ms + *f.timer_ms;
  f = r.on_timer(t2);
  keep(net, f);
  take(net, A, "acquire");  // attempt 2's request to A is lost
  f = r.on_timeout(0, t2);
  for (BackendId b : {1, 2}) {
    Send x = take(net, b, "acquire");
    f = r.on_reply(x.id, backends[b].execute(x.request, t2 + 1), t2 + 1);
  }
  keep(net, f);
  for (BackendId b : {1, 2}) {
    Send x = take(net, b, "fence-write");
    f = r.on_reply(x.id, backends[b].execute(x.request, t2 + 2), t2 + 2);
  }
  REQUIRE(f.done);
  REQUIRE(std::holds_alternative<Granted>(*f.done));
  keep(net, f);
  deliver_all(net, backends, t2 + 3);  // records: B and C yes, A (attempt 1's hold) no

  // The OWNER re-acquires while C is unreachable: only A and B can vote.
  AcquireRound again(s, all, req("t-again", 1000, "O"));
  const auto out = drive(again, backends, {C}, t2 + 10);
  deliver_all(late, backends, t2 + 20);  // attempt 1's slow abort reaches A now
  if (const auto* granted = std::get_if<Granted>(&out))
    CHECK(holders(backends, granted->token, t2 + 20) >= 2);
  CHECK_FALSE(std::holds_alternative<Granted>(out));  // B alone is no quorum
}
