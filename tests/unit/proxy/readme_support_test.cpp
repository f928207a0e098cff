// README's command support list is generated from the command table; this keeps it honest.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lockstep/proxy/command_support.h"

TEST_CASE("README command support list matches the command table", "[proxy]") {
  auto root =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
  std::ifstream f(root / "README.md");
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const std::string begin = "<!-- command-support:begin -->\n";
  const std::string end = "<!-- command-support:end -->";
  auto b = text.find(begin);
  auto e = text.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("regenerate with: build/lockstep --command-support");
  CHECK(text.substr(b + begin.size(), e - b - begin.size()) ==
        lockstep::proxy::command_support_markdown(lockstep::proxy::CommandTable::builtin()));
}
