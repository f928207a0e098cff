// What the data plane routes by: the backends and the slot map. A Topology is immutable and
// replaced as a whole when the replicated configuration changes it (ClusterService builds a new
// one and hands it to every worker); requests in flight keep the one they were routed by.
// Backends are only ever appended: an index names the same backend in every later topology.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/config/config.h"
#include "lockstep/proxy/slot_map.h"

namespace lockstep::server {

struct BackendInfo {
  std::string name;
  std::string address;  // host:port as configured
  config::BackendConfig cfg;
  sockaddr_storage sockaddr{};  // resolved once, when the topology is built
};

// Per-backend arrays that other threads read (statistics) are allocated for this many backends
// once, so a backend added at runtime (replicated configuration) never moves them.
inline constexpr size_t kMaxBackends = 256;

struct Topology {
  std::vector<BackendInfo> backends;
  proxy::SlotMap slots;
  uint64_t epoch = 1;
};

// host:port to a socket address (getaddrinfo); false with `error` set.
bool resolve_address(const config::HostPort& hp, sockaddr_storage& out, std::string& error);

}  // namespace lockstep::server
