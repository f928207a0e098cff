// Who receives a backend reply. BackendConn answers each pending request through the sink that
// sent it, with the sender's own `cookie` (a client's: reply slot and part).
#pragma once

#include <cstdint>
#include <string_view>

namespace lockstep::server {

class ReplySink {
 public:
  virtual void on_backend_reply(uint64_t cookie, std::string_view reply) = 0;

 protected:
  ~ReplySink() = default;
};

// A sink that drops every reply: for requests whose answer nobody waits for (a transaction's
// clean-up, a HELLO on a pinned connection). Stateless, shared by every thread.
ReplySink& discard_replies();

}  // namespace lockstep::server
