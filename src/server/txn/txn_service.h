// The I/O side of transactions that is not one client's: per worker, a timer for EXEC retries
// and the failpoints; on workers[0], also the resolver (txn/resolver.h), which scans every
// backend for transactions whose coordinator died and finishes them, over connections of its
// own. Counters shared by every worker live in TxnStats.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockstep/txn/failpoint.h"
#include "lockstep/txn/resolver.h"
#include "server/net/worker.h"

namespace lockstep::server {

struct TxnStats {
  std::atomic<uint64_t> single{0};  // EXECs on one backend (fast path)
  std::atomic<uint64_t> cross{0};   // EXECs over several backends (two-phase commit)
  std::atomic<uint64_t> committed{0};
  std::atomic<uint64_t> watch_failed{0};    // EXEC answered nil
  std::atomic<uint64_t> conflicts{0};       // attempts that met keys held by another transaction
  std::atomic<uint64_t> gave_up{0};         // -TXNCONFLICT after transactions.conflict_timeout_ms
  std::atomic<uint64_t> aborted{0};         // every other EXEC that applied nothing
  std::atomic<uint64_t> unknown{0};         // commit point's reply lost (the resolver decides)
  std::atomic<uint64_t> rolled_forward{0};  // resolver
  std::atomic<uint64_t> rolled_back{0};     // resolver
  std::atomic<uint64_t> resolver_errors{0};
};
TxnStats& txn_stats();

// The process' failpoints (parsed once at start from the config and LOCKSTEP_FAILPOINTS).
txn::Failpoints& failpoints();
std::optional<std::string> init_failpoints(const config::Config& cfg);
// transactions.backend_check at start: false when a backend is unfit and the setting is
// `refuse` (the reasons are logged).
bool check_backend_durability(const config::Config& cfg);
// Carries out a failpoint hit: crash kills the process here; stall and drop are the caller's.
std::optional<txn::FailAction> fail_at(std::string_view point);

class TxnService final : public ReplySink {
 public:
  explicit TxnService(Worker& worker);
  ~TxnService();
  TxnService(const TxnService&) = delete;
  TxnService& operator=(const TxnService&) = delete;

  void start();  // on the worker's thread
  void shutdown();
  // Runs `fn` on this worker's thread after `delay_ms`.
  void schedule(uint64_t delay_ms, std::function<void()> fn);
  // A fresh transaction id (hex: 64 random bits per process, then a 64-bit counter).
  static std::string new_txid();
  // This process' identity in intents: host, pid and a random value; in cluster mode, once
  // set_coordinator_tag() was called, prefixed with the replica id and its incarnation
  // (resolver.h). Cheap: one atomic load (it is read for every EXEC).
  static const std::string& coordinator_id();
  // From the ClusterService, when this process' incarnation bump has been applied.
  static void set_coordinator_tag(uint64_t replica, uint64_t incarnation);

  void on_backend_reply(uint64_t cookie, std::string_view reply) override;

 private:
  struct Active {
    std::unique_ptr<txn::Resolution> resolution;
    uint64_t id;
  };
  static void on_timer(uv_timer_t* t);
  void arm();
  void scan();
  void send(uint64_t res_id, std::vector<txn::Resolution::Request>& reqs);
  void settle(uint64_t res_id);
  int backend_index(const std::string& name) const;

  Worker& worker_;
  uv_timer_t timer_{};
  bool open_ = false;
  std::multimap<uint64_t, std::function<void()>> timers_;
  // Resolver (workers[0] only).
  bool resolver_ = false;
  std::vector<std::unique_ptr<BackendConn>> conns_;
  std::unordered_map<uint64_t, Active> active_;        // by resolution id
  std::unordered_map<std::string, uint64_t> by_txid_;  // one resolution per transaction
  // When each failing transaction's error was last logged: a resolution that keeps failing
  // (a backend refusing the apply: OOM, ACL) is tried again at every scan, since a committed
  // transaction must get through as soon as the backend lets it, but logged once a minute.
  std::unordered_map<std::string, uint64_t> error_logged_ms_;
  static constexpr uint64_t kErrorLogEveryMs = 60000;
  uint64_t next_id_ = 1;
  size_t scans_pending_ = 0;
  // The incarnations the current abandoned scan was asked with: its rows are checked against
  // the same values (null without `cluster`).
  std::shared_ptr<const std::map<uint64_t, uint64_t>> scan_incarnations_;
};

}  // namespace lockstep::server
