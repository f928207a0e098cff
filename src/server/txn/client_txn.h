// One client's transaction state (the client side of txn/coordinator.h): what MULTI queued and
// the connections that carry its WATCHes. A client part (net/client_part.h): closing the client
// closes the pins, which is what drops their WATCHes on the backends.
//
// MULTI queues in the proxy: each command is routed when queued (unknown, wrong arity,
// unroutable, refused -> the error now and EXECABORT at EXEC, as Redis does). WATCH is
// forwarded on a connection of this client's own per backend ("pin"), kept until EXEC,
// DISCARD, UNWATCH or disconnect, so the backend itself tracks the watched keys. EXEC hands the
// queue to an ExecJob (exec_job.h). The command handlers are in commands/transaction.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/net/client.h"
#include "server/net/client_part.h"
#include "server/txn/queued_command.h"

namespace lockstep::server {

struct Topology;

class ClientTxn final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kTxn;

  bool in_multi() const { return in_multi_; }
  // A command refused while queueing dooms the transaction (EXEC answers EXECABORT).
  void flag_error() {
    if (in_multi_) dirty_ = true;
  }
  // MULTI's queue: the command is routed now and answered +QUEUED (or refused).
  void queue(Client& c, const Request& r);
  // MSET/MSETNX with a key but no value: Redis queues it (its arity check passes) and fails it
  // when EXEC runs it; Lockstep's router refuses it before routing, so it becomes that error
  // in place. False when `plan` (with `nargs` arguments) is not that case.
  bool queue_runtime_error(Client& c, const proxy::Plan& plan, size_t nargs);

  // The handlers (commands/transaction.cpp).
  void multi(Client& c);
  void exec(Client& c);
  void discard(Client& c);
  void watch(Client& c, std::span<const std::string_view> args);
  void unwatch(Client& c);
  // RESET: leaves MULTI, drops WATCHes.
  void reset(Client& c);

  // The pins go back to the worker's pool (`reusable`) or are closed.
  void release_pins(Client& c, bool reusable);
  bool has_pins() const { return !pins_.empty(); }
  // HELLO: the pins carry WATCHes, so they stay, and now speak the client's new protocol.
  void protocol_changed(int protocol);
  void close(Client& c) override { release_pins(c, false); }

  // transactions.isolation: a plain command run as a one-command transaction, so it waits for
  // (never overlaps) a cross-backend commit holding its keys. False when it does not apply.
  static bool guarded(Client& c, const Request& r);
  // MSETNX over several backends: one transaction whose prepare checks that no key exists.
  static void msetnx(Client& c, const Request& r);

 private:
  bool in_multi_ = false;
  bool dirty_ = false;
  std::vector<QueuedCommand> queued_;
  size_t queued_bytes_ = 0;
  std::vector<TxnPin> pins_;
  // The slot map the queue and the WATCHes were routed by; EXEC under another one answers nil
  // (a slot moved meanwhile: the commands would go to the old owner). Held here so the old map
  // lives as long as a transaction may compare against it.
  std::shared_ptr<const Topology> routed_by_;
};

}  // namespace lockstep::server
