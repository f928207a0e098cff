// The configuration schema: one row per key. The loader, dump() and reference_markdown() all
// read this table, so a key's bounds, default and documentation cannot disagree between them.
// Private to src/config (and its unit tests).
#pragma once

#include <lockstep/config/config.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lockstep::config::schema {

enum class Kind {
  kInteger,    // plain decimal integer within [min, max]
  kBytes,      // like kInteger, or a Redis-style size: "512kb", "64mb", "1gb" (k/m/g = 1000^n)
  kString,     // min = minimum length
  kSecret,     // a string that dump() redacts
  kChoice,     // one of `choices` (case-insensitive on input)
  kAddress,    // "host:port", "[v6]:port"
  kBackends,   // the backend list; its items are the "backends[]." rows
  kSlots,      // the slot map; its items are the "slots[]." rows
  kSlotRange,  // "from-to" or a single slot
  kUsers,      // the user list; its items are the "users[]." rows
  kDouble,     // a real number within `real` (plain decimal or exponent form; no inf or nan)
  kNames,      // a list of distinct non-empty strings, at least `min` of them; null = default
  kPeers,      // a map of replica id (1..) -> host:port
  kAddresses,  // a list of distinct host:port; null = empty
};

// Bounds of a kDouble key. The upper bound may be open ("x < 0.5") because for reals there is
// no largest value below a limit to write down as an inclusive bound.
struct RealRange {
  double min = 0;
  double max = 0;
  bool max_open = false;  // true: value < max; false: value <= max
};

// Where a key's value lives. Function pointers (from captureless lambdas) rather than member
// pointers, because member pointers cannot reach into nested structs such as Config::timeouts.
using Binding =
    std::variant<std::monostate, int& (*)(Config&), int64_t& (*)(Config&),
                 std::string& (*)(Config&), HostPort& (*)(Config&), double& (*)(Config&),
                 std::vector<std::string>& (*)(Config&), int& (*)(BackendConfig&),
                 std::string& (*)(BackendConfig&), HostPort& (*)(BackendConfig&),
                 std::vector<HostPort>& (*)(BackendConfig&), std::string& (*)(SlotRange&),
                 std::string& (*)(UserConfig&)>;

struct Key {
  std::string_view path;  // "timeouts.request_ms"; list items are "backends[].db"
  Kind kind;
  Binding field;
  // kInteger, kBytes: smallest value; kString: length; kNames: item count; kAddress: 0 when ""
  // (off) is allowed
  int64_t min = 0;
  int64_t max = 0;
  std::string_view choices;  // kChoice: "a|b|c"
  bool required = false;
  std::string_view default_note;  // replaces the struct's default in the reference when set
  std::string_view doc;
  RealRange real;  // kDouble only
};

inline constexpr int kSlotCount = 16384;
inline constexpr std::string_view kRedacted = "<redacted>";

std::span<const Key> keys();
const Key* find(std::string_view path);
std::vector<std::string_view> choices(const Key& key);

// Scalar conversions shared by the loader and the tests. All reject anything but the exact
// syntax (no hex, no trailing garbage; the integer forms take no fractions).
std::optional<int64_t> parse_integer(std::string_view text);
std::optional<int64_t> parse_bytes(std::string_view text);
std::string format_bytes(int64_t value);  // "64mb" when exact, else plain digits
// A YAML 1.2 core-schema float written out in digits: [-+]?(.d+|d+(.d*)?)([eE][-+]?d+)?, so
// "0", "0.01", ".5", "5.", "1e-3" and "+0.5". Not ".inf", ".nan", "inf", "nan", "0x1p-3",
// "1_000" or "1e": a config value must be a finite number a reader can see. -0 reads as 0.
std::optional<double> parse_real(std::string_view text);
// The shortest text parse_real() reads back to the same double ("0.01", "1e-07").
std::string format_real(double value);

// YAML rendering for dump(): a double-quoted scalar that yaml-cpp reads back byte for byte.
std::string quote(std::string_view text);

// The value of `key` in `target` rendered as YAML, or nullopt when the key does not bind into T.
std::optional<std::string> render(const Key& key, Config& target);
std::optional<std::string> render(const Key& key, BackendConfig& target);
std::optional<std::string> render(const Key& key, SlotRange& target);
std::optional<std::string> render(const Key& key, UserConfig& target);

std::string type_text(const Key& key);     // "integer 1..3600000", for the reference
std::string default_text(const Key& key);  // the struct default, or default_note

// Levenshtein distance, case-insensitive; for "did you mean" hints.
int edit_distance(std::string_view a, std::string_view b);

}  // namespace lockstep::config::schema
