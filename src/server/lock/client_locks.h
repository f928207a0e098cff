// One client's side of the lock engine (a client part, created on its first LOCK.*): the
// KEEPALIVE locks it lost, reported on its next LOCK command (RESP2) or pushed at once (RESP3).
// Closing the client tells the lock worker, whose waiters and keep-alives of this client leave.
#pragma once

#include <string>
#include <vector>

#include "server/net/client_part.h"

namespace lockstep::server {

class ClientLocks final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kLocks;

  // From the lock worker, on the client's worker: a KEEPALIVE lock of `c` was lost.
  static void lost(Client& c, const std::string& name);
  // Lost locks not yet reported, as the error the next LOCK command answers (and clears);
  // empty when there are none.
  std::string take_lost_error();
  void close(Client& c) override;

 private:
  std::vector<std::string> lost_;
};

}  // namespace lockstep::server
