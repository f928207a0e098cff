#include "server/commands/handlers.h"

namespace lockstep::server {

HandlerTable::HandlerTable(const proxy::CommandTable& table)
    : table_(table), by_id_(table.id_count(), nullptr) {}

void HandlerTable::add(std::string_view name, Handler h) {
  const size_t bar = name.find('|');
  const proxy::CommandInfo* top = table_.find(name.substr(0, bar));
  const proxy::CommandInfo* cmd = top == nullptr || bar == std::string_view::npos
                                      ? top
                                      : proxy::CommandTable::find_sub(*top, name.substr(bar + 1));
  if (cmd == nullptr) {
    unknown_.push_back(name);
    return;
  }
  by_id_[cmd->id] = h;
  if (bar != std::string_view::npos) return;
  for (const proxy::CommandInfo& sub : cmd->subcommands)
    if (by_id_[sub.id] == nullptr) by_id_[sub.id] = h;
}

void reply_help(Client& c, std::span<const std::string_view> lines) {
  std::string out;
  resp::append_array_header(out, static_cast<int64_t>(lines.size()));
  for (auto line : lines) resp::append_simple(out, line);
  c.reply(out);
}

const HandlerTable& HandlerTable::instance() {
  static const HandlerTable table = [] {
    HandlerTable t(proxy::CommandTable::builtin());
    register_connection_commands(t);
    register_client_commands(t);
    register_info_commands(t);
    register_scan_commands(t);
    register_slowlog_commands(t);
    register_latency_commands(t);
    register_monitor_commands(t);
    register_pubsub_commands(t);
    register_script_commands(t);
    register_keyspace_commands(t);
    register_wait_commands(t);
    register_lock_commands(t);
    register_lockstep_commands(t);
    register_transaction_commands(t);
    return t;
  }();
  return table;
}

}  // namespace lockstep::server
