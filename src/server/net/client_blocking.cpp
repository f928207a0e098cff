#include "server/net/client_blocking.h"

#include <fmt/format.h>

#include "server/net/worker.h"

namespace lockstep::server {

bool ClientBlocking::begin(Client& c) {
  SharedState& sh = c.shared();
  if (sh.stats.blocked_clients.fetch_add(1) >= sh.cfg.limits.max_blocked_clients) {
    sh.stats.blocked_clients.fetch_sub(1);
    c.reply_error(fmt::format("ERR too many blocked clients (limits.max_blocked_clients is {})",
                              sh.cfg.limits.max_blocked_clients));
    return false;
  }
  holding_ = true;
  return true;
}

BackendConn& ClientBlocking::connect(Client& c, int backend) {
  BackendConn* conn = c.worker().acquire_dedicated(backend, c.protocol());
  conns_.push_back(conn);
  return *conn;
}

void ClientBlocking::release(Client& c, bool reusable) {
  holding_ = false;
  c.shared().stats.blocked_clients.fetch_sub(1);
  for (BackendConn* conn : conns_) c.worker().release_dedicated(conn, reusable);
  conns_.clear();
}

}  // namespace lockstep::server
