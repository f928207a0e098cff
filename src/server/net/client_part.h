// A piece of one client's state that exists only once the client uses a feature: MULTI/WATCH
// (ClientTxn), pub/sub (ClientSubscriptions), blocking commands and WAIT (ClientBlocking),
// MONITOR (ClientMonitor), LOCK.* (ClientLocks), LOCKSTEP CONFIG WATCH (ClientAdmin). A part owns
// what it holds outside the client (backend connections, hub subscriptions, registrations with
// other threads) and gives it back in close(): closing a client is closing its parts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep::server {

class Client;

enum class PartKind : uint8_t { kTxn, kSubscriptions, kBlocking, kMonitor, kLocks, kAdmin };
inline constexpr size_t kPartKinds = 6;

class ClientPart {
 public:
  virtual ~ClientPart() = default;
  // The client is closing: give back what the part holds. Called once, on the client's worker.
  virtual void close(Client& c) = 0;
};

}  // namespace lockstep::server
