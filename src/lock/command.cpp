// LOCK.* argument parsing and reply encoding. Errors follow Redis' wording where Redis has one
// (wrong number of arguments, syntax error) and name the offending argument otherwise.
#include "lockstep/lock/command.h"

#include <fmt/format.h>

#include <cctype>

#include "lockstep/resp/resp.h"

namespace lockstep::lock {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

ArgError arity(std::span<const std::string_view> argv) {
  return {fmt::format("ERR wrong number of arguments for '{}' command",
                      lower(argv.empty() ? "lock" : argv[0]))};
}

std::optional<ArgError> check_name(std::string_view name) {
  if (name.empty()) return ArgError{"ERR invalid lock name: it must not be empty"};
  return std::nullopt;
}

std::optional<int64_t> ranged(std::string_view text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  if (!resp::parse_int64(text, v) || v < lo || v > hi) return std::nullopt;
  return v;
}

std::variant<int64_t, ArgError> parse_ttl(std::string_view text, const LockSettings& s) {
  const int64_t lo = min_ttl_ms(s);
  if (auto v = ranged(text, lo, s.max_ttl_ms)) return *v;
  return ArgError{fmt::format("ERR invalid ttl-ms '{}': expected an integer from {} to {}", text,
                              lo, s.max_ttl_ms)};
}

void append_error_line(std::string& out, const std::string& text) {
  resp::append_error(out, text);
}

}  // namespace

std::variant<AcquireArgs, ArgError> parse_acquire(std::span<const std::string_view> argv,
                                                  const LockSettings& settings) {
  if (argv.size() < 3) return arity(argv);
  AcquireArgs a;
  a.name.assign(argv[1]);
  if (auto e = check_name(a.name)) return *e;
  auto ttl = parse_ttl(argv[2], settings);
  if (auto* e = std::get_if<ArgError>(&ttl)) return *e;
  a.ttl_ms = std::get<int64_t>(ttl);
  bool have_owner = false;
  for (size_t i = 3; i < argv.size(); ++i) {
    if (iequals(argv[i], "WAIT") && i + 1 < argv.size() && !a.wait_ms) {
      auto w = ranged(argv[i + 1], 0, kMaxWaitMs);
      if (!w)
        return ArgError{
            fmt::format("ERR invalid WAIT '{}': expected milliseconds from 0 "
                        "(forever) to {}",
                        argv[i + 1], kMaxWaitMs)};
      a.wait_ms = *w;
      ++i;
    } else if (iequals(argv[i], "OWNER") && i + 1 < argv.size() && !have_owner) {
      if (argv[i + 1].empty()) return ArgError{"ERR invalid OWNER: it must not be empty"};
      a.owner.assign(argv[i + 1]);
      have_owner = true;
      ++i;
    } else if (iequals(argv[i], "KEEPALIVE") && !a.keepalive) {
      a.keepalive = true;
    } else {
      return ArgError{"ERR syntax error"};
    }
  }
  return a;
}

std::variant<ReleaseArgs, ArgError> parse_release(std::span<const std::string_view> argv) {
  if (argv.size() != 3) return arity(argv);
  ReleaseArgs a{std::string(argv[1]), std::string(argv[2])};
  if (auto e = check_name(a.name)) return *e;
  return a;
}

std::variant<ExtendArgs, ArgError> parse_extend(std::span<const std::string_view> argv,
                                                const LockSettings& settings) {
  if (argv.size() != 4) return arity(argv);
  ExtendArgs a{std::string(argv[1]), std::string(argv[2]), 0};
  if (auto e = check_name(a.name)) return *e;
  auto ttl = parse_ttl(argv[3], settings);
  if (auto* e = std::get_if<ArgError>(&ttl)) return *e;
  a.ttl_ms = std::get<int64_t>(ttl);
  return a;
}

std::variant<StatusArgs, ArgError> parse_status(std::span<const std::string_view> argv) {
  if (argv.size() != 2) return arity(argv);
  StatusArgs a{std::string(argv[1])};
  if (auto e = check_name(a.name)) return *e;
  return a;
}

std::variant<GuardArgs, ArgError> parse_guard(std::span<const std::string_view> argv) {
  if (argv.size() < 4) return arity(argv);
  GuardArgs a;
  a.name.assign(argv[1]);
  if (auto e = check_name(a.name)) return *e;
  auto f = ranged(argv[2], 0, kMaxFence);
  if (!f)
    return ArgError{fmt::format("ERR invalid fence '{}': expected an integer from 0 to {}", argv[2],
                                kMaxFence)};
  a.fence = *f;
  a.command = argv.subspan(3);
  return a;
}

void append_acquire_reply(std::string& out, const AcquireOutcome& outcome,
                          std::span<const std::string> names, int protocol) {
  if (const auto* g = std::get_if<Granted>(&outcome)) {
    resp::append_array_header(out, 3);
    resp::append_bulk(out, g->token);
    resp::append_integer(out, g->fence);
    resp::append_integer(out, g->validity_ms);
  } else if (std::holds_alternative<Busy>(outcome)) {
    resp::append_null(out, protocol);
  } else if (const auto* nq = std::get_if<NoQuorum>(&outcome)) {
    append_error_line(out, error_text(*nq, names));
  } else if (const auto* e = std::get_if<LockError>(&outcome)) {
    append_error_line(out, error_text(*e, names));
  }
}

void append_release_reply(std::string& out, const ReleaseOutcome& outcome,
                          std::span<const std::string> names, int) {
  if (std::holds_alternative<Released>(outcome)) {
    resp::append_integer(out, 1);
  } else if (std::holds_alternative<NotHeld>(outcome)) {
    resp::append_integer(out, 0);
  } else if (const auto* nq = std::get_if<NoQuorum>(&outcome)) {
    append_error_line(out, error_text(*nq, names));
  } else if (const auto* e = std::get_if<LockError>(&outcome)) {
    append_error_line(out, error_text(*e, names));
  }
}

void append_extend_reply(std::string& out, const ExtendOutcome& outcome,
                         std::span<const std::string> names, int) {
  if (const auto* x = std::get_if<Extended>(&outcome)) {
    resp::append_integer(out, x->validity_ms);
  } else if (std::holds_alternative<NotHeld>(outcome)) {
    resp::append_integer(out, 0);
  } else if (const auto* nq = std::get_if<NoQuorum>(&outcome)) {
    append_error_line(out, error_text(*nq, names));
  } else if (const auto* e = std::get_if<LockError>(&outcome)) {
    append_error_line(out, error_text(*e, names));
  }
}

void append_status_reply(std::string& out, const StatusOutcome& outcome, size_t waiters,
                         std::span<const std::string> names, int protocol) {
  if (const auto* st = std::get_if<LockStatus>(&outcome)) {
    resp::append_map_header(out, 4, protocol);
    resp::append_bulk(out, "held");
    resp::append_integer(out, st->held ? 1 : 0);
    resp::append_bulk(out, "fence");
    resp::append_integer(out, st->fence);
    resp::append_bulk(out, "ttl-ms");
    resp::append_integer(out, st->ttl_ms);
    resp::append_bulk(out, "waiters");
    resp::append_integer(out, static_cast<int64_t>(waiters));
  } else if (const auto* nq = std::get_if<NoQuorum>(&outcome)) {
    append_error_line(out, error_text(*nq, names));
  } else if (const auto* e = std::get_if<LockError>(&outcome)) {
    append_error_line(out, error_text(*e, names));
  }
}

}  // namespace lockstep::lock
