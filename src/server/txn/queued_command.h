// What a transaction is made of on the proxy side: the commands MULTI queued (each already
// routed) and the pinned connections that carry the client's WATCHes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <span>
#include <string_view>

#include "lockstep/proxy/merge.h"
#include "lockstep/proxy/router.h"

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

// A connection of the client's own to one backend, where its WATCHes for that backend run.
struct TxnPin {
  int backend = -1;
  BackendConn* conn = nullptr;    // a dedicated connection lent by the worker
  std::vector<std::string> keys;  // watched there (locked at prepare, for exact WATCH)
  bool switched = false;          // HELLO changed its protocol: never back to the pool
};

// A routed keyed command as a queue entry: kSingle forwarded as sent, kSplit as per-backend
// parts whose replies merge as outside a transaction.
void queue_routed(const proxy::Plan& plan, std::span<const std::string_view> args,
                  std::string_view raw, QueuedCommand& q);
// The per-backend sub-requests of a split command, named `name` (MSETNX is sent as MSET).
void split_parts(const proxy::Plan& plan, std::span<const std::string_view> args,
                 std::string_view name, QueuedCommand& q);

}  // namespace lockstep::server
