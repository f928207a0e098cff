// Told about a backend connection's life: (re)connected, lost, and (for subscriber connections)
// messages pushed by the backend that answer no request. The lock engine, the pub/sub hub and
// the transaction resolver watch the connections they own this way.
#pragma once

#include <string_view>

namespace lockstep::server {

class ConnObserver {
 public:
  virtual void on_conn_ready(int backend) = 0;
  virtual void on_conn_lost(int /*backend*/) {}
  virtual void on_push(int /*backend*/, std::string_view /*message*/) {}

 protected:
  ~ConnObserver() = default;
};

}  // namespace lockstep::server
