// The bank test (Jepsen's classic) for cross-backend transactions: 100 accounts over three
// backends, 10 clients over two Lockstep processes moving money with WATCH/MULTI/EXEC and reading
// every balance in one transaction, while a failpoint kills one Lockstep at each step of the
// commit protocol in turn and a backend (AOF, fsync always) is killed and restarted.
//
// Checked after recovery: the total never changes (also inside every read transaction), no
// transfer is half applied, every transfer reported committed is in both accounts' logs, every
// one reported aborted is in neither, and no internal key is left behind.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

constexpr int kAccounts = 100;
constexpr long long kInitial = 100;

std::string account(int i) {
  return "{acct" + std::to_string(i) + "}";
}
std::string log_of(int i) {
  return account(i) + ":log";
}

enum class Result { kCommitted, kAborted, kUnknown };

struct Transfer {
  std::string id;
  int from, to;
  Result result;
};

std::string txn_yaml(const std::string& failpoints) {
  return "transactions:\n"
         "  lease_ms: 1000\n"
         "  resolver_interval_ms: 100\n"
         "  conflict_timeout_ms: 3000\n"
         "  failpoints: \"" +
         failpoints + "\"\n";
}

// A client that follows a Lockstep whose port changes when it is restarted.
class Teller {
 public:
  Teller(std::atomic<uint16_t>& port, int id) : port_(port), rng_(1000 + id), id_(id) {}

  // Only the first command of a sequence may open a new connection: after a crash, the rest
  // of a MULTI must not run outside the transaction on a fresh connection.
  Reply call(const std::vector<std::string>& argv, bool first = false) {
    if (first && (!client_ || !client_->connected() || client_port_ != port_.load())) reconnect();
    if (!client_) return Reply::io_error("no connection");
    Reply r = client_->command(argv);
    if (r.is_io_error()) client_.reset();
    return r;
  }

  // One transfer: WATCH, read, MULTI, move, log, EXEC.
  std::optional<Transfer> transfer(int n) {
    std::uniform_int_distribution<int> pick(0, kAccounts - 1);
    const int from = pick(rng_);
    int to = pick(rng_);
    if (to == from) to = (to + 1) % kAccounts;
    const std::string id = "t" + std::to_string(id_) + "-" + std::to_string(n);
    Reply w = call({"WATCH", account(from), account(to)}, true);
    if (!w.is_ok()) return std::nullopt;
    Reply bal = call({"GET", account(from)});
    if (!bal.is_string()) {
      call({"UNWATCH"});
      return std::nullopt;
    }
    const long long have = std::stoll(bal.str);
    if (have <= 0) {
      call({"UNWATCH"});
      return std::nullopt;
    }
    const long long amount =
        1 + static_cast<long long>(rng_() % static_cast<uint64_t>(std::min(have, 20LL)));
    if (!call({"MULTI"}).is_ok()) return Transfer{id, from, to, Result::kUnknown};
    call({"DECRBY", account(from), std::to_string(amount)});
    call({"INCRBY", account(to), std::to_string(amount)});
    call({"RPUSH", log_of(from), id});
    call({"RPUSH", log_of(to), id});
    Reply r = call({"EXEC"});
    Result res;
    if (r.is_array())
      res = Result::kCommitted;
    else if (r.is_io_error() || r.error_starts_with("ERR transaction outcome unknown"))
      res = Result::kUnknown;
    else
      res = Result::kAborted;  // nil (a watched key changed), EXECABORT, TXNCONFLICT, ...
    return Transfer{id, from, to, res};
  }

  // Every balance in one transaction: the sum must be the total, always.
  std::optional<long long> audit() {
    if (!call({"MULTI"}, true).is_ok()) return std::nullopt;
    std::vector<std::string> mget{"MGET"};
    for (int i = 0; i < kAccounts; ++i) mget.push_back(account(i));
    call(mget);
    Reply r = call({"EXEC"});
    if (!r.is_array() || r.elements.size() != 1 || !r.elements[0].is_array()) return std::nullopt;
    long long sum = 0;
    for (const auto& e : r.elements[0].elements) sum += e.is_string() ? std::stoll(e.str) : 0;
    return sum;
  }

 private:
  void reconnect() {
    client_.reset();
    const uint16_t p = port_.load();
    if (p == 0) return;
    auto c = std::make_unique<Client>(p, 5s);
    if (!c->connected()) return;
    client_ = std::move(c);
    client_port_ = p;
  }

  std::atomic<uint16_t>& port_;
  std::mt19937_64 rng_;
  int id_;  // transfer ids are unique per teller
  std::unique_ptr<Client> client_;
  uint16_t client_port_ = 0;
};

}  // namespace

TEST_CASE("bank: transfers stay atomic while Lockstep crashes at every commit step",
          "[integration][txn][bank]") {
  RedisOptions ro;
  ro.appendonly = true;
  ro.extra_args = {"--appendfsync", "always"};
  std::vector<std::unique_ptr<RedisServer>> backends;
  for (int i = 0; i < 3; ++i) backends.push_back(std::make_unique<RedisServer>(ro));
  std::vector<std::string> addrs;
  for (auto& b : backends) addrs.push_back(b->address());

  {
    Client setup = backends[0]->client();
    for (int i = 0; i < kAccounts; ++i) {
      const size_t owner = owner_of(account(i), 3);
      Client c = backends[owner]->client();
      REQUIRE(c.command({"SET", account(i), std::to_string(kInitial)}).is_ok());
    }
  }

  LockstepOptions stable_opts;
  stable_opts.extra_yaml = txn_yaml("");
  LockstepProcess stable(addrs, stable_opts);
  std::atomic<uint16_t> stable_port{stable.port()};
  std::atomic<uint16_t> crashy_port{0};
  std::unique_ptr<LockstepProcess> crashy;

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Transfer> transfers;
  std::atomic<long long> audits{0}, bad_audits{0};
  std::vector<std::thread> threads;
  struct Joiner {  // a failed REQUIRE must not leave threads running
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop = true;
      for (auto& th : threads)
        if (th.joinable()) th.join();
    }
  } joiner{stop, threads};
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      Teller teller(t % 2 == 0 ? stable_port : crashy_port, t);
      for (int n = 0; !stop.load(); ++n) {
        if (n % 10 == 9) {
          if (auto sum = teller.audit()) {
            ++audits;
            if (*sum != kAccounts * kInitial) {
              ++bad_audits;
              WARN("audit saw a total of " << *sum);
            }
          }
          continue;
        }
        auto tr = teller.transfer(n);
        if (!tr) {
          if (crashy_port.load() == 0 && t % 2 == 1) std::this_thread::sleep_for(5ms);
          continue;
        }
        std::lock_guard lock(mu);
        transfers.push_back(*tr);
      }
    });
  }

  // One crash at each protocol step in turn (a few transactions in, so some are in flight).
  const char* steps[] = {"txn.before_prepare", "txn.after_prepare_primary", "txn.after_prepare",
                         "txn.after_commit", "txn.after_apply"};
  int crashes = 0;
  for (const char* step : steps) {
    LockstepOptions o;
    o.extra_yaml = txn_yaml(std::string(step) + "=crash@5");
    crashy = std::make_unique<LockstepProcess>(addrs, o);
    crashy_port = crashy->port();
    const auto code = crashy->wait_exit(30s);
    INFO(step);
    REQUIRE(code.has_value());  // it crashed at the failpoint
    CHECK(*code == 128 + 9);
    ++crashes;
    crashy_port = 0;
  }
  // A backend killed and restarted (AOF with fsync always: nothing acknowledged is lost).
  crashy = std::make_unique<LockstepProcess>(addrs, stable_opts);
  crashy_port = crashy->port();
  std::this_thread::sleep_for(300ms);  // traffic flowing (not a correctness wait)
  backends[1]->kill9();
  backends[1]->restart();
  REQUIRE(wait_until([&] { return backends[1]->client()("PING").str == "PONG"; }, 10s));
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& th : threads) th.join();
  threads.clear();

  // Recovery: the resolvers finish every transaction a dead coordinator left.
  auto leftovers = [&] {
    size_t n = 0;
    for (auto& b : backends) {
      Client c = b->client();
      Reply keys = c.command({"KEYS", "__lockstep:tx:*"});
      n += keys.elements.size();
    }
    return n;
  };
  CHECK(wait_until([&] { return leftovers() == 0; }, 20s, 50ms));

  std::map<std::string, std::vector<std::string>> logs;
  long long total = 0;
  std::map<std::string, int> seen;  // transfer id -> number of log entries
  for (int i = 0; i < kAccounts; ++i) {
    Client c = backends[owner_of(account(i), 3)]->client();
    total += std::stoll(c.command({"GET", account(i)}).str);
    for (const auto& id : c.command({"LRANGE", log_of(i), "0", "-1"}).as_strings()) ++seen[id];
  }
  size_t committed = 0, aborted = 0, unknown = 0, unknown_applied = 0, half = 0;
  std::set<std::string> reported;
  for (const auto& tr : transfers) {
    reported.insert(tr.id);
    const int n = seen.count(tr.id) ? seen[tr.id] : 0;
    if (n != 0 && n != 2) ++half;
    switch (tr.result) {
      case Result::kCommitted:
        ++committed;
        CHECK(n == 2);
        break;
      case Result::kAborted:
        ++aborted;
        CHECK(n == 0);
        break;
      case Result::kUnknown:
        ++unknown;
        unknown_applied += n == 2 ? 1 : 0;
        break;
    }
  }
  for (const auto& [id, n] : seen) {
    if (!reported.contains(id)) CHECK(n == 2);  // a transfer whose client died mid-way
  }
  WARN("bank: transfers committed " << committed << ", aborted " << aborted << ", unknown "
                                    << unknown << " (applied " << unknown_applied << "), audits "
                                    << audits << ", Lockstep crashes " << crashes
                                    << ", backend restarts 1");
  CHECK(half == 0);
  CHECK(total == kAccounts * kInitial);
  CHECK(bad_audits == 0);
  CHECK(committed > 10);
  CHECK(audits > 0);
}
