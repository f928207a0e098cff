// The replicated configuration; see config_state_machine.h for what it holds and promises.
#include "lockstep/consensus/config_state_machine.h"

#include "consensus/wire.h"
#include "lockstep/consensus/codec.h"

namespace lockstep::consensus {

std::string_view backend_state_name(BackendState s) {
  switch (s) {
    case BackendState::kActive:
      return "active";
    case BackendState::kDraining:
      return "draining";
    case BackendState::kDown:
      return "down";
  }
  return "unknown";
}

std::optional<BackendState> parse_backend_state(std::string_view s) {
  for (auto st : {BackendState::kActive, BackendState::kDraining, BackendState::kDown})
    if (backend_state_name(st) == s) return st;
  return std::nullopt;
}

// ---- Commands -------------------------------------------------------------------------------

ConfigCommand ConfigCommand::add_backend(std::string name, std::string address,
                                         std::string credentials_ref) {
  ConfigCommand c;
  c.kind = Kind::kAddBackend;
  c.name = std::move(name);
  c.address = std::move(address);
  c.credentials_ref = std::move(credentials_ref);
  return c;
}

ConfigCommand ConfigCommand::remove_backend(std::string name) {
  ConfigCommand c;
  c.kind = Kind::kRemoveBackend;
  c.name = std::move(name);
  return c;
}

ConfigCommand ConfigCommand::set_backend_state(std::string name, BackendState state) {
  ConfigCommand c;
  c.kind = Kind::kSetBackendState;
  c.name = std::move(name);
  c.state = state;
  return c;
}

ConfigCommand ConfigCommand::assign_slots(uint32_t from, uint32_t to, std::string backend) {
  ConfigCommand c;
  c.kind = Kind::kAssignSlots;
  c.from = from;
  c.to = to;
  c.name = std::move(backend);
  return c;
}

ConfigCommand ConfigCommand::set_setting(std::string path, std::string value) {
  ConfigCommand c;
  c.kind = Kind::kSetSetting;
  c.path = std::move(path);
  c.value = std::move(value);
  return c;
}

ConfigCommand ConfigCommand::bump_incarnation(NodeId replica) {
  ConfigCommand c;
  c.kind = Kind::kBumpIncarnation;
  c.replica = replica;
  return c;
}

std::string encode_command(const ConfigCommand& c) {
  wire::Writer w;
  w.u8(static_cast<uint8_t>(c.kind));
  w.str(c.name);
  w.str(c.address);
  w.str(c.credentials_ref);
  w.u8(static_cast<uint8_t>(c.state));
  w.u32(c.from);
  w.u32(c.to);
  w.str(c.path);
  w.str(c.value);
  w.u64(c.replica);
  return w.take();
}

std::optional<ConfigCommand> decode_command(std::string_view bytes) {
  wire::Reader r(bytes);
  ConfigCommand c;
  uint8_t kind = r.u8();
  if (kind < 1 || kind > 6) return std::nullopt;
  c.kind = static_cast<ConfigCommand::Kind>(kind);
  c.name = r.str();
  c.address = r.str();
  c.credentials_ref = r.str();
  uint8_t st = r.u8();
  if (st > 2) return std::nullopt;
  c.state = static_cast<BackendState>(st);
  c.from = r.u32();
  c.to = r.u32();
  c.path = r.str();
  c.value = r.str();
  c.replica = r.u64();
  if (!r.done()) return std::nullopt;
  return c;
}

// ---- Applying -------------------------------------------------------------------------------

ApplyResult ConfigStateMachine::apply(const ConfigCommand& c) {
  using Kind = ConfigCommand::Kind;
  switch (c.kind) {
    case Kind::kAddBackend:
      if (c.name.empty() || c.address.empty()) return {"ERR a backend needs a name and an address"};
      if (backends_.count(c.name)) return {"ERR backend '" + c.name + "' already exists"};
      backends_[c.name] = Backend{c.address, c.credentials_ref, BackendState::kActive};
      break;
    case Kind::kRemoveBackend: {
      auto it = backends_.find(c.name);
      if (it == backends_.end()) return {"ERR unknown backend '" + c.name + "'"};
      for (const auto& [start, r] : slots_)
        if (r.backend == c.name)
          return {"ERR backend '" + c.name + "' still owns slots " + std::to_string(r.from) + "-" +
                  std::to_string(r.to) + "; assign them to another backend first"};
      backends_.erase(it);
      break;
    }
    case Kind::kSetBackendState: {
      auto it = backends_.find(c.name);
      if (it == backends_.end()) return {"ERR unknown backend '" + c.name + "'"};
      it->second.state = c.state;
      break;
    }
    case Kind::kAssignSlots:
      if (auto r = assign(c.from, c.to, c.name); !r.ok()) return r;
      break;
    case Kind::kSetSetting:
      if (c.path.empty()) return {"ERR empty setting path"};
      if (validator_)
        if (std::string err = validator_(c.path, c.value); !err.empty()) return {err};
      // A change of the lock backend set must be ordered against every other one: the lock
      // engine fences old sets with the epoch recorded here (lock/reconfig.h). The first value
      // (the bootstrap seed) records none, so replicas that start with it need no change.
      if (c.path == kLockBackendsPath) {
        auto old = settings_.find(c.path);
        if (old != settings_.end() && old->second != c.value)
          settings_[std::string(kLockBackendsEpochPath)] = std::to_string(epoch_ + 1);
      }
      settings_[c.path] = c.value;
      break;
    case Kind::kBumpIncarnation: {
      auto it = replicas_.find(c.replica);
      if (it == replicas_.end()) return {"ERR no replica " + std::to_string(c.replica)};
      ++it->second.incarnation;
      break;
    }
  }
  ++epoch_;
  return {};
}

ApplyResult ConfigStateMachine::assign(uint32_t from, uint32_t to, const std::string& backend) {
  if (from > to || to >= kSlotCount)
    return {"ERR invalid slot range " + std::to_string(from) + "-" + std::to_string(to) +
            ": expected from-to with 0 <= from <= to <= " + std::to_string(kSlotCount - 1)};
  if (!backends_.count(backend)) return {"ERR unknown backend '" + backend + "'"};
  // Cut every range overlapping [from, to], keep the parts outside it, insert the new one,
  // then merge neighbours owned by the same backend so equal maps have equal encodings.
  std::vector<SlotRange> keep;
  auto it = slots_.upper_bound(from);
  if (it != slots_.begin()) --it;
  while (it != slots_.end() && it->second.from <= to) {
    const SlotRange& r = it->second;
    if (r.to >= from) {
      if (r.from < from) keep.push_back(SlotRange{r.from, from - 1, r.backend});
      if (r.to > to) keep.push_back(SlotRange{to + 1, r.to, r.backend});
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& r : keep) slots_[r.from] = r;
  slots_[from] = SlotRange{from, to, backend};
  for (auto cur = slots_.begin(); cur != slots_.end();) {
    auto next = std::next(cur);
    if (next != slots_.end() && cur->second.to + 1 == next->second.from &&
        cur->second.backend == next->second.backend) {
      cur->second.to = next->second.to;
      slots_.erase(next);
    } else {
      cur = next;
    }
  }
  return {};
}

ApplyResult ConfigStateMachine::apply_entry(const Entry& e) {
  switch (e.type) {
    case EntryType::kNoop:
      return {};
    case EntryType::kMembership: {
      auto m = decode_membership(e.data);
      if (!m) return {"ERR undecodable membership entry"};
      apply_membership(*m);
      return {};
    }
    case EntryType::kCommand: {
      auto c = decode_command(e.data);
      if (!c) return {"ERR undecodable configuration command"};
      return apply(*c);
    }
  }
  return {"ERR unknown entry type"};
}

void ConfigStateMachine::apply_membership(const Membership& m) {
  std::map<NodeId, ReplicaInfo> next;
  for (const auto& x : m.members) {
    auto old = replicas_.find(x.id);
    next[x.id] =
        ReplicaInfo{x.address, x.voter, old == replicas_.end() ? 0 : old->second.incarnation};
  }
  replicas_ = std::move(next);
  ++epoch_;
}

void ConfigStateMachine::seed_replicas(const Membership& m) {
  for (const auto& x : m.members) replicas_[x.id] = ReplicaInfo{x.address, x.voter, 0};
}

// ---- Queries --------------------------------------------------------------------------------

std::vector<SlotRange> ConfigStateMachine::slot_ranges() const {
  std::vector<SlotRange> out;
  for (const auto& [start, r] : slots_) out.push_back(r);
  return out;
}

const std::string* ConfigStateMachine::slot_owner(uint32_t slot) const {
  auto it = slots_.upper_bound(slot);
  if (it == slots_.begin()) return nullptr;
  --it;
  return slot <= it->second.to ? &it->second.backend : nullptr;
}

std::optional<std::string> ConfigStateMachine::setting(std::string_view path) const {
  auto it = settings_.find(path);
  if (it == settings_.end()) return std::nullopt;
  return it->second;
}

// ---- Snapshot -------------------------------------------------------------------------------

std::string ConfigStateMachine::snapshot() const {
  wire::Writer w;
  w.u64(epoch_);
  w.u32(static_cast<uint32_t>(backends_.size()));
  for (const auto& [name, b] : backends_) {
    w.str(name);
    w.str(b.address);
    w.str(b.credentials_ref);
    w.u8(static_cast<uint8_t>(b.state));
  }
  w.u32(static_cast<uint32_t>(slots_.size()));
  for (const auto& [start, r] : slots_) {
    w.u32(r.from);
    w.u32(r.to);
    w.str(r.backend);
  }
  w.u32(static_cast<uint32_t>(settings_.size()));
  for (const auto& [path, value] : settings_) {
    w.str(path);
    w.str(value);
  }
  w.u32(static_cast<uint32_t>(replicas_.size()));
  for (const auto& [id, r] : replicas_) {
    w.u64(id);
    w.str(r.address);
    w.u8(r.voter ? 1 : 0);
    w.u64(r.incarnation);
  }
  return w.take();
}

bool ConfigStateMachine::restore(std::string_view bytes) {
  if (bytes.empty()) {  // the empty snapshot of a brand-new cluster
    ConfigStateMachine fresh;
    fresh.validator_ = std::move(validator_);
    *this = std::move(fresh);
    return true;
  }
  wire::Reader r(bytes);
  ConfigStateMachine s;
  s.epoch_ = r.u64();
  for (uint32_t n = r.count(13); n > 0 && r.ok(); --n) {
    std::string name = r.str();
    Backend b;
    b.address = r.str();
    b.credentials_ref = r.str();
    uint8_t st = r.u8();
    if (st > 2) r.fail();
    b.state = static_cast<BackendState>(st);
    s.backends_[name] = std::move(b);
  }
  for (uint32_t n = r.count(12); n > 0 && r.ok(); --n) {
    SlotRange x;
    x.from = r.u32();
    x.to = r.u32();
    x.backend = r.str();
    if (x.from > x.to || x.to >= kSlotCount) r.fail();
    s.slots_[x.from] = std::move(x);
  }
  for (uint32_t n = r.count(8); n > 0 && r.ok(); --n) {
    std::string path = r.str();
    s.settings_[path] = r.str();
  }
  for (uint32_t n = r.count(21); n > 0 && r.ok(); --n) {
    NodeId id = r.u64();
    ReplicaInfo x;
    x.address = r.str();
    x.voter = r.u8() != 0;
    x.incarnation = r.u64();
    s.replicas_[id] = std::move(x);
  }
  if (!r.done()) return false;
  s.validator_ = std::move(validator_);
  *this = std::move(s);
  return true;
}

}  // namespace lockstep::consensus
