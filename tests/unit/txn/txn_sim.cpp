#include "txn_sim.h"

#include <algorithm>
#include <deque>
#include <set>

#include "lockstep/resp/resp.h"
#include "lockstep/txn/scripts.h"

namespace txnmodel {

lockstep::txn::Participant part(int backend, std::vector<std::string> keys,
                                std::vector<std::string> cmds, bool pinned) {
  lockstep::txn::Participant p;
  p.backend = backend;
  p.name = "b" + std::to_string(backend);
  p.pinned = pinned;
  p.keys = std::move(keys);
  p.commands = std::move(cmds);
  return p;
}

using lockstep::txn::Coordinator;
using lockstep::txn::CoordinatorSettings;
using lockstep::txn::Outcome;
using lockstep::txn::Resolution;
using lockstep::txn::ScannedIntent;
using lockstep::txn::Send;
using lockstep::txn::Verdict;

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kPending:
      return "pending";
    case Outcome::kCommitted:
      return "committed";
    case Outcome::kWatchFailed:
      return "watch-failed";
    case Outcome::kConflict:
      return "conflict";
    case Outcome::kKeyExists:
      return "key-exists";
    case Outcome::kExecAbort:
      return "exec-abort";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

// ---- Chooser ----

Chooser Chooser::exhaustive(uint64_t seed) {
  Chooser c;
  c.mode_ = Mode::kExhaustive;
  c.seed_ = seed;
  c.rng_.seed(seed);
  return c;
}

Chooser Chooser::random(uint64_t seed) {
  Chooser c;
  c.mode_ = Mode::kRandom;
  c.seed_ = seed;
  c.rng_.seed(seed);
  return c;
}

Chooser Chooser::replay(std::vector<size_t> trace, bool of_exhaustive) {
  Chooser c;
  c.mode_ = Mode::kReplay;
  c.replay_ = std::move(trace);
  c.replay_of_exhaustive_ = of_exhaustive;
  return c;
}

bool Chooser::reduces(bool explore) const {
  return explore &&
         (mode_ == Mode::kExhaustive || (mode_ == Mode::kReplay && replay_of_exhaustive_));
}

size_t Chooser::choose(size_t n, bool explore) {
  if (n <= 1) return 0;
  size_t v = 0;
  if (mode_ == Mode::kReplay) {
    v = replay_pos_ < replay_.size() ? replay_[replay_pos_++] : 0;
    if (v >= n) v = 0;
  } else if (mode_ == Mode::kExhaustive && explore) {
    if (pos_ < path_.size()) {
      v = path_[pos_].first;
      if (path_[pos_].second != n) {
        // The run diverged from its replayed prefix: the model is not deterministic.
        path_.resize(pos_);
        path_.emplace_back(0, n);
        v = 0;
      }
    } else {
      path_.emplace_back(0, n);
    }
    ++pos_;
  } else {
    v = static_cast<size_t>(rng_() % n);
  }
  trace_.push_back(v);
  arities_.push_back(n);
  return v;
}

bool Chooser::next() {
  trace_.clear();
  arities_.clear();
  ++runs_;
  pos_ = 0;
  replay_pos_ = 0;
  if (mode_ == Mode::kReplay) return false;
  if (mode_ == Mode::kRandom) return true;
  rng_.seed(seed_ + runs_);
  while (!path_.empty()) {
    auto& b = path_.back();
    if (b.first + 1 < b.second) {
      ++b.first;
      return true;
    }
    path_.pop_back();
  }
  return false;
}

// ---- the world ----

namespace {

constexpr uint64_t kScanBit = 1ULL << 62;
constexpr std::string_view kLinkLost = "-ERR backend connection lost\r\n";

std::string brief(std::string_view bytes) {
  // One line for the log: arguments of a request, or a reply, with long scripts elided.
  std::vector<std::string> argv;
  std::string out;
  if (!bytes.empty() && bytes[0] == '*' && parse_request(bytes, argv)) {
    for (size_t i = 0; i < argv.size(); ++i) {
      std::string a = argv[i];
      if (i == 1 && argv[0] == "EVAL") {
        using namespace lockstep::txn;
        a = a == kPrepareLua         ? "<prepare>"
            : a == kCheckPreparedLua ? "<check-prepared>"
            : a == kCommitLua        ? "<commit>"
            : a == kFinishLua        ? "<finish>"
            : a == kCleanupLua       ? "<cleanup>"
            : a == kRollbackLua      ? "<rollback>"
            : a == kDecideLua        ? "<decide>"
            : a == kScanLua          ? "<scan>"
            : a == kScanAbandonedLua ? "<scan-abandoned>"
            : a == kCheckUnlockedLua ? "<check-unlocked>"
                                     : "<script?>";
      }
      if (a.size() > 40) a = a.substr(0, 37) + "...";
      for (auto& ch : a)
        if (ch == '\r' || ch == '\n') ch = ' ';
      out += (i ? " " : "") + a;
    }
    return out;
  }
  out.assign(bytes.substr(0, 120));
  for (auto& ch : out)
    if (ch == '\r' || ch == '\n') ch = ' ';
  return out;
}

// The first argument of a RESP request, without parsing the rest.
std::string_view command_name(std::string_view r) {
  const size_t a = r.find("\r\n$");
  if (a == std::string_view::npos) return {};
  const size_t b = r.find("\r\n", a + 2);
  if (b == std::string_view::npos) return {};
  int64_t len = 0;
  if (!lockstep::resp::parse_int64(r.substr(a + 3, b - a - 3), len) || len < 0) return {};
  return r.substr(b + 2, static_cast<size_t>(len));
}

class World {
 public:
  World(const Scenario& sc, Chooser& ch, bool verbose) : sc_(sc), ch_(ch), verbose_(verbose) {
    for (size_t b = 0; b < sc.backends; ++b)
      backends_.push_back(std::make_unique<ModelBackend>("b" + std::to_string(b), &clock_));
    for (size_t b = 0; b < sc.init.size() && b < sc.backends; ++b) {
      const int c = backends_[b]->connect();
      for (const auto& r : sc.init[b]) backends_[b]->execute(c, r);
      backends_[b]->disconnect(c);
    }
    res_.resize(static_cast<size_t>(sc.opt.resolvers));
    for (size_t i = 0; i < res_.size(); ++i)
      for (size_t b = 0; b < sc.backends; ++b)
        res_[i].links.push_back(new_link(b, kResolver, static_cast<int>(i), res_key(i, kScanRes)));
    crashes_left_ = sc.opt.crashes;
    breaks_left_ = sc.opt.link_breaks;
    ext_done_.assign(sc.external.size(), false);
    r_.external_step.assign(sc.external.size(), -1);
  }

  RunResult run() {
    start_coordinators();
    for (;;) {
      if (r_.steps > 20000) {
        r_.problems.push_back("the run did not terminate in 20000 steps");
        break;
      }
      collect();
      if (actions_.empty()) {
        sleep_.clear();
        if (all_finished() && has_internal_keys() && rounds_ < sc_.opt.max_rounds) {
          if (start_round("resolver round (all settled)")) continue;
          r_.problems.push_back("a resolution never finished");
        }
        break;
      }
      // Sleep sets (partial-order reduction of the depth-first enumeration): an action
      // explored before a sibling it is independent of need not be explored after it.
      awake_.clear();
      for (const Action& a : actions_)
        if (!asleep(a)) awake_.push_back(a);
      if (awake_.empty()) {
        r_.pruned = true;  // every continuation is equivalent to one explored already
        break;
      }
      const bool explore = any_coordinator_running() ? sc_.opt.explore_coord : sc_.opt.explore_post;
      const size_t pick = ch_.choose(awake_.size(), explore);
      const Action a = awake_[pick];
      if (ch_.reduces(explore)) {
        std::vector<Action> next;
        for (const Action& s : sleep_)
          if (independent(s, a)) next.push_back(s);
        for (size_t j = 0; j < pick; ++j)
          if (independent(awake_[j], a)) next.push_back(awake_[j]);
        sleep_ = std::move(next);
      } else {
        sleep_.clear();
      }
      perform(a);
      ++r_.steps;
    }
    finish();
    return std::move(r_);
  }

 private:
  enum Owner : uint8_t { kCoord, kOrphan, kResolver, kDiscard };
  struct Item {
    std::string request;
    uint64_t cookie = 0;
  };
  struct Link {
    size_t backend = 0;
    int conn = -1;
    std::deque<Item> q;
    Owner kind = kOrphan;
    int owner = -1;
    bool broken = false;
    int watch_of = -1;  // the pinned connection of this coordinator (WATCH check point)
    // Deliveries on links with different keys and different backends are independent: their
    // replies go to different state machines and their requests to different backends.
    int64_t key = 0;
    std::string label;
  };
  struct CoordState {
    std::unique_ptr<Coordinator> c;
    std::vector<int> links;
    bool running = true;
    bool crashed = false;
  };
  struct ResolverProc {
    std::vector<int> links;  // the scans' connection to each backend
    // Each resolution has its own connection to each backend (a superset of the server's
    // interleavings, where resolutions share one connection per backend but send each burst
    // at once).
    std::map<std::pair<size_t, size_t>, int> rlinks;
    std::vector<std::unique_ptr<Resolution>> res;
    std::set<std::string> seen;
    size_t scans_pending = 0;
    bool active = false;
  };
  enum class Act : uint8_t {
    kDeliver,
    kCrash,
    kBreak,
    kExternal,
    kStall,
    kEarlyRound,
    kLoseCleanup
  };
  struct Action {
    Act kind;
    int a = 0;
    int b = 0;
  };

  static constexpr size_t kScanRes = 0xfffff;
  static int64_t res_key(size_t rp, size_t idx) {
    return (int64_t{1} << 40) + static_cast<int64_t>(rp << 20) + static_cast<int64_t>(idx);
  }
  int64_t unique_key() const { return (int64_t{1} << 50) + static_cast<int64_t>(links_.size()); }

  int new_link(size_t backend, Owner kind, int owner, int64_t key) {
    Link l;
    l.key = key;
    l.backend = backend;
    l.conn = backends_[backend]->connect();
    l.kind = kind;
    l.owner = owner;
    links_.push_back(std::move(l));
    return static_cast<int>(links_.size()) - 1;
  }

  void log(std::string s) {
    if (verbose_) r_.log.push_back(std::to_string(r_.steps) + ": " + std::move(s));
  }

  void start_coordinators() {
    coords_.resize(sc_.coords.size());
    r_.outcomes.assign(sc_.coords.size(), Outcome::kPending);
    r_.crashed.assign(sc_.coords.size(), false);
    r_.replies.resize(sc_.coords.size());
    r_.watch_check_step.assign(sc_.coords.size(), -1);
    for (size_t i = 0; i < sc_.coords.size(); ++i) {
      const CoordSpec& spec = sc_.coords[i];
      CoordState& cs = coords_[i];
      for (size_t p = 0; p < spec.participants.size(); ++p) {
        const int l = new_link(static_cast<size_t>(spec.participants[p].backend), kCoord,
                               static_cast<int>(i), 1000 + static_cast<int64_t>(i));
        links_[static_cast<size_t>(l)].label = "T" + std::to_string(i) + ".p" + std::to_string(p) +
                                               "@b" + std::to_string(spec.participants[p].backend);
        if (spec.participants[p].pinned)
          links_[static_cast<size_t>(l)].watch_of = static_cast<int>(i);
        cs.links.push_back(l);
      }
      for (const auto& [p, req] : spec.pre) {
        Link& l = links_[static_cast<size_t>(cs.links[p])];
        const std::string rep = backends_[l.backend]->execute(l.conn, req);
        log(l.label + " (client, before MULTI) " + brief(req) + " -> " + brief(rep));
      }
      CoordinatorSettings s;
      s.txid = "tx" + std::to_string(i);
      s.coord = "proxy" + std::to_string(i);
      s.poison = std::string(lockstep::txn::kPoisonPrefix) + s.txid;
      s.lease_ms = spec.lease_ms;
      cs.c = std::make_unique<Coordinator>(s, spec.participants);
      std::vector<Send> out;
      cs.c->start(out);
      route_coord(i, out);
      settle_coord(i);
    }
  }

  void route_coord(size_t i, std::vector<Send>& out) {
    for (auto& s : out)
      links_[static_cast<size_t>(coords_[i].links[s.participant])].q.push_back(
          Item{std::move(s.request), s.participant});
    out.clear();
  }

  void settle_coord(size_t i) {
    CoordState& cs = coords_[i];
    if (!cs.running || !cs.c->done()) return;
    cs.running = false;
    r_.outcomes[i] = cs.c->outcome();
    log("T" + std::to_string(i) + " done: " + outcome_name(cs.c->outcome()) +
        (cs.c->error().empty() ? "" : " (" + cs.c->error() + ")"));
    auto& reps = r_.replies[i];
    reps.resize(cs.c->participants().size());
    if (cs.c->outcome() == Outcome::kCommitted)
      for (uint32_t p = 0; p < reps.size(); ++p) reps[p] = cs.c->replies(p);
    for (int l : cs.links)
      if (!links_[static_cast<size_t>(l)].q.empty() && !links_[static_cast<size_t>(l)].broken)
        r_.problems.push_back("T" + std::to_string(i) +
                              " is done with requests still unanswered on " +
                              links_[static_cast<size_t>(l)].label);
    std::vector<Send> cleanup;
    cs.c->cleanup_requests(cleanup);
    for (auto& s : cleanup) {
      log("T" + std::to_string(i) + " sends its clean-up");
      const auto b = static_cast<size_t>(cs.c->participants()[s.participant].backend);
      const int l = new_link(b, kDiscard, -1, unique_key());
      links_[static_cast<size_t>(l)].label =
          "T" + std::to_string(i) + ".cleanup@b" + std::to_string(b);
      links_[static_cast<size_t>(l)].q.push_back(Item{std::move(s.request), 0});
    }
  }

  bool asleep(const Action& a) const {
    for (const Action& s : sleep_)
      if (s.kind == a.kind && s.a == a.a) return true;
    return false;
  }
  // What a delivery or external write touches: the backend (-1: no shared state, e.g. MULTI
  // and queued commands, which only change their own connection, or an error from a broken
  // link), whether it only reads there (WATCH and reads commute with each other), and the
  // state machine its reply feeds.
  struct Footprint {
    int backend;
    bool read_only;
    int64_t key;
  };
  Footprint footprint(const Action& a) const {
    if (a.kind == Act::kExternal)
      return {sc_.external[static_cast<size_t>(a.a)].backend, false, (int64_t{1} << 55) + a.a};
    const Link& l = links_[static_cast<size_t>(a.a)];
    // A reply that is not the last one its owner waits for on this link (WATCH, guard, MULTI,
    // QUEUED of a burst) only moves that participant's or burst's own bookkeeping: the
    // Coordinator changes phase only when every participant has replied, and a Resolution
    // ignores the replies of a burst but its EXEC. Such a delivery feeds no shared state.
    const int64_t key =
        (l.kind == kCoord || l.kind == kResolver) && l.q.size() >= 2 && l.owner >= 0 &&
                !(l.kind == kResolver && links_[static_cast<size_t>(a.a)].key ==
                                             res_key(static_cast<size_t>(l.owner), kScanRes))
            ? (int64_t{1} << 45) + a.a
            : l.key;
    if (l.broken) return {-1, true, key};
    const std::string_view c = command_name(l.q.front().request);
    const bool control = c == "EXEC" || c == "DISCARD" || c == "WATCH" || c == "UNWATCH";
    if (!control && (c == "MULTI" || backends_[l.backend]->in_multi(l.conn)))
      return {-1, true, key};
    const bool read = c == "WATCH" || c == "GET" || c == "HGET" || c == "HMGET" || c == "EXISTS" ||
                      c == "LRANGE" || c == "TIME" || c == "PING";
    return {static_cast<int>(l.backend), read, key};
  }
  bool independent(const Action& x, const Action& y) const {
    auto movable = [](const Action& a) {
      return a.kind == Act::kDeliver || a.kind == Act::kExternal;
    };
    if (!movable(x) || !movable(y)) return false;
    const Footprint fx = footprint(x);
    const Footprint fy = footprint(y);
    if (fx.key == fy.key) return false;
    return fx.backend < 0 || fy.backend < 0 || fx.backend != fy.backend ||
           (fx.read_only && fy.read_only);
  }

  bool any_coordinator_running() const {
    return std::any_of(coords_.begin(), coords_.end(),
                       [](const CoordState& c) { return c.running; });
  }
  bool all_finished() const { return !any_coordinator_running(); }

  bool has_internal_keys() const {
    return std::any_of(backends_.begin(), backends_.end(),
                       [](const auto& b) { return !b->internal_keys().empty(); });
  }

  bool orphans_pending() const {
    return std::any_of(links_.begin(), links_.end(), [](const Link& l) {
      return (l.kind == kOrphan || l.kind == kDiscard) && !l.q.empty();
    });
  }

  void collect() {
    actions_.clear();
    for (size_t l = 0; l < links_.size(); ++l)
      if (!links_[l].q.empty()) actions_.push_back({Act::kDeliver, static_cast<int>(l), 0});
    for (size_t e = 0; e < ext_done_.size(); ++e)
      if (!ext_done_[e]) actions_.push_back({Act::kExternal, static_cast<int>(e), 0});
    for (size_t i = 0; i < coords_.size(); ++i) {
      if (!coords_[i].running) continue;
      if (crashes_left_ > 0) actions_.push_back({Act::kCrash, static_cast<int>(i), 0});
      if (breaks_left_ > 0)
        for (size_t p = 0; p < coords_[i].links.size(); ++p)
          if (!links_[static_cast<size_t>(coords_[i].links[p])].broken)
            actions_.push_back({Act::kBreak, static_cast<int>(i), static_cast<int>(p)});
    }
    if (sc_.opt.lose_cleanup)
      for (size_t l = 0; l < links_.size(); ++l)
        if (links_[l].kind == kDiscard && !links_[l].q.empty())
          actions_.push_back({Act::kLoseCleanup, static_cast<int>(l), 0});
    if (sc_.opt.stall && !stall_used_ && any_coordinator_running() && resolvers_idle())
      actions_.push_back({Act::kStall, 0, 0});
    if (sc_.opt.early_round && !early_used_ && all_finished() && orphans_pending() &&
        resolvers_idle() && rounds_ < sc_.opt.max_rounds)
      actions_.push_back({Act::kEarlyRound, 0, 0});
  }

  bool resolvers_idle() {
    for (auto& rp : res_) {
      if (!rp.active) continue;
      bool busy = rp.scans_pending > 0;
      for (const auto& r : rp.res) busy = busy || !r->done();
      for (int l : rp.links) busy = busy || !links_[static_cast<size_t>(l)].q.empty();
      for (const auto& [k, l] : rp.rlinks) busy = busy || !links_[static_cast<size_t>(l)].q.empty();
      if (busy) return false;
      rp.active = false;
    }
    return true;
  }

  bool start_round(const std::string& why) {
    if (!resolvers_idle()) return false;
    ++rounds_;
    r_.rounds = rounds_;
    uint64_t lease = 0;
    for (const auto& c : sc_.coords) lease = std::max(lease, c.lease_ms);
    clock_ += static_cast<int64_t>(lease) + 1;
    log(why + ": clock -> " + std::to_string(clock_));
    for (auto& rp : res_) {
      rp.active = true;
      rp.seen.clear();
      rp.scans_pending = backends_.size();
      const std::string req = lockstep::txn::scan_request(100);
      for (size_t b = 0; b < backends_.size(); ++b)
        links_[static_cast<size_t>(rp.links[b])].q.push_back(Item{req, kScanBit | b});
    }
    return true;
  }

  void perform(const Action& a) {
    switch (a.kind) {
      case Act::kDeliver:
        deliver(static_cast<size_t>(a.a));
        break;
      case Act::kExternal: {
        const ExternalWrite& e = sc_.external[static_cast<size_t>(a.a)];
        ext_done_[static_cast<size_t>(a.a)] = true;
        auto& be = *backends_[static_cast<size_t>(e.backend)];
        const int c = be.connect();
        const std::string rep = be.execute(c, e.request);
        be.disconnect(c);
        r_.external_step[static_cast<size_t>(a.a)] = static_cast<int64_t>(r_.steps);
        log("external@b" + std::to_string(e.backend) + " " + brief(e.request) + " -> " +
            brief(rep));
        break;
      }
      case Act::kCrash:
        crash(static_cast<size_t>(a.a));
        break;
      case Act::kBreak:
        link_break(static_cast<size_t>(a.a), static_cast<size_t>(a.b));
        break;
      case Act::kStall:
        stall_used_ = true;
        start_round("leases expire while coordinators run; resolver round");
        break;
      case Act::kEarlyRound:
        early_used_ = true;
        start_round("resolver round while orphaned requests remain");
        break;
      case Act::kLoseCleanup:
        log(links_[static_cast<size_t>(a.a)].label + " is lost");
        links_[static_cast<size_t>(a.a)].q.clear();
        backends_[links_[static_cast<size_t>(a.a)].backend]->disconnect(
            links_[static_cast<size_t>(a.a)].conn);
        break;
    }
  }

  void crash(size_t i) {
    --crashes_left_;
    CoordState& cs = coords_[i];
    cs.running = false;
    cs.crashed = true;
    r_.crashed[i] = true;
    std::string what = "T" + std::to_string(i) + " CRASHES;";
    for (int li : cs.links) {
      Link& l = links_[static_cast<size_t>(li)];
      if (l.broken) continue;
      const size_t n = l.q.size();
      const size_t k = ch_.choose(n + 1, true);
      l.q.resize(k);
      l.kind = kOrphan;
      l.key = (int64_t{1} << 50) + li;
      what += " " + l.label + " keeps " + std::to_string(k) + "/" + std::to_string(n);
      if (l.q.empty()) backends_[l.backend]->disconnect(l.conn);
    }
    log(what);
  }

  void link_break(size_t i, size_t p) {
    --breaks_left_;
    const int li = coords_[i].links[p];
    const size_t n = links_[static_cast<size_t>(li)].q.size();
    const size_t k = ch_.choose(n + 1, true);
    // The first k requests reached the backend and still execute there; their replies and
    // those of the others are lost, the coordinator gets errors.
    const int orphan = new_link(links_[static_cast<size_t>(li)].backend, kOrphan, -1, unique_key());
    Link& o = links_[static_cast<size_t>(orphan)];
    Link& l = links_[static_cast<size_t>(li)];
    backends_[o.backend]->disconnect(o.conn);
    o.conn = l.conn;
    o.watch_of = l.watch_of;
    o.label = l.label + "(orphaned)";
    for (size_t j = 0; j < k; ++j) o.q.push_back(l.q[j]);
    if (o.q.empty()) backends_[o.backend]->disconnect(o.conn);
    l.broken = true;
    l.watch_of = -1;
    log(l.label + " BREAKS: " + std::to_string(k) + "/" + std::to_string(n) +
        " sent requests still reach the backend");
  }

  void deliver(size_t li) {
    Link& l = links_[li];
    Item it = std::move(l.q.front());
    l.q.pop_front();
    std::string reply;
    if (l.broken) {
      reply.assign(kLinkLost);
    } else {
      if (l.watch_of >= 0 && r_.watch_check_step[static_cast<size_t>(l.watch_of)] < 0 &&
          it.request == request({"EXEC"}))
        r_.watch_check_step[static_cast<size_t>(l.watch_of)] = static_cast<int64_t>(r_.steps);
      reply = backends_[l.backend]->execute(l.conn, it.request);
    }
    if (verbose_) log(l.label + " " + brief(it.request) + " -> " + brief(reply));
    const Owner kind = l.kind;
    const int owner = l.owner;
    if ((kind == kOrphan || kind == kDiscard) && l.q.empty() && !l.broken)
      backends_[l.backend]->disconnect(l.conn);
    switch (kind) {
      case kCoord: {
        CoordState& cs = coords_[static_cast<size_t>(owner)];
        if (!cs.running) {
          log("  (T" + std::to_string(owner) + " is done: reply ignored)");
          return;
        }
        std::vector<Send> out;
        cs.c->on_reply(static_cast<uint32_t>(it.cookie), reply, out);
        route_coord(static_cast<size_t>(owner), out);
        settle_coord(static_cast<size_t>(owner));
        return;
      }
      case kResolver:
        resolver_reply(static_cast<size_t>(owner), it.cookie, reply);
        return;
      case kOrphan:
      case kDiscard:
        return;
    }
  }

  void route_res(size_t rp_i, size_t idx, std::vector<Resolution::Request>& out) {
    ResolverProc& rp = res_[rp_i];
    for (auto& q : out) {
      size_t b = backends_.size();
      for (size_t j = 0; j < backends_.size(); ++j)
        if (backends_[j]->name() == q.backend) b = j;
      if (b == backends_.size()) {
        r_.problems.push_back("a resolution addressed unknown backend '" + q.backend + "'");
        continue;
      }
      auto [it, fresh] = rp.rlinks.try_emplace({idx, b}, -1);
      if (fresh) {
        it->second = new_link(b, kResolver, static_cast<int>(rp_i), res_key(rp_i, idx));
        links_[static_cast<size_t>(it->second)].label =
            "R" + std::to_string(rp_i) + "." + std::to_string(idx) + "@b" + std::to_string(b);
      }
      links_[static_cast<size_t>(it->second)].q.push_back(
          Item{std::move(q.request), (static_cast<uint64_t>(idx) << 24) | q.tag});
    }
    out.clear();
  }

  void resolver_reply(size_t rp_i, uint64_t cookie, std::string_view reply) {
    ResolverProc& rp = res_[rp_i];
    std::vector<Resolution::Request> out;
    if (cookie & kScanBit) {
      const size_t b = cookie & 0xffff;
      --rp.scans_pending;
      std::vector<ScannedIntent> found;
      if (!lockstep::txn::parse_scan(reply, found)) {
        r_.problems.push_back("scan reply of b" + std::to_string(b) +
                              " did not parse: " + brief(reply));
        return;
      }
      for (auto& it : found) {
        if (rp.seen.count(it.txid)) continue;
        rp.seen.insert(it.txid);
        log("R" + std::to_string(rp_i) + " found " + it.txid + " on b" + std::to_string(b) +
            " (state " + it.state + ", role " + it.role + ")");
        rp.res.push_back(std::make_unique<Resolution>(backends_[b]->name(), std::move(it)));
        const size_t idx = rp.res.size() - 1;
        rp.res[idx]->start(out);
        route_res(rp_i, idx, out);
        note_verdict(rp_i, idx);
      }
      return;
    }
    const size_t idx = static_cast<size_t>(cookie >> 24);
    Resolution& res = *rp.res[idx];
    if (res.done()) return;
    res.on_reply(static_cast<uint32_t>(cookie & 0xffffff), reply, out);
    route_res(rp_i, idx, out);
    note_verdict(rp_i, idx);
  }

  void note_verdict(size_t rp_i, size_t idx) {
    const Resolution& res = *res_[rp_i].res[idx];
    if (!res.done()) return;
    r_.verdicts[static_cast<int>(res.verdict())]++;
    log("R" + std::to_string(rp_i) + " " + res.intent().txid + "@" +
        std::string(1, res.intent().role) + ": " + lockstep::txn::verdict_name(res.verdict()) +
        (res.error().empty() ? "" : " (" + res.error() + ")"));
    if (res.verdict() == Verdict::kError)
      r_.problems.push_back("resolution of " + res.intent().txid + " failed: " + res.error());
  }

  void finish() {
    for (size_t b = 0; b < backends_.size(); ++b) {
      r_.dumps.push_back(backends_[b]->dump(false));
      for (const auto& k : backends_[b]->internal_keys())
        r_.internal.push_back(backends_[b]->name() + ":" + k);
    }
  }

  const Scenario& sc_;
  Chooser& ch_;
  bool verbose_;
  int64_t clock_ = 1'000'000;
  std::vector<std::unique_ptr<ModelBackend>> backends_;
  std::vector<Link> links_;
  std::vector<CoordState> coords_;
  std::vector<ResolverProc> res_;
  std::vector<Action> actions_;
  std::vector<Action> awake_;
  std::vector<Action> sleep_;
  std::vector<bool> ext_done_;
  int crashes_left_ = 0;
  int breaks_left_ = 0;
  bool stall_used_ = false;
  bool early_used_ = false;
  int rounds_ = 0;
  RunResult r_;
};

bool is_abort(Outcome o) {
  return o == Outcome::kConflict || o == Outcome::kWatchFailed || o == Outcome::kFailed ||
         o == Outcome::kExecAbort || o == Outcome::kKeyExists;
}

}  // namespace

RunResult run_scenario(const Scenario& sc, Chooser& ch, bool verbose) {
  World w(sc, ch, verbose);
  return w.run();
}

std::vector<Reference> references(const Scenario& sc) {
  std::vector<Reference> out;
  const size_t n = sc.coords.size();
  const size_t ne = sc.external.size();
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    std::vector<int> units;
    for (size_t i = 0; i < n; ++i)
      if (mask & (1u << i)) units.push_back(static_cast<int>(i));
    for (size_t e = 0; e < ne; ++e) units.push_back(-1 - static_cast<int>(e));
    std::sort(units.begin(), units.end());
    do {
      int64_t clock = 1'000'000;
      std::vector<std::unique_ptr<ModelBackend>> bs;
      for (size_t b = 0; b < sc.backends; ++b) {
        bs.push_back(std::make_unique<ModelBackend>("b" + std::to_string(b), &clock));
        const int c = bs[b]->connect();
        if (b < sc.init.size())
          for (const auto& r : sc.init[b]) bs[b]->execute(c, r);
      }
      Reference ref;
      ref.applied.assign(n, false);
      ref.order = units;
      ref.replies.resize(n);
      for (int u : units) {
        if (u < 0) {
          const ExternalWrite& e = sc.external[static_cast<size_t>(-1 - u)];
          bs[static_cast<size_t>(e.backend)]->execute(0, e.request);
          continue;
        }
        ref.applied[static_cast<size_t>(u)] = true;
        const auto& parts = sc.coords[static_cast<size_t>(u)].participants;
        ref.replies[static_cast<size_t>(u)].resize(parts.size());
        for (size_t p = 0; p < parts.size(); ++p)
          for (const auto& cmd : parts[p].commands)
            ref.replies[static_cast<size_t>(u)][p].push_back(
                bs[static_cast<size_t>(parts[p].backend)]->execute(0, cmd));
      }
      for (auto& b : bs) ref.dumps.push_back(b->dump(false));
      out.push_back(std::move(ref));
    } while (std::next_permutation(units.begin(), units.end()));
  }
  return out;
}

std::string check_run(const Scenario& sc, const std::vector<Reference>& refs, const RunResult& r) {
  std::string why;
  for (const auto& p : r.problems) why += "problem: " + p + "\n";
  if (!r.internal.empty()) {
    why += "internal keys left after " + std::to_string(r.rounds) + " resolver round(s):";
    for (const auto& k : r.internal) why += " " + k;
    why += "\n";
  }
  const size_t n = sc.coords.size();
  // WATCH: an external write of a watched key before the pinned connection's first EXEC must
  // fail the transaction; after it, must not.
  for (size_t i = 0; i < n; ++i) {
    // (External writes are meant to touch the keys the pinned client WATCHed.)
    bool watched = false;
    std::vector<std::string> argv;
    for (const auto& pr : sc.coords[i].pre)
      watched = watched || (parse_request(pr.second, argv) && argv[0] == "WATCH");
    if (!watched) continue;
    for (size_t e = 0; e < sc.external.size(); ++e) {
      const int64_t es = r.external_step[e];
      const int64_t ws = r.watch_check_step[i];
      if (es < 0) continue;
      const bool before = ws < 0 || es < ws;
      const Outcome o = r.outcomes[i];
      if (before && !(o == Outcome::kWatchFailed || (r.crashed[i] && o == Outcome::kPending)))
        why += "T" + std::to_string(i) + " is " + outcome_name(o) +
               " though a watched key changed before its EXEC (external write " +
               std::to_string(e) + " at step " + std::to_string(es) + ", EXEC at step " +
               std::to_string(ws) + ")\n";
      if (!before && o == Outcome::kWatchFailed)
        why += "T" + std::to_string(i) +
               " is watch-failed though the watched key changed after its EXEC\n";
    }
  }
  // All-or-nothing, agreement with the outcome, serializability: some serial reference.
  bool matched = false;
  std::string closest;
  for (const auto& ref : refs) {
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      const Outcome o = r.outcomes[i];
      if (o == Outcome::kCommitted && !ref.applied[i]) ok = false;
      if (is_abort(o) && ref.applied[i]) ok = false;
      if (!r.crashed[i] && o == Outcome::kPending) ok = false;
    }
    if (!ok) continue;
    if (ref.dumps != r.dumps) continue;
    for (size_t i = 0; i < n && ok; ++i) {
      if (r.outcomes[i] != Outcome::kCommitted) continue;
      for (size_t p = 0; p < r.replies[i].size() && ok; ++p) {
        if (r.replies[i][p].size() != ref.replies[i][p].size()) {
          ok = false;
          break;
        }
        for (size_t k = 0; k < r.replies[i][p].size(); ++k)
          if (!r.replies[i][p][k].starts_with("-ERR reply lost") &&
              r.replies[i][p][k] != ref.replies[i][p][k])
            ok = false;
      }
    }
    if (ok) {
      matched = true;
      break;
    }
  }
  if (!matched) {
    why += "final state matches no serial order consistent with the outcomes (";
    for (size_t i = 0; i < n; ++i)
      why += std::string(i ? ", " : "") + "T" + std::to_string(i) + " " +
             outcome_name(r.outcomes[i]) + (r.crashed[i] ? " (crashed)" : "");
    why += ")\n  final:";
    for (size_t b = 0; b < r.dumps.size(); ++b)
      why += "\n    b" + std::to_string(b) + ": " + r.dumps[b];
    why += "\n  none applied:";
    if (!refs.empty())
      for (size_t b = 0; b < refs[0].dumps.size(); ++b)
        why += "\n    b" + std::to_string(b) + ": " + refs[0].dumps[b];
    why += "\n";
  }
  return why;
}

Exploration explore(const Scenario& sc, Chooser ch, size_t max_runs) {
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer a schedule costs ~30x more: sample less (enumerations that fit
  // still complete).
  max_runs = std::max<size_t>(max_runs / 8, 500);
#endif
  Exploration ex;
  const std::vector<Reference> refs = references(sc);
  size_t best_steps = SIZE_MAX;
  std::vector<size_t> best_trace;
  std::string best_why;
  for (;;) {
    RunResult r = run_scenario(sc, ch, false);
    if (r.pruned) {
      ++ex.pruned;
      if (!ch.next()) {
        ex.exhausted = true;
        break;
      }
      continue;
    }
    ++ex.runs;
    ex.steps += r.steps;
    std::string key;
    for (size_t i = 0; i < r.outcomes.size(); ++i)
      key += std::string(i ? "," : "") + (r.crashed[i] ? "crashed" : outcome_name(r.outcomes[i]));
    ex.outcomes[key]++;
    std::string why = check_run(sc, refs, r);
    if (!why.empty()) {
      ++ex.failures;
      if (r.steps < best_steps) {
        best_steps = r.steps;
        best_trace = ch.trace();
        best_why = why;
      }
    }
    if (ex.runs >= max_runs) break;
    if (!ch.next()) {
      ex.exhausted = true;
      break;
    }
  }
  if (ex.failures > 0) {
    Chooser rp = Chooser::replay(best_trace, ch.mode_exhaustive());
    RunResult r = run_scenario(sc, rp, true);
    std::string trace;
    for (size_t v : best_trace) trace += std::to_string(v) + " ";
    ex.first_failure =
        best_why + "choices: " + trace + "(seed " + std::to_string(ch.seed()) + ")\nsteps:\n";
    for (const auto& line : r.log) ex.first_failure += "  " + line + "\n";
  }
  return ex;
}

}  // namespace txnmodel
