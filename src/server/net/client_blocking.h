// A client's blocking request (BLPOP ..., XREAD BLOCK, WAIT) runs on backend connections of its
// own, lent by the worker for the request's lifetime: a blocked command holds its connection,
// and shared pipelined connections must not wait behind it. At most
// limits.max_blocked_clients clients are blocked at once. A client that disconnects while
// blocked frees its connections at once: closing them is the only way to stop the command on
// the backend.
#pragma once

#include <vector>

#include "server/net/client_part.h"

namespace lockstep::server {

class BackendConn;

class ClientBlocking final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kBlocking;

  // Counts the client blocked; false (and the client answered) when the cap is reached.
  bool begin(Client& c);
  // A connection of its own to `backend` for the current blocking request.
  BackendConn& connect(Client& c, int backend);
  bool holding() const { return holding_; }
  // The request completed (`reusable`: its connections may serve another) or the client left.
  void release(Client& c, bool reusable);
  void close(Client& c) override {
    if (holding_) release(c, false);
  }

 private:
  bool holding_ = false;
  std::vector<BackendConn*> conns_;
};

}  // namespace lockstep::server
