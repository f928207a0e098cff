// README's command support list is generated from the command table; this keeps it honest.
#include <catch2/catch.hpp>

#include "../readme_section.h"
#include "lockstep/proxy/command_support.h"

TEST_CASE("README command support list matches the command table", "[proxy]") {
  const auto section = readme_section("command-support");
  REQUIRE(section);
  INFO("regenerate with: scripts/update-readme");
  CHECK(*section ==
        lockstep::proxy::command_support_markdown(lockstep::proxy::CommandTable::builtin()));
}
