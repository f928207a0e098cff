// The lock engine's I/O: drives the sans-I/O Redlock rounds of src/lock over connections to the
// lock backends, on one worker's loop for the whole process (so waiters queue per lock in one
// FIFO per replica). Clients on other workers hand their LOCK.* requests over with
// Worker::post_task and get the reply bytes back the same way.
//
//   client worker                 lock worker (LockService)                lock backends
//   LOCK.ACQUIRE  --post_task-->  AcquireRound / WaitQueue / KeepAlive  <-->  EVALSHA scripts
//   reply slot    <--post_task--  outcome encoded (lock/command.h)
//
// Around the rounds it keeps the backends honest: each lock connection is verified (INFO
// server: run_id) before it votes, TIME is sampled every second to catch clock jumps, and a
// backend that restarted is quarantined and has its fence counters re-seeded from a quorum of
// the others (lock/quarantine.h). Releases are announced on __lockstep:released:<name> so
// waiters on other replicas try at once; the holder's TTL end is the fallback wake-up.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockstep/lock/command.h"
#include "lockstep/lock/quarantine.h"
#include "lockstep/lock/reconfig.h"
#include "lockstep/lock/redlock.h"
#include "lockstep/lock/wait_queue.h"
#include "server/net/worker.h"

namespace lockstep::server {

// Where a LOCK.* reply goes: a reply slot of a client on some worker.
struct LockOrigin {
  Worker* worker = nullptr;
  uint64_t client_id = 0;
  uint64_t seq = 0;
  int protocol = 2;
};

lock::LockSettings lock_settings(const config::Config& cfg);
// The `locks:` settings checked against the lock backends they name: an error text, or nullopt.
std::optional<std::string> validate_locks(const config::Config& cfg);

class LockService final : public ReplySink, public ConnObserver {
 public:
  explicit LockService(Worker& worker);
  ~LockService();
  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // On the lock worker's thread.
  void acquire(LockOrigin origin, lock::AcquireArgs args);
  void release(LockOrigin origin, lock::ReleaseArgs args);
  void extend(LockOrigin origin, lock::ExtendArgs args);
  void status(LockOrigin origin, lock::StatusArgs args);
  // The replicated `locks:` settings changed (LOCKSTEP CONFIG SET): later rounds use them at
  // once; a shorter quarantine applies once holds of the longer one have expired
  // (Quarantine::update); a new backend set (`backend_names`, empty = the backends at start)
  // with a newer lock configuration epoch is switched to through lock::Reconfig, during which
  // LOCK.ACQUIRE and EXTEND answer -TRYAGAIN and KEEPALIVE locks are reported lost.
  void update_settings(const lock::LockSettings& s, const std::vector<std::string>& backend_names,
                       uint64_t lock_epoch);
  void client_closed(uint64_t client_id);
  void shutdown();

  void on_backend_reply(uint64_t cookie, std::string_view reply) override;
  void on_conn_ready(int backend) override;
  void on_conn_lost(int backend) override;

 private:
  struct Op;
  struct KeepAliveEntry;
  class Subscriber;

  int64_t now_ms() const;
  void reply_to(const LockOrigin& origin, std::string bytes);
  void send(int lock_backend, uint64_t cookie, std::string_view request);
  uint64_t cookie(uint64_t op_id, uint64_t request_id) const { return (op_id << 24) | request_id; }
  template <class Outcome>
  void apply(Op& op, lock::Effects<Outcome> fx);
  void finish(Op& op);
  void new_round(Op& op);
  // Registers a new op (kind: an Op::Kind) and returns it; start_round runs its round.
  Op& add_op(int kind, std::optional<LockOrigin> origin, std::string name);
  void start_round(Op& op);
  void on_acquire_done(Op& op, const lock::AcquireOutcome& outcome);
  void start_acquire_round(Op& op);
  void try_waiter(uint64_t waiter_id);
  void on_released(const std::string& name);
  void announce_release(const std::string& name);
  void schedule(int64_t at_ms, std::function<void()> fn);
  void arm_timer();
  static void on_timer(uv_timer_t* t);
  void run_due();
  void probe();
  void start_reseed(int target);
  void renew(uint64_t ka_id);
  std::string new_token();
  // The lock backend set in use (topology indices): connections, quarantine, probes.
  void set_backends(std::vector<int> topology_backends);
  void start_transition(std::vector<int> next, uint64_t epoch, int64_t drain_ms);
  void drive_transition(lock::Reconfig::Effects fx);
  void finish_transition();
  // -TRYAGAIN to `origin` while the backend set changes; false if no change is under way.
  bool refuse_while_changing(const LockOrigin& origin);
  void lose_keepalive(uint64_t ka_id);
  // After a switch: resume once a quorum of the new set is verified (or at the deadline).
  void settle(bool deadline);
  static constexpr int64_t kSettleMs = 3000;
  int64_t settling_until_ = 0;

  Worker& worker_;
  lock::LockSettings settings_;
  std::optional<std::string> config_error_;
  std::vector<int> backends_;       // lock backend i = topology backend backends_[i]
  std::vector<std::string> names_;  // for error texts
  std::vector<std::unique_ptr<BackendConn>> conns_;
  std::vector<std::unique_ptr<BackendConn>> sub_conns_;
  std::unique_ptr<Subscriber> subscriber_;
  lock::Quarantine quarantine_;
  lock::WaitQueue waits_;
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  std::unordered_map<uint64_t, uint64_t> rounds_;  // round key -> op id
  std::unordered_map<uint64_t, std::unique_ptr<KeepAliveEntry>> keepalives_;
  uint64_t next_id_ = 1;
  std::multimap<int64_t, std::function<void()>> timers_;
  uv_timer_t timer_{};
  bool timer_open_ = false;
  bool stopped_ = false;
  // Probes: INFO server on (re)connect, TIME every second.
  std::vector<int64_t> time_sent_;
  std::vector<int64_t> uptime_s_;  // last INFO uptime_in_seconds per lock backend (-1: unknown)
  std::optional<lock::FenceReseed> reseed_;
  int reseed_target_ = -1;
  int reseed_writes_pending_ = 0;
  bool reseed_best_effort_ = false;  // fewer than a quorum of sources (a majority restarted)
  int reseed_sources_pending_ = 0;
  struct Transition;
  std::unique_ptr<Transition> transition_;
  std::vector<uint64_t> parked_;  // waiters whose next round waits for the new backend set
};

}  // namespace lockstep::server
