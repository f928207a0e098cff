#include "lockstep/failover/types.h"

#include <fmt/format.h>

#include <charconv>

namespace lockstep::failover {

std::string server_address(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

bool split_address(std::string_view address, std::string& host, uint16_t& port) {
  std::string_view h;
  std::string_view p;
  if (address.starts_with('[')) {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return false;
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;
  }
  if (h.empty() || p.empty() || p.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc{} || end != p.data() + p.size() || value < 1 || value > 65535) return false;
  host = std::string(h);
  port = static_cast<uint16_t>(value);
  return true;
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kPrimary:
      return "primary";
    case Role::kReplica:
      return "replica";
    case Role::kUnknown:
      break;
  }
  return "unknown";
}

ServerCommand promote_command(const std::string& server) {
  return {server, {"REPLICAOF", "NO", "ONE"}};
}

ServerCommand replicate_command(const std::string& server, const std::string& primary) {
  std::string host;
  uint16_t port = 0;
  // Addresses come from the validated configuration; an unsplittable one is a programming error
  // that the command itself will surface (REPLICAOF with a bad port is refused by the server).
  if (!split_address(primary, host, port)) return {server, {"REPLICAOF", primary, "0"}};
  return {server, {"REPLICAOF", host, std::to_string(port)}};
}

}  // namespace lockstep::failover
