// A client's transaction state: what MULTI queued, and the connections that carry its WATCHes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lockstep/proxy/merge.h"

namespace lockstep::server {

class BackendConn;

struct QueuedCommand {
  enum class Kind : uint8_t { kSingle, kAny, kSplit, kLocal };
  Kind kind = Kind::kSingle;
  int backend = -1;         // kSingle
  std::string raw;          // kSingle, kAny: the request as the client sent it
  std::string local_reply;  // kLocal: computed when queued (PING, ECHO, UNWATCH)
  struct Part {
    int backend;
    std::string request;
    std::vector<std::string> keys;
  };
  std::vector<Part> parts;                   // kSplit: one sub-request per backend
  std::shared_ptr<proxy::ReplyMerge> merge;  // kSplit: how the parts' replies combine
  std::vector<std::string> keys;             // kSingle
};

struct TxnPin {
  int backend = -1;
  BackendConn* conn = nullptr;    // a dedicated connection lent by the worker
  std::vector<std::string> keys;  // watched there (locked at prepare, for exact WATCH)
  bool switched = false;          // HELLO changed its protocol: never back to the pool
};

struct Topology;

struct TxnState {
  bool in_multi = false;
  bool dirty = false;  // a command was refused while queueing: EXEC answers EXECABORT
  std::vector<QueuedCommand> queued;
  size_t queued_bytes = 0;
  std::vector<TxnPin> pins;
  // The slot map the queue and the WATCHes were routed by; EXEC under another one answers nil
  // (a slot moved meanwhile: the commands would go to the old owner). Held here so the old map
  // lives as long as a transaction may compare against it.
  std::shared_ptr<const Topology> routed_by;
};

}  // namespace lockstep::server
