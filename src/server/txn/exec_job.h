// EXEC through the proxy. A queue of routed commands (queued_command.h) runs as one
// transaction through a txn::Coordinator: one backend -> one guarded MULTI/EXEC there; several
// -> two-phase commit. A transaction that meets keys held by another one is run again after a
// short randomized pause, until transactions.conflict_timeout_ms (no waiting on locks, so no
// deadlock); one with WATCHes cannot be rerun (its WATCHes were consumed), so it answers nil,
// which a WATCH client treats as "retry", as it must anyway.
//
// The same machinery serves a cross-backend MSETNX (each backend's keys must not exist) and a
// plain command guarded by transactions.isolation (its own reply, not an array).
#pragma once

#include <string_view>
#include <vector>

#include "server/net/client.h"
#include "server/txn/queued_command.h"

namespace lockstep::server {

enum class ExecKind { kExec, kMsetnx, kGuarded };

// Starts the transaction in a new reply slot of `c`; later requests of `c` wait for it.
void start_exec(Client& c, std::vector<QueuedCommand> queued, std::vector<TxnPin> pins,
                ExecKind kind);

// EXEC's nil (WATCH failed, or the slot map changed since MULTI) in the client's protocol.
std::string_view nil_reply(int protocol);

}  // namespace lockstep::server
