// Jobs: commands whose reply is more than one backend reply forwarded as is. A job is attached to
// the client's reply slot, sends its parts through the client (so pipelining order and lifetime
// are handled in one place), sees every reply to its parts, and writes the client's reply when
// it is done. Split/fan-out merges, SCAN's cursor rewriting and INFO's keyspace sum are jobs.
//
// Rules a job can rely on: on_reply is never called from inside send(); the slot completes only
// when the job says done() and no part is outstanding, so a job never sees a reply after it has
// finished; a job is destroyed with its slot (or with its client).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lockstep::server {

class Client;

class Job {
 public:
  virtual ~Job() = default;
  // One backend reply to part `part` (the index the job chose when sending it).
  virtual void on_reply(Client& client, uint64_t seq, size_t part, std::string_view reply) = 0;
  // True once the client's reply is complete; `finish` then appends it.
  virtual bool done() const = 0;
  virtual void finish(std::string& out) = 0;
  // The client closed before the job was done: its replies will not come back here.
  virtual void abandon() {}
};

}  // namespace lockstep::server
