// A few redis-servers in one value, for the failover executor tests: roles, masters, offsets,
// CLIENT PAUSE WRITE, and the INFO replication text real servers send (so the parser is on the
// path). Replication is one call (replicate()): every replica whose master is alive and whose
// link is up copies its master's offset, as a replica does within a round trip.
#pragma once

#include <lockstep/failover/types.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>

namespace lockstep::failover::test {

class FakeRedis {
 public:
  struct Server {
    bool alive = true;
    Role role = Role::kPrimary;
    std::string master;
    int64_t offset = 0;
    TimeMs paused_until = 0;  // CLIENT PAUSE WRITE holds writes until then
    int commands = 0;         // role-changing commands executed (REPLICAOF)
    bool slow = false;        // a replica that receives nothing (a slow link) until cleared
  };

  void primary(const std::string& address, int64_t offset = 0) {
    servers[address] = Server{true, Role::kPrimary, "", offset, 0, 0, false};
  }
  void replica(const std::string& address, const std::string& master, int64_t offset = 0) {
    servers[address] = Server{true, Role::kReplica, master, offset, 0, 0, false};
  }

  // A client write of `bytes` on `address`: false if refused (dead, replica, paused).
  bool write(const std::string& address, int64_t bytes, TimeMs now) {
    Server& s = servers.at(address);
    if (!s.alive || s.role != Role::kPrimary || now < s.paused_until) return false;
    s.offset += bytes;
    return true;
  }

  void replicate() {
    // Twice, so a chained replica catches up within one call as well.
    for (int pass = 0; pass < 2; ++pass) {
      for (auto& [address, s] : servers) {
        if (!s.alive || s.slow || s.role != Role::kReplica) continue;
        auto m = servers.find(s.master);
        if (m == servers.end() || !m->second.alive) continue;
        s.offset = m->second.offset;
      }
    }
  }

  bool link_up(const Server& s) const {
    auto m = servers.find(s.master);
    return m != servers.end() && m->second.alive;
  }

  std::string info(const std::string& address) const {
    const Server& s = servers.at(address);
    if (s.role == Role::kPrimary) {
      return fmt::format(
          "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
          "master_replid:abc\r\nmaster_repl_offset:{}\r\n",
          s.offset);
    }
    std::string host;
    uint16_t port = 0;
    split_address(s.master, host, port);
    return fmt::format(
        "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\n"
        "master_link_status:{}\r\nslave_repl_offset:{}\r\nmaster_repl_offset:{}\r\n",
        host, port, link_up(s) ? "up" : "down", s.offset, s.offset);
  }

  CommandReply execute(const ServerCommand& c, TimeMs now) {
    auto it = servers.find(c.server);
    if (it == servers.end() || !it->second.alive) return CommandReply::no_reply("refused");
    Server& s = it->second;
    const auto& a = c.args;
    if (a.size() == 2 && a[0] == "INFO" && a[1] == "replication")
      return CommandReply::ok(info(c.server));
    if (a.size() == 3 && a[0] == "REPLICAOF" && a[1] == "NO" && a[2] == "ONE") {
      s.role = Role::kPrimary;
      s.master.clear();
      ++s.commands;
      return CommandReply::ok();
    }
    if (a.size() == 3 && a[0] == "REPLICAOF") {
      std::string master = server_address(a[1], static_cast<uint16_t>(std::stoi(a[2])));
      if (s.role == Role::kReplica && s.master == master) {
        return CommandReply::ok("OK Already connected to specified master");
      }
      s.role = Role::kReplica;
      s.master = master;
      ++s.commands;
      return CommandReply::ok();
    }
    if (a.size() == 4 && a[0] == "CLIENT" && a[1] == "PAUSE" && a[3] == "WRITE") {
      // A later end extends the pause, an earlier one does not shorten it (Redis' rule).
      s.paused_until = std::max<TimeMs>(s.paused_until, now + std::stoll(a[2]));
      return CommandReply::ok();
    }
    if (a.size() == 2 && a[0] == "CLIENT" && a[1] == "UNPAUSE") {
      s.paused_until = 0;
      return CommandReply::ok();
    }
    return CommandReply::error("ERR unknown command in FakeRedis");
  }

  std::map<std::string, Server> servers;
};

}  // namespace lockstep::failover::test
