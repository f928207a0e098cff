// Routing: decides, for one parsed request, who answers it. Pure logic over the command table
// and a slot map; it never touches a socket, so every rule is unit-tested directly.
//
//   unknown / wrong arity / refused      -> kError with Redis' own wording
//   connection and introspection         -> kLocal (the server answers)
//   keys all on one backend              -> kSingle (request bytes forwarded untouched)
//   keyless, any backend will do         -> kAny
//   MGET/MSET/DEL/UNLINK/EXISTS/TOUCH    -> kSplit per backend, merged by ReplyMerge
//   DBSIZE/FLUSHALL/KEYS/SCRIPT LOAD ... -> kFanout to all backends, merged by ReplyMerge
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/proxy/command_table.h"
#include "lockstep/proxy/slot_map.h"

namespace lockstep::proxy {

struct SplitPart {
  int backend = -1;
  std::vector<uint32_t> keys;  // argument indices of this backend's keys (MSET: value follows)
};

struct Plan {
  enum class Kind : uint8_t { kSingle, kAny, kSplit, kFanout, kLocal, kError };
  Kind kind = Kind::kError;
  const CommandInfo* cmd = nullptr;  // the resolved (sub)command; nullptr when unknown
  int backend = -1;                  // kSingle
  bool blocking = false;             // kSingle that may block: needs a connection of its own
  std::string error;                 // kError: the reply text without the leading '-'
  std::vector<SplitPart> parts;      // kSplit: the first nparts entries are in use
  size_t nparts = 0;
};

class Router {
 public:
  explicit Router(const CommandTable& table) : table_(table) {}

  // The plan stays valid until the next call (its buffers are reused: no allocation per
  // request once warmed up, except on error paths).
  const Plan& route(std::span<const std::string_view> args, const SlotMap& map);

 private:
  const Plan& error(std::string text);
  const Plan& route_keyed(std::span<const std::string_view> args, const SlotMap& map);
  const Plan& route_split(std::span<const std::string_view> args, const SlotMap& map);

  const CommandTable& table_;
  Plan plan_;
  KeyPositions keys_;
  std::vector<int> part_of_backend_;
};

// Redis' error texts (server.c), byte for byte.
std::string unknown_command_error(std::span<const std::string_view> args);
std::string unknown_subcommand_error(std::string_view container, std::string_view sub);
std::string arity_error(std::string_view command_fullname);
// Lockstep's own keys (locks, fences, transaction intents) live under this prefix on the
// backends; clients can neither read nor write them, and KEYS/SCAN/RANDOMKEY leave them out.
inline constexpr std::string_view kReservedPrefix = "__lockstep:";
inline constexpr std::string_view kReservedKeyError =
    "ERR keys starting with '__lockstep:' are reserved for Lockstep's internal state";
inline bool is_reserved_key(std::string_view key) {
  return key.starts_with(kReservedPrefix);
}
inline constexpr std::string_view kCrossSlotError =
    "CROSSSLOT Keys in request don't hash to the same slot";

// ASCII case-insensitive equality (command names and options).
bool iequals(std::string_view a, std::string_view b);

}  // namespace lockstep::proxy
