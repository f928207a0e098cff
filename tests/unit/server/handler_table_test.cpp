// The handler table of the commands Lockstep answers itself: complete and current against the
// command table, so dispatch is one lookup that never misses a local command.
#include "server/commands/handlers.h"

#include <catch2/catch.hpp>

namespace lockstep::server {
namespace {

template <typename F>
void for_each_command(F&& f) {
  for (const proxy::CommandInfo& c : proxy::CommandTable::builtin().all()) {
    f(c);
    for (const proxy::CommandInfo& s : c.subcommands) f(s);
  }
}

TEST_CASE("every registered handler names a command of the table", "[server][dispatch]") {
  const HandlerTable& t = HandlerTable::instance();
  for (std::string_view name : t.unknown()) FAIL("handler for an unknown command: " << name);
  CHECK(t.unknown().empty());
}

TEST_CASE("every local command has a handler", "[server][dispatch]") {
  const HandlerTable& t = HandlerTable::instance();
  size_t local = 0;
  for_each_command([&](const proxy::CommandInfo& c) {
    if (c.route != proxy::Route::kLocal) return;
    ++local;
    INFO(c.name);
    CHECK(t.find(c) != nullptr);
  });
  CHECK(local > 40);  // the table did list them (connection, CLIENT, LOCK.*, pub/sub, ...)
}

TEST_CASE("a container's handler covers subcommands without their own", "[server][dispatch]") {
  const HandlerTable& t = HandlerTable::instance();
  const proxy::CommandInfo* client = proxy::CommandTable::builtin().find("client");
  REQUIRE(client != nullptr);
  const proxy::CommandInfo* kill = proxy::CommandTable::find_sub(*client, "kill");
  const proxy::CommandInfo* id = proxy::CommandTable::find_sub(*client, "id");
  REQUIRE(kill != nullptr);
  REQUIRE(id != nullptr);
  // CLIENT KILL and CLIENT ID have handlers of their own, CLIENT itself (SETINFO, unknown
  // words) another one.
  CHECK(t.find(*kill) != nullptr);
  CHECK(t.find(*id) != nullptr);
  CHECK(t.find(*kill) != t.find(*id));
  CHECK(t.find(*client) != t.find(*kill));
  // Data commands without a side effect are served by their route: no handler.
  CHECK(t.find(*proxy::CommandTable::builtin().find("get")) == nullptr);
  CHECK(t.find(*proxy::CommandTable::builtin().find("mget")) == nullptr);
}

TEST_CASE("registration of an unknown name is reported, not applied", "[server][dispatch]") {
  HandlerTable t(proxy::CommandTable::builtin());
  t.add("no-such-command", [](Client&, const Request&) {});
  t.add("client|no-such-sub", [](Client&, const Request&) {});
  REQUIRE(t.unknown().size() == 2);
  CHECK(t.unknown()[0] == "no-such-command");
}

}  // namespace
}  // namespace lockstep::server
