// The replicated group membership and primaries; see replication_groups.h.
#include "lockstep/failover/replication_groups.h"

#include <fmt/format.h>

#include <algorithm>

#include "failover/wire.h"

namespace lockstep::failover {
namespace {

constexpr uint8_t kFormat = 1;

std::string quoted(std::string_view name) {
  return fmt::format("'{}'", name);
}

}  // namespace

std::vector<std::string> Group::servers() const {
  std::vector<std::string> out;
  if (!primary.empty()) out.push_back(primary);
  out.insert(out.end(), replicas.begin(), replicas.end());
  return out;
}

bool Group::contains(std::string_view server) const {
  return (!primary.empty() && primary == server) ||
         std::find(replicas.begin(), replicas.end(), server) != replicas.end();
}

GroupChange GroupChange::define(std::string backend, std::string primary,
                                std::vector<std::string> replicas, bool sentinel) {
  GroupChange c;
  c.kind = Kind::kDefine;
  c.backend = std::move(backend);
  c.server = std::move(primary);
  c.replicas = std::move(replicas);
  c.sentinel = sentinel;
  return c;
}

GroupChange GroupChange::remove(std::string backend) {
  GroupChange c;
  c.kind = Kind::kRemove;
  c.backend = std::move(backend);
  return c;
}

GroupChange GroupChange::set_primary(std::string backend, std::string primary,
                                     uint64_t expected_generation, int64_t at_ms) {
  GroupChange c;
  c.kind = Kind::kSetPrimary;
  c.backend = std::move(backend);
  c.server = std::move(primary);
  c.expected_generation = expected_generation;
  c.at_ms = at_ms;
  return c;
}

GroupChange GroupChange::add_server(std::string backend, std::string server) {
  GroupChange c;
  c.kind = Kind::kAddServer;
  c.backend = std::move(backend);
  c.server = std::move(server);
  return c;
}

GroupChange GroupChange::remove_server(std::string backend, std::string server) {
  GroupChange c;
  c.kind = Kind::kRemoveServer;
  c.backend = std::move(backend);
  c.server = std::move(server);
  return c;
}

const Group* ReplicationGroups::find(std::string_view backend) const {
  auto it = groups_.find(backend);
  return it == groups_.end() ? nullptr : &it->second;
}

const std::string* ReplicationGroups::backend_of(std::string_view server) const {
  for (const auto& [name, group] : groups_) {
    if (group.contains(server)) return &name;
  }
  return nullptr;
}

std::string ReplicationGroups::apply(const GroupChange& c) {
  if (c.backend.empty()) return "ERR a replica group needs a backend name";
  auto it = groups_.find(c.backend);
  if (c.kind != GroupChange::Kind::kDefine && it == groups_.end()) {
    return fmt::format("ERR unknown backend {}", quoted(c.backend));
  }
  // A server joining a group must not be anywhere yet (in this group or another).
  auto taken = [&](const std::string& server) -> std::string {
    if (server.empty()) return "ERR empty server address";
    if (const std::string* owner = backend_of(server)) {
      return fmt::format("ERR {} is already a server of backend {}", server, quoted(*owner));
    }
    return {};
  };

  switch (c.kind) {
    case GroupChange::Kind::kDefine: {
      if (it != groups_.end())
        return fmt::format("ERR backend {} already exists", quoted(c.backend));
      if (c.server.empty() && !c.sentinel) return "ERR a replica group needs a primary";
      std::vector<std::string> members = c.replicas;
      if (!c.server.empty()) members.push_back(c.server);
      for (size_t i = 0; i < members.size(); ++i) {
        if (std::string error = taken(members[i]); !error.empty()) return error;
        for (size_t j = 0; j < i; ++j) {
          if (members[i] == members[j]) {
            return members[i] == c.server
                       ? fmt::format("ERR {} is the primary and cannot also be a replica",
                                     members[i])
                       : fmt::format("ERR {} is listed twice", members[i]);
          }
        }
      }
      Group group;
      group.primary = c.server;
      group.replicas = c.replicas;
      group.sentinel = c.sentinel;
      groups_.emplace(c.backend, std::move(group));
      return {};
    }
    case GroupChange::Kind::kRemove:
      groups_.erase(it);
      return {};
    case GroupChange::Kind::kSetPrimary: {
      Group& group = it->second;
      if (c.expected_generation != group.generation) {
        return fmt::format(
            "ERR backend {} changed since this decision (generation {}, decided at {})",
            quoted(c.backend), group.generation, c.expected_generation);
      }
      if (c.server.empty()) return "ERR empty server address";
      if (c.server == group.primary) {
        return fmt::format("ERR {} is already the primary of backend {}", c.server,
                           quoted(c.backend));
      }
      auto replica = std::find(group.replicas.begin(), group.replicas.end(), c.server);
      if (replica == group.replicas.end()) {
        // Sentinel may promote a replica Lockstep was not told about; a Lockstep decision only
        // ever names a member.
        if (!group.sentinel) {
          return fmt::format("ERR {} is not a server of backend {}", c.server, quoted(c.backend));
        }
        if (std::string error = taken(c.server); !error.empty()) return error;
      } else {
        group.replicas.erase(replica);
      }
      if (!group.primary.empty()) group.replicas.push_back(group.primary);
      group.primary = c.server;
      group.generation += 1;
      group.changed_at_ms = c.at_ms;
      return {};
    }
    case GroupChange::Kind::kAddServer: {
      if (std::string error = taken(c.server); !error.empty()) return error;
      it->second.replicas.push_back(c.server);
      return {};
    }
    case GroupChange::Kind::kRemoveServer: {
      Group& group = it->second;
      if (c.server == group.primary) {
        return fmt::format("ERR {} is the primary of backend {}; fail over to another server first",
                           c.server, quoted(c.backend));
      }
      auto replica = std::find(group.replicas.begin(), group.replicas.end(), c.server);
      if (replica == group.replicas.end()) {
        return fmt::format("ERR {} is not a replica of backend {}", c.server, quoted(c.backend));
      }
      group.replicas.erase(replica);
      return {};
    }
  }
  return "ERR unknown replica group change";
}

// ---- Encodings --------------------------------------------------------------------------------

std::string encode_change(const GroupChange& c) {
  wire::Writer w;
  w.u8(kFormat);
  w.u8(static_cast<uint8_t>(c.kind));
  w.str(c.backend);
  w.str(c.server);
  w.u32(static_cast<uint32_t>(c.replicas.size()));
  for (const std::string& r : c.replicas) w.str(r);
  w.u64(c.expected_generation);
  w.i64(c.at_ms);
  w.u8(c.sentinel ? 1 : 0);
  return w.take();
}

std::optional<GroupChange> decode_change(std::string_view bytes) {
  wire::Reader r(bytes);
  if (r.u8() != kFormat) return std::nullopt;
  GroupChange c;
  uint8_t kind = r.u8();
  if (kind < 1 || kind > 5) return std::nullopt;
  c.kind = static_cast<GroupChange::Kind>(kind);
  c.backend = r.str();
  c.server = r.str();
  uint32_t n = r.count(4);
  for (uint32_t i = 0; i < n && r.ok(); ++i) c.replicas.push_back(r.str());
  c.expected_generation = r.u64();
  c.at_ms = r.i64();
  uint8_t sentinel = r.u8();
  if (sentinel > 1 || !r.done()) return std::nullopt;
  c.sentinel = sentinel == 1;
  return c;
}

std::string ReplicationGroups::encode() const {
  wire::Writer w;
  w.u8(kFormat);
  w.u32(static_cast<uint32_t>(groups_.size()));
  for (const auto& [name, g] : groups_) {
    w.str(name);
    w.str(g.primary);
    w.u32(static_cast<uint32_t>(g.replicas.size()));
    for (const std::string& r : g.replicas) w.str(r);
    w.u64(g.generation);
    w.i64(g.changed_at_ms);
    w.u8(g.sentinel ? 1 : 0);
  }
  return w.take();
}

std::optional<ReplicationGroups> ReplicationGroups::decode(std::string_view bytes) {
  wire::Reader r(bytes);
  if (r.u8() != kFormat) return std::nullopt;
  ReplicationGroups out;
  uint32_t n = r.count(4 + 4 + 4 + 8 + 8 + 1);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    // Rebuilt through apply() so a decoded value keeps every invariant a built one has.
    std::string name = r.str();
    Group g;
    g.primary = r.str();
    uint32_t replicas = r.count(4);
    for (uint32_t k = 0; k < replicas && r.ok(); ++k) g.replicas.push_back(r.str());
    g.generation = r.u64();
    g.changed_at_ms = r.i64();
    uint8_t sentinel = r.u8();
    if (!r.ok() || sentinel > 1) return std::nullopt;
    g.sentinel = sentinel == 1;
    if (!out.apply(GroupChange::define(name, g.primary, g.replicas, g.sentinel)).empty()) {
      return std::nullopt;
    }
    Group& stored = out.groups_.at(name);
    stored.generation = g.generation;
    stored.changed_at_ms = g.changed_at_ms;
  }
  if (!r.done()) return std::nullopt;
  return out;
}

}  // namespace lockstep::failover
