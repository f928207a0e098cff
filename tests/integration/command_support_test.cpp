// Walks README's command support list (generated from the command table) against a running
// Lockstep: every command listed as refused answers exactly its reason, and every command
// listed as supported reaches a handler or a backend (its reply may be Redis' own error for the
// placeholder arguments, but never "unknown command" nor a refusal).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>

#include "lockstep/proxy/command_support.h"
#include "support/harness.h"

using namespace lockstep::test;
using lockstep::proxy::CommandInfo;
using lockstep::proxy::CommandTable;
using lockstep::proxy::Route;

namespace {

std::vector<std::string> placeholder_request(const CommandInfo& c) {
  std::vector<std::string> argv;
  std::string name(c.name);
  size_t bar = name.find('|');
  if (bar == std::string::npos) {
    argv.push_back(name);
  } else {
    argv.push_back(name.substr(0, bar));
    argv.push_back(name.substr(bar + 1));
  }
  const size_t need = static_cast<size_t>(c.arity < 0 ? -c.arity : c.arity);
  while (argv.size() < need) argv.push_back("x");
  for (auto& a : argv)
    for (char& ch : a) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (size_t i = bar == std::string::npos ? 1 : 2; i < argv.size(); ++i) argv[i] = "x";
  return argv;
}

}  // namespace

TEST_CASE("every command in the support list behaves as listed", "[integration][issue3][support]") {
  Cluster cluster;
  size_t refused = 0, served = 0;
  auto check = [&](const CommandInfo& c) {
    if (c.route == Route::kContainer) return;
    const auto argv = placeholder_request(c);
    RawConn conn(cluster.port());
    REQUIRE(conn.send(encode_command(argv)));
    auto reply = conn.read_raw_reply(5s);
    INFO(c.name << " sent as " << encode_command(argv));
    REQUIRE(reply.has_value());
    std::string note;
    if (lockstep::proxy::support_of(c, note) == lockstep::proxy::Support::kRefused) {
      ++refused;
      CHECK(*reply == "-ERR " + note + "\r\n");
    } else {
      ++served;
      INFO("reply: " << *reply);
      CHECK(reply->rfind("-ERR unknown command", 0) != 0);
      CHECK(reply->find("not supported by Lockstep") == std::string::npos);
      CHECK(reply->find("refused by Lockstep") == std::string::npos);
      CHECK(reply->find("no local handler") == std::string::npos);
    }
  };
  for (const CommandInfo& c : CommandTable::builtin().all()) {
    if (c.subcommands.empty() || c.route == Route::kLocal) check(c);
    for (const CommandInfo& s : c.subcommands) check(s);
  }
  std::printf("command support walk: %zu served, %zu refused\n", served, refused);
  CHECK(served > 200);
  // The proxy is still healthy afterwards.
  Client c = cluster.client();
  CHECK(c("PING") == Reply::status("PONG"));
}
