// The command support list in README ("supported / with a restriction / refused, and why"),
// generated from the same command table that routes requests, so the list cannot drift from
// what the proxy does. `lockstep --command-support` prints it; a unit test compares README.
#pragma once

#include <string>
#include <string_view>

#include "lockstep/proxy/command_table.h"

namespace lockstep::proxy {

enum class Support { kSupported, kRestricted, kRefused };

// How Lockstep serves `cmd`, and the restriction or reason ("" when plainly supported).
Support support_of(const CommandInfo& cmd, std::string& note);

// The Redis command group a command belongs to, from its ACL categories.
std::string_view command_group(const CommandInfo& cmd);

std::string command_support_markdown(const CommandTable& table);

}  // namespace lockstep::proxy
