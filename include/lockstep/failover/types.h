// Small values shared by the failover cores: the clock, server identity, replication roles and
// the commands a core asks its driver to send.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::failover {

// Milliseconds on the driver's monotonic clock. Cores never read a clock; every input that
// depends on time carries it, so tests drive them with a plain counter.
using TimeMs = int64_t;

// A Lockstep replica (the consensus NodeId; 0 = none).
using ReplicaId = uint64_t;

// A redis-server is named by its "host:port" text exactly as configured (config::HostPort::str,
// "[v6]:port" for IPv6). Two spellings of one server ("localhost:6379", "127.0.0.1:6379") are
// two names: the configuration refuses neither, so keep one spelling per server.
std::string server_address(std::string_view host, uint16_t port);
// Splits "host:port" / "[v6]:port"; false on anything else (port 1..65535).
bool split_address(std::string_view address, std::string& host, uint16_t& port);

enum class Role : uint8_t {
  kUnknown = 0,  // never answered INFO replication (or answered garbage)
  kPrimary = 1,  // role:master
  kReplica = 2,  // role:slave
};
std::string_view role_name(Role role);

// One command for the driver to send to one server, as RESP argument strings. The driver sends
// it on a control connection of its own (never a client's), with the request timeout, and
// feeds the reply back to the core that asked.
struct ServerCommand {
  std::string server;
  std::vector<std::string> args;
  bool operator==(const ServerCommand&) const = default;
};

// REPLICAOF NO ONE / REPLICAOF host port.
ServerCommand promote_command(const std::string& server);
ServerCommand replicate_command(const std::string& server, const std::string& primary);

// A reply as the switchover needs it: OK/bulk text, or an error (text without '-'), or no
// reply at all (connection failed or timed out).
struct CommandReply {
  enum class Kind : uint8_t { kOk, kError, kNoReply };
  Kind kind = Kind::kOk;
  std::string text;  // kOk: a status or bulk reply's text; kError: "ERR ..."; kNoReply: why
  static CommandReply ok(std::string text = "OK") { return {Kind::kOk, std::move(text)}; }
  static CommandReply error(std::string text) { return {Kind::kError, std::move(text)}; }
  static CommandReply no_reply(std::string why) { return {Kind::kNoReply, std::move(why)}; }
  bool is_ok() const { return kind == Kind::kOk; }
};

}  // namespace lockstep::failover
