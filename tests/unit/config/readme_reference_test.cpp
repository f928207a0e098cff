// README's configuration reference is generated from the schema; this keeps it from drifting.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lockstep/config/config.h"

TEST_CASE("README configuration reference matches the schema", "[config]") {
  auto root =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
  std::ifstream f(root / "README.md");
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const std::string begin = "<!-- config-reference:begin -->\n";
  const std::string end = "<!-- config-reference:end -->";
  auto b = text.find(begin);
  auto e = text.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("regenerate with: build/lockstep --config-reference");
  CHECK(text.substr(b + begin.size(), e - b - begin.size()) ==
        lockstep::config::reference_markdown());
}
