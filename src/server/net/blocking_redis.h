// A blocking connection to one backend, for the few one-shot checks that run where no event
// loop does: transactions.backend_check at start (before any worker exists, it decides whether
// Lockstep starts at all) and the LOCKSTEP SLOTS ASSIGN emptiness scan (on a short-lived
// checker thread, so a full SCAN of a backend never occupies the cluster loop).
//
// Why a second client next to BackendConn: both users need an answer before they can go on and
// have no loop to wait in; a check is a few round trips once per start or per admin command,
// against millions of requests a second on the data path, so hiredis' synchronous API costs
// nothing that matters here. Everything on the request path, and every service that runs on a
// worker loop (locks, transactions, pub/sub), goes through BackendConn.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/config/config.h"

namespace lockstep::server {

class BlockingRedis {
 public:
  using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

  // Connects, then AUTH and SELECT as the backend's configuration says; error() tells why not.
  BlockingRedis(const config::BackendConfig& backend, int timeout_ms);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // nullptr when the connection broke (error() says why).
  Reply command(const std::vector<std::string_view>& args);

 private:
  std::unique_ptr<redisContext, void (*)(redisContext*)> ctx_;
  std::string error_;
};

}  // namespace lockstep::server
