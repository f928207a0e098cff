// The replicated configuration: what every Lockstep replica agrees on through PaxosCore.
//
// State: backends (name -> address, credentials reference, state), the 16384 hash slots
// mapped to backends by ranges, settings as path -> string ("locks.drift_factor",
// "timeouts.request_ms", ...), the replica membership (id -> address, voter or learner) with
// a per-replica incarnation number, and an epoch that every applied change bumps.
//
// Changes are ConfigCommand values, serialised into log entries (encode_command). apply() is
// deterministic: the same commands in the same order give byte-identical snapshots on every
// replica. A command that does not fit the current state (unknown backend, bad slot range,
// a setting the validator refuses) leaves the state and the epoch unchanged and returns a
// Redis error text for the proposer to show. The validator must be a pure function of its
// arguments (the same on every replica), or replicas diverge.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/consensus/types.h"

namespace lockstep::consensus {

// The lock backend set, and the epoch of its last change (set by apply, never by a client).
inline constexpr std::string_view kLockBackendsPath = "locks.backends";
inline constexpr std::string_view kLockBackendsEpochPath = "locks.backends.epoch";

constexpr uint32_t kSlotCount = 16384;

enum class BackendState : uint8_t { kActive = 0, kDraining = 1, kDown = 2 };
std::string_view backend_state_name(BackendState s);
std::optional<BackendState> parse_backend_state(std::string_view s);

struct Backend {
  std::string address;
  std::string credentials_ref;  // names a secret; the secret itself is never replicated
  BackendState state = BackendState::kActive;
  bool operator==(const Backend&) const = default;
};

struct SlotRange {
  uint32_t from = 0;  // inclusive
  uint32_t to = 0;    // inclusive
  std::string backend;
  bool operator==(const SlotRange&) const = default;
};

struct ReplicaInfo {
  std::string address;
  bool voter = false;
  uint64_t incarnation = 0;
  bool operator==(const ReplicaInfo&) const = default;
};

struct ConfigCommand {
  enum class Kind : uint8_t {
    kAddBackend = 1,       // name, address, credentials_ref
    kRemoveBackend = 2,    // name
    kSetBackendState = 3,  // name, state
    kAssignSlots = 4,      // from, to, name (the backend)
    kSetSetting = 5,       // path, value
    kBumpIncarnation = 6,  // replica
  };
  Kind kind = Kind::kSetSetting;
  std::string name;
  std::string address;
  std::string credentials_ref;
  BackendState state = BackendState::kActive;
  uint32_t from = 0;
  uint32_t to = 0;
  std::string path;
  std::string value;
  NodeId replica = 0;
  bool operator==(const ConfigCommand&) const = default;

  static ConfigCommand add_backend(std::string name, std::string address,
                                   std::string credentials_ref = {});
  static ConfigCommand remove_backend(std::string name);
  static ConfigCommand set_backend_state(std::string name, BackendState state);
  static ConfigCommand assign_slots(uint32_t from, uint32_t to, std::string backend);
  static ConfigCommand set_setting(std::string path, std::string value);
  static ConfigCommand bump_incarnation(NodeId replica);
};

std::string encode_command(const ConfigCommand& c);
std::optional<ConfigCommand> decode_command(std::string_view bytes);

// Outcome of one apply: empty error = applied (and the epoch moved on).
struct ApplyResult {
  std::string error;
  bool ok() const { return error.empty(); }
};

class ConfigStateMachine {
 public:
  // Returns an error text for a refused setting, or an empty string.
  using Validator = std::function<std::string(std::string_view path, std::string_view value)>;

  void set_validator(Validator v) { validator_ = std::move(v); }

  ApplyResult apply(const ConfigCommand& c);
  // A chosen log entry: commands are decoded and applied, membership entries replace the
  // replica set (keeping incarnations), no-ops change nothing.
  ApplyResult apply_entry(const Entry& e);
  void apply_membership(const Membership& m);
  // The replica set of a brand-new cluster, for its bootstrap snapshot: not a change (the
  // epoch stays), and the same on every replica bootstrapped from the same peers. Without it
  // the initial members would have no ReplicaInfo, hence no incarnation to bump, until the
  // first membership change.
  void seed_replicas(const Membership& m);

  uint64_t epoch() const { return epoch_; }
  const std::map<std::string, Backend, std::less<>>& backends() const { return backends_; }
  std::vector<SlotRange> slot_ranges() const;          // assigned ranges in slot order
  const std::string* slot_owner(uint32_t slot) const;  // null when unassigned
  std::optional<std::string> setting(std::string_view path) const;
  const std::map<std::string, std::string, std::less<>>& settings() const { return settings_; }
  const std::map<NodeId, ReplicaInfo>& replicas() const { return replicas_; }

  // The whole state as bytes, and back. restore() leaves the state untouched and returns
  // false on malformed input.
  std::string snapshot() const;
  bool restore(std::string_view bytes);

 private:
  ApplyResult assign(uint32_t from, uint32_t to, const std::string& backend);

  uint64_t epoch_ = 0;
  std::map<std::string, Backend, std::less<>> backends_;
  std::map<uint32_t, SlotRange> slots_;  // keyed by range start; ranges never overlap
  std::map<std::string, std::string, std::less<>> settings_;
  std::map<NodeId, ReplicaInfo> replicas_;
  Validator validator_;
};

}  // namespace lockstep::consensus
