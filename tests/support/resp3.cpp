#include "support/resp3.h"

#include <catch2/catch.hpp>

#include "support/compare.h"

namespace lockstep::test {

std::string raw_call(RawConn& conn, const std::vector<std::string>& argv, Millis timeout) {
  if (!conn.send(encode_command(argv), timeout)) return "<send failed>";
  return conn.read_raw_reply(timeout).value_or("<no reply>");
}

std::string escape_bytes(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Reply parse_raw(std::string_view bytes) {
  size_t consumed = 0;
  Reply r;
  if (parse_reply(bytes, consumed, r) != ParseStatus::kOk || consumed != bytes.size()) {
    return Reply::io_error("not one RESP reply: " + escape_bytes(bytes));
  }
  return r;
}

std::map<std::string, Reply> hello_fields(const Reply& reply) {
  std::map<std::string, Reply> out;
  if (reply.type != Reply::Type::kMap && reply.type != Reply::Type::kArray) return out;
  if (reply.elements.size() % 2 != 0) return out;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    if (!reply.elements[i].is_string()) return {};
    out[reply.elements[i].str] = reply.elements[i + 1];
  }
  return out;
}

std::optional<std::string> info_field(std::string_view text, std::string_view name) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      return std::string(line.substr(name.size() + 1));
    }
    pos = eol + 1;
  }
  return std::nullopt;
}

long long info_int(Client& client, const std::string& section, std::string_view name) {
  Reply r = client("INFO", section);
  if (!r.is_string()) return -1;
  auto v = info_field(r.str, name);
  if (!v || v->empty()) return -1;
  try {
    size_t used = 0;
    long long n = std::stoll(*v, &used);
    return used == v->size() ? n : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

std::string RawCompare::run(const std::vector<std::string>& argv, bool expect_error) {
  const std::string expected = raw_call(reference_, argv);
  const std::string actual = raw_call(proxy_, argv);
  INFO("command: " << show(argv));
  INFO("redis-server: " << escape_bytes(expected));
  INFO("lockstep:     " << escape_bytes(actual));
  const bool reference_error = !expected.empty() && (expected[0] == '-' || expected[0] == '!');
  if (expect_error) {
    CHECK(reference_error);
  } else {
    CHECK_FALSE(reference_error);
  }
  CHECK(actual == expected);
  return actual;
}

std::string RawCompare::same(const std::vector<std::string>& argv) {
  return run(argv, false);
}

std::string RawCompare::same_error(const std::vector<std::string>& argv) {
  return run(argv, true);
}

Reply RawCompare::same_unordered(const std::vector<std::string>& argv) {
  const std::string expected_raw = raw_call(reference_, argv);
  const std::string actual_raw = raw_call(proxy_, argv);
  INFO("command: " << show(argv));
  INFO("redis-server: " << escape_bytes(expected_raw));
  INFO("lockstep:     " << escape_bytes(actual_raw));
  const Reply expected = parse_raw(expected_raw);
  const Reply actual = parse_raw(actual_raw);
  CHECK_FALSE(expected.is_error());
  CHECK(actual.type == expected.type);
  CHECK(actual.sorted() == expected.sorted());
  return actual;
}

Reply RawCompare::hello(const std::vector<std::string>& argv) {
  const std::string expected_raw = raw_call(reference_, argv);
  const std::string actual_raw = raw_call(proxy_, argv);
  INFO("command: " << show(argv));
  INFO("redis-server: " << escape_bytes(expected_raw));
  INFO("lockstep:     " << escape_bytes(actual_raw));
  const Reply expected = parse_raw(expected_raw);
  const Reply actual = parse_raw(actual_raw);
  REQUIRE_FALSE(expected.is_error());
  // Same aggregate header (%7 for RESP3, *14 for RESP2).
  CHECK(actual_raw.substr(0, actual_raw.find('\r')) ==
        expected_raw.substr(0, expected_raw.find('\r')));
  CHECK(actual.type == expected.type);
  REQUIRE(actual.elements.size() == expected.elements.size());
  for (size_t i = 0; i < expected.elements.size(); i += 2) {
    INFO("field " << expected.elements[i]);
    CHECK(actual.elements[i] == expected.elements[i]);
    const std::string& name = expected.elements[i].str;
    if (name == "version") {
      CHECK(actual.elements[i + 1].is_string());
    } else if (name == "id") {
      CHECK(actual.elements[i + 1].is_integer());
    } else {
      CHECK(actual.elements[i + 1] == expected.elements[i + 1]);
    }
  }
  return actual;
}

}  // namespace lockstep::test
