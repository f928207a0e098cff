#include "lockstep/proxy/router.h"

#include <algorithm>
#include <cctype>

namespace lockstep::proxy {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

namespace {

// Redis truncates the echoed arguments (server.c processCommand) so a hostile client cannot make
// the error reply huge, and replaces CR/LF so the reply stays one line.
std::string sanitize(std::string_view s, size_t max) {
  std::string out(s.substr(0, std::min(max, s.size())));
  for (char& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

}  // namespace

std::string unknown_command_error(std::span<const std::string_view> args) {
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    const size_t room = 128 - list.size();  // measured before the quote, as Redis does
    list += '\'';
    list += sanitize(args[i], room);
    list += "' ";
  }
  return "ERR unknown command '" + sanitize(args[0], 128) + "', with args beginning with: " + list;
}

std::string unknown_subcommand_error(std::string_view container, std::string_view sub) {
  std::string upper(container);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "ERR unknown subcommand '" + sanitize(sub, 128) + "'. Try " + upper + " HELP.";
}

std::string arity_error(std::string_view fullname) {
  return "ERR wrong number of arguments for '" + std::string(fullname) + "' command";
}

const Plan& Router::error(std::string text) {
  plan_.kind = Plan::Kind::kError;
  plan_.error = std::move(text);
  return plan_;
}

const Plan& Router::route(std::span<const std::string_view> args, const SlotMap& map) {
  plan_.cmd = nullptr;
  plan_.backend = -1;
  plan_.blocking = false;
  plan_.nparts = 0;
  const CommandInfo* cmd = table_.find(args[0]);
  if (cmd == nullptr) return error(unknown_command_error(args));
  if (cmd->route == Route::kContainer || (!cmd->subcommands.empty() && args.size() >= 2)) {
    if (args.size() < 2) return error(arity_error(cmd->name));
    const CommandInfo* sub = CommandTable::find_sub(*cmd, args[1]);
    if (sub == nullptr) {
      // COMMAND with an unknown word is still COMMAND's business (it answers the error itself).
      if (cmd->route != Route::kContainer) {
        plan_.cmd = cmd;
        plan_.kind = Plan::Kind::kLocal;
        return plan_;
      }
      return error(unknown_subcommand_error(args[0], args[1]));
    }
    cmd = sub;
  }
  plan_.cmd = cmd;
  if (!arity_ok(*cmd, args.size())) return error(arity_error(cmd->name));

  switch (cmd->route) {
    case Route::kLocal:
      plan_.kind = Plan::Kind::kLocal;
      return plan_;
    case Route::kRefused:
      return error("ERR " + std::string(cmd->refuse_reason));
    case Route::kAnyBackend:
      plan_.kind = Plan::Kind::kAny;
      return plan_;
    case Route::kFanoutSum:
    case Route::kFanoutAllOk:
    case Route::kFanoutSame:
    case Route::kFanoutAnd:
    case Route::kFanoutUnion:
    case Route::kFanoutUnionDistinct:
    case Route::kFanoutSumPairs:
    case Route::kRandomKey:
      plan_.kind = Plan::Kind::kFanout;
      return plan_;
    case Route::kSplitMget:
    case Route::kSplitSum:
      return route_split(args, map);
    case Route::kSplitMset:
    case Route::kSplitMsetnx:
      if (args.size() % 2 == 0) return error(arity_error(cmd->name));
      return route_split(args, map);
    case Route::kKeyed:
    case Route::kContainer:
      break;
  }
  return route_keyed(args, map);
}

const Plan& Router::route_keyed(std::span<const std::string_view> args, const SlotMap& map) {
  const CommandInfo* cmd = plan_.cmd;
  // A command that may block would hold a shared backend connection hostage; the server gives
  // it a connection of its own. XREAD/XREADGROUP block only with the BLOCK option.
  bool blocking = (cmd->flags & kFlagBlocking) != 0;
  if (cmd->name == "xread" || cmd->name == "xreadgroup") {
    blocking = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (iequals(args[i], "streams")) break;
      if (iequals(args[i], "block")) blocking = true;
    }
  }
  // COPY ... DB n would write into another database of the backend, behind the proxy's back.
  if (cmd->name == "copy") {
    for (size_t i = 3; i < args.size(); ++i)
      if (iequals(args[i], "db"))
        return error("ERR COPY with DB is not supported: Lockstep exposes only database 0");
  }
  if (extract_keys(*cmd, args, keys_) == KeyExtract::kMalformed || keys_.size() == 0) {
    // No keys (EVAL with numkeys 0) or arguments Redis itself will reject: any backend gives
    // the right answer, and for malformed arguments it gives Redis' own error text.
    plan_.kind = Plan::Kind::kAny;
    return plan_;
  }
  for (size_t i = 0; i < keys_.size(); ++i)
    if (is_reserved_key(args[keys_[i]])) return error(std::string(kReservedKeyError));
  int backend = map.owner_of_key(args[keys_[0]]);
  for (size_t i = 1; i < keys_.size(); ++i)
    if (map.owner_of_key(args[keys_[i]]) != backend) return error(std::string(kCrossSlotError));
  plan_.kind = Plan::Kind::kSingle;
  plan_.backend = backend;
  plan_.blocking = blocking;
  return plan_;
}

const Plan& Router::route_split(std::span<const std::string_view> args, const SlotMap& map) {
  extract_keys(*plan_.cmd, args, keys_);
  part_of_backend_.assign(static_cast<size_t>(map.backends()), -1);
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (is_reserved_key(args[keys_[i]])) return error(std::string(kReservedKeyError));
    int b = map.owner_of_key(args[keys_[i]]);
    int& p = part_of_backend_[static_cast<size_t>(b)];
    if (p < 0) {
      p = static_cast<int>(plan_.nparts++);
      if (plan_.parts.size() < plan_.nparts) plan_.parts.emplace_back();
      plan_.parts[p].backend = b;
      plan_.parts[p].keys.clear();
    }
    plan_.parts[p].keys.push_back(keys_[i]);
  }
  if (plan_.nparts == 1) {  // the common case with hash tags: forward the bytes untouched
    plan_.kind = Plan::Kind::kSingle;
    plan_.backend = plan_.parts[0].backend;
    return plan_;
  }
  plan_.kind = Plan::Kind::kSplit;
  return plan_;
}

}  // namespace lockstep::proxy
