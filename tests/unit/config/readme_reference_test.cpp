// README's configuration reference is generated from the schema; this keeps it from drifting.
#include <catch2/catch.hpp>

#include "../readme_section.h"
#include "lockstep/config/config.h"

TEST_CASE("README configuration reference matches the schema", "[config]") {
  const auto section = readme_section("config-reference");
  REQUIRE(section);
  INFO("regenerate with: scripts/update-readme");
  CHECK(*section == lockstep::config::reference_markdown());
}
