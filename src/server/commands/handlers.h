// The commands Lockstep answers (or shapes) itself, as a table indexed by the command table's
// dense ids: dispatch is one lookup, not a chain of name compares. Each command family
// registers its handlers from its own file (commands/<family>.cpp); the routing policy (which
// commands are local, split, fanned out, refused) stays in src/proxy/command_routes.cpp.
//
// A handler receives the routed request. Commands without a handler are served by their route
// (Client::serve_by_route); a handler that only adds a side effect (EVAL learning its script,
// FLUSHALL keeping Lockstep's keys) ends by calling serve_by_route itself.
#pragma once

#include <string_view>
#include <vector>

#include "lockstep/proxy/command_table.h"
#include "server/net/client.h"

namespace lockstep::server {

using Handler = void (*)(Client&, const Request&);

class HandlerTable {
 public:
  // The table of the built-in command table, built once.
  static const HandlerTable& instance();

  Handler find(const proxy::CommandInfo& cmd) const { return by_id_[cmd.id]; }

  // Registration (at build time only). `name` is a command or "parent|sub"; a container name
  // ("client") also covers its subcommands that have no handler of their own.
  void add(std::string_view name, Handler h);

  explicit HandlerTable(const proxy::CommandTable& table);
  // Names registered that the command table does not know (a unit test keeps it empty).
  const std::vector<std::string_view>& unknown() const { return unknown_; }

 private:
  const proxy::CommandTable& table_;
  std::vector<Handler> by_id_;
  std::vector<std::string_view> unknown_;
};

// A HELP subcommand's reply: one status line per element, as Redis formats them.
void reply_help(Client& c, std::span<const std::string_view> lines);

// One per family, each in its own file.
void register_connection_commands(HandlerTable& t);   // connection.cpp
void register_client_commands(HandlerTable& t);       // client.cpp
void register_info_commands(HandlerTable& t);         // info.cpp
void register_scan_commands(HandlerTable& t);         // scan.cpp
void register_slowlog_commands(HandlerTable& t);      // slowlog.cpp
void register_latency_commands(HandlerTable& t);      // latency.cpp
void register_monitor_commands(HandlerTable& t);      // monitor.cpp
void register_pubsub_commands(HandlerTable& t);       // pubsub.cpp
void register_script_commands(HandlerTable& t);       // scripts.cpp
void register_keyspace_commands(HandlerTable& t);     // keyspace.cpp
void register_wait_commands(HandlerTable& t);         // wait.cpp
void register_lock_commands(HandlerTable& t);         // lock.cpp
void register_lockstep_commands(HandlerTable& t);     // lockstep.cpp
void register_transaction_commands(HandlerTable& t);  // transaction.cpp

}  // namespace lockstep::server
