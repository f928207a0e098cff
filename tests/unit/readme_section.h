// The text between README's `<!-- <marker>:begin -->` and `<!-- <marker>:end -->` lines, for
// tests that keep README's generated sections equal to what the binary generates.
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

inline std::optional<std::string> readme_section(const std::string& marker) {
  // __FILE__ may read ".../tests/unit/config/../readme_section.h": canonicalize first.
  const auto root =
      std::filesystem::weakly_canonical(__FILE__).parent_path().parent_path().parent_path();
  std::ifstream f(root / "README.md");
  if (!f.good()) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const std::string begin = "<!-- " + marker + ":begin -->\n";
  const std::string end = "<!-- " + marker + ":end -->";
  const auto b = text.find(begin);
  const auto e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) return std::nullopt;
  return text.substr(b + begin.size(), e - b - begin.size());
}
