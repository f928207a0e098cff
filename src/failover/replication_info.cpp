// INFO replication parsing; see replication_info.h for what is read and why strictly.
#include "lockstep/failover/replication_info.h"

#include <fmt/format.h>

#include <charconv>

namespace lockstep::failover {
namespace {

std::optional<int64_t> to_int(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<uint16_t> to_port(std::string_view text) {
  std::optional<int64_t> value = to_int(text);
  if (!value || *value < 1 || *value > 65535) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

bool is_replica_key(std::string_view key) {
  if (!key.starts_with("slave") || key.size() == 5) return false;
  for (char c : key.substr(5)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "ip=10.0.0.2,port=6379,state=online,offset=123,lag=0"
std::optional<ReplicaLine> parse_replica_line(std::string_view value) {
  ReplicaLine line;
  bool have_ip = false;
  bool have_port = false;
  bool have_offset = false;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view field = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view name = field.substr(0, eq);
    std::string_view text = field.substr(eq + 1);
    if (name == "ip") {
      if (text.empty()) return std::nullopt;
      line.ip = std::string(text);
      have_ip = true;
    } else if (name == "port") {
      std::optional<uint16_t> port = to_port(text);
      if (!port) return std::nullopt;
      line.port = *port;
      have_port = true;
    } else if (name == "state") {
      line.state = std::string(text);
    } else if (name == "offset") {
      std::optional<int64_t> offset = to_int(text);
      if (!offset) return std::nullopt;
      line.offset = *offset;
      have_offset = true;
    } else if (name == "lag") {
      std::optional<int64_t> lag = to_int(text);
      if (!lag) return std::nullopt;
      line.lag_s = *lag;
    }
  }
  if (!have_ip || !have_port || !have_offset) return std::nullopt;
  return line;
}

ParsedReplicationInfo failure(std::string_view key, std::string_view value) {
  // The value is shown clipped: it comes from a server and ends up in logs.
  std::string_view shown = value.substr(0, 64);
  return {std::nullopt, fmt::format("ERR malformed INFO replication field {}: '{}'", key, shown)};
}

}  // namespace

std::string ReplicationInfo::master_address() const {
  if (role != Role::kReplica) return {};
  return server_address(master_host, master_port);
}

int64_t ReplicationInfo::offset() const {
  switch (role) {
    case Role::kPrimary:
      return master_repl_offset;
    case Role::kReplica:
      return replica_offset;
    case Role::kUnknown:
      break;
  }
  return -1;
}

ParsedReplicationInfo parse_replication_info(std::string_view text) {
  ReplicationInfo info;
  bool have_role = false;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a field of ours
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);

    if (key == "role") {
      if (value == "master") {
        info.role = Role::kPrimary;
      } else if (value == "slave" || value == "replica") {
        info.role = Role::kReplica;
      } else {
        return failure(key, value);
      }
      have_role = true;
    } else if (key == "master_host") {
      if (value.empty()) return failure(key, value);
      info.master_host = std::string(value);
    } else if (key == "master_port") {
      std::optional<uint16_t> port = to_port(value);
      if (!port) return failure(key, value);
      info.master_port = *port;
    } else if (key == "master_link_status") {
      if (value != "up" && value != "down") return failure(key, value);
      info.master_link_up = value == "up";
    } else if (key == "master_sync_in_progress") {
      if (value != "0" && value != "1") return failure(key, value);
      info.sync_in_progress = value == "1";
    } else if (key == "master_replid") {
      info.replid = std::string(value);
    } else if (is_replica_key(key)) {
      std::optional<ReplicaLine> replica = parse_replica_line(value);
      if (!replica) return failure(key, value);
      info.replicas.push_back(std::move(*replica));
    } else {
      int64_t* target = key == "master_last_io_seconds_ago"       ? &info.master_last_io_s
                        : key == "master_link_down_since_seconds" ? &info.master_link_down_since_s
                        : key == "slave_repl_offset"              ? &info.replica_offset
                        : key == "master_repl_offset"             ? &info.master_repl_offset
                                                                  : nullptr;
      if (key == "connected_slaves") {
        std::optional<int64_t> count = to_int(value);
        if (!count || *count < 0 || *count > 1000000) return failure(key, value);
        info.connected_replicas = static_cast<int>(*count);
      } else if (target != nullptr) {
        std::optional<int64_t> number = to_int(value);
        if (!number) return failure(key, value);
        *target = *number;
      }
    }
  }
  if (!have_role) return {std::nullopt, "ERR INFO replication reply has no role field"};
  if (info.role == Role::kReplica && (info.master_host.empty() || info.master_port == 0)) {
    return {std::nullopt, "ERR INFO replication: a replica without master_host/master_port"};
  }
  if (info.role == Role::kPrimary) {
    // Fields a primary does not have are cleared, so a server that used to be a replica (and
    // INFO text mixing sections) cannot leave a stale master behind.
    info.master_host.clear();
    info.master_port = 0;
    info.master_link_up = false;
  }
  return {std::move(info), {}};
}

}  // namespace lockstep::failover
