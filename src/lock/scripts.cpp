// Request builders for the lock scripts (the scripts themselves are constants in scripts.h).
#include "lockstep/lock/scripts.h"

#include <fmt/format.h>

#include <vector>

#include "lockstep/resp/resp.h"

namespace lockstep::lock {
namespace {

std::string prefixed(std::string_view kind, std::string_view name) {
  std::string key;
  key.reserve(kKeyPrefix.size() + kind.size() + 1 + name.size());
  key.append(kKeyPrefix).append(kind).push_back(':');
  key.append(name);
  return key;
}

}  // namespace

std::string lock_key(std::string_view name) {
  return prefixed("lock", name);
}
std::string fence_key(std::string_view name) {
  return prefixed("fence", name);
}
std::string guard_key(std::string_view name) {
  return prefixed("guard", name);
}
std::string lockcfg_key() {
  return std::string(kKeyPrefix) + "lockcfg";
}
std::string lockcfg_done_key() {
  return std::string(kKeyPrefix) + "lockcfg:done";
}
std::string released_channel(std::string_view name) {
  return prefixed("released", name);
}

std::string script_request(const Script& script, ScriptMode mode,
                           std::span<const std::string_view> keys,
                           std::span<const std::string_view> args) {
  const std::string numkeys = fmt::format("{}", keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back(mode == ScriptMode::kEvalSha ? "EVALSHA" : "EVAL");
  argv.push_back(mode == ScriptMode::kEvalSha ? script.sha() : script.body);
  argv.push_back(numkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  resp::append_command(out, argv);
  return out;
}

std::string guard_request(std::string_view name, int64_t fence,
                          std::span<const std::string_view> command_keys,
                          std::span<const std::string_view> command, ScriptMode mode) {
  const std::string guard = guard_key(name);
  const std::string fence_text = fmt::format("{}", fence);
  std::vector<std::string_view> keys;
  keys.reserve(1 + command_keys.size());
  keys.push_back(guard);
  keys.insert(keys.end(), command_keys.begin(), command_keys.end());
  std::vector<std::string_view> args;
  args.reserve(1 + command.size());
  args.push_back(fence_text);
  args.insert(args.end(), command.begin(), command.end());
  return script_request(kGuardScript, mode, keys, args);
}

}  // namespace lockstep::lock
