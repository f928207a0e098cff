// Lockstep's log: spdlog's default logger, to stderr or to `log.file`, one line per event as
// text (for people) or JSON (one object per line, for collectors).
//
// - JSON lines are valid JSON whatever the message holds (quotes, backslashes, control bytes
//   are escaped).
// - Lines about a failed request carry structured fields: a request id from a per-process
//   counter, the client id and the command (`request_id=7 client=12 command=get` in text,
//   "request_id":7,... in JSON), so one failure can be followed across the log.
// - SIGHUP reopens `log.file` by name (reopen_log_file()), so logrotate can move the file away
//   and the next line goes to a new file at the configured path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lockstep/config/config.h"

namespace lockstep::admin {

// Installs the default logger. On failure prints why to stderr and returns false.
bool setup_logging(const config::LogConfig& log);

// Reopens the log file at its configured path (no-op when logging to stderr). Thread-safe: a
// line being written finishes in the old file first. False (and an error line to stderr) when
// the file cannot be opened; logging then continues in the old file.
bool reopen_log_file();

// A new request id: unique within this process, increasing.
uint64_t next_request_id();

// An error-level line about one request, with its fields.
void log_request_error(uint64_t request_id, uint64_t client_id, std::string_view command,
                       std::string_view message);

// JSON string escaping (without the quotes), as used for the "msg" field.
std::string json_escape(std::string_view text);

}  // namespace lockstep::admin
