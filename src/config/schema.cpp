#include "config/schema.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

namespace lockstep::config::schema {
namespace {

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;
constexpr int64_t kGiB = 1024 * kMiB;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

constexpr Key integer(std::string_view path, Binding field, int64_t min, int64_t max,
                      std::string_view doc) {
  return Key{path, Kind::kInteger, field, min, max, {}, false, {}, doc, {}};
}
constexpr Key bytes(std::string_view path, Binding field, int64_t min, int64_t max,
                    std::string_view doc) {
  return Key{path, Kind::kBytes, field, min, max, {}, false, {}, doc, {}};
}
constexpr Key text(std::string_view path, Binding field, int64_t min_length, std::string_view doc) {
  return Key{path, Kind::kString, field, min_length, 0, {}, false, {}, doc, {}};
}
constexpr Key secret(std::string_view path, Binding field, std::string_view doc) {
  return Key{path, Kind::kSecret, field, 0, 0, {}, false, {}, doc, {}};
}
constexpr Key choice(std::string_view path, Binding field, std::string_view choices,
                     std::string_view doc) {
  return Key{path, Kind::kChoice, field, 0, 0, choices, false, {}, doc, {}};
}
constexpr Key address(std::string_view path, Binding field, std::string_view doc) {
  return Key{path, Kind::kAddress, field, 1, 0, {}, false, {}, doc, {}};
}
// An address that may be "" (the feature it enables is off).
constexpr Key optional_address(std::string_view path, Binding field, std::string_view doc) {
  return Key{path, Kind::kAddress, field, 0, 0, {}, false, {}, doc, {}};
}
constexpr Key real(std::string_view path, Binding field, RealRange range, std::string_view doc) {
  return Key{path, Kind::kDouble, field, 0, 0, {}, false, {}, doc, range};
}
constexpr Key names(std::string_view path, Binding field, int64_t min_items, std::string_view doc) {
  return Key{path, Kind::kNames, field, min_items, 0, {}, false, {}, doc, {}};
}
constexpr Key addresses(std::string_view path, Binding field, std::string_view doc) {
  return Key{path, Kind::kAddresses, field, 0, 0, {}, false, {}, doc, {}};
}
// Keys the loader parses by hand (lists and slot ranges): no binding, maybe a default note.
constexpr Key special(std::string_view path, Kind kind, std::string_view default_note,
                      std::string_view doc) {
  return Key{path, kind, {}, 0, 0, {}, false, default_note, doc, {}};
}
constexpr Key required(Key key) {
  key.required = true;
  return key;
}
constexpr Key noted(std::string_view note, Key key) {
  key.default_note = note;
  return key;
}

// Stringifying the member expression makes the YAML path and the struct field the same token,
// so a row cannot name one key and bind another.
#define LS_CONFIG(member)             \
#member, +[](Config & c) -> auto& { \
    return c.member;                  \
  }
#define LS_BACKEND(member)                                 \
  "backends[]." #member, +[](BackendConfig & b) -> auto& { \
    return b.member;                                       \
  }
#define LS_SLOT(member)                             \
  "slots[]." #member, +[](SlotRange & s) -> auto& { \
    return s.member;                                \
  }
#define LS_USER(member)                              \
  "users[]." #member, +[](UserConfig & u) -> auto& { \
    return u.member;                                 \
  }

// Order matters: dump() and the reference follow it, and each section must be contiguous.
constexpr Key kKeys[] = {
    address(LS_CONFIG(listen), "Address clients connect to; quote IPv6: \"[::1]:6380\""),
    integer(LS_CONFIG(workers), 0, 256, "Event-loop threads serving clients; 0 = one per CPU core"),
    secret(LS_CONFIG(password),
           "Password clients must AUTH with (the `default` user's); empty = no AUTH required"),
    special("users", Kind::kUsers, "none",
            "Named client users with Redis ACL rules (AUTH user password); see below"),
    required(
        text(LS_USER(name), 1,
             "User name, case-sensitive, no spaces; \"default\" replaces the `password` user")),
    secret(LS_USER(password), "The user's password (Lockstep keeps only its SHA-256)"),
    text(LS_USER(password_sha256), 0,
         "Or the password's SHA-256 as 64 hex digits (shown by --check-config, as ACL LIST does)"),
    required(text(LS_USER(rules), 1,
                  "Redis ACL SETUSER rules, e.g. \"on +@read ~app:*\": must say on or off; "
                  "nopass instead of a password")),
    required(special("backends", Kind::kBackends, "(required)",
                     "The redis-servers behind Lockstep: \"host:port\" strings or maps as below; "
                     "each backend is a replica group (a primary and its replicas)")),
    noted("(required without sentinel)",
          optional_address(LS_BACKEND(address),
                           "The group's primary host:port at first start (after a failover the "
                           "replicated configuration knows the current one)")),
    noted("the address",
          text(LS_BACKEND(name), 1,
               "Name used by `slots` and in logs (with `sentinel`: the master name)")),
    text(LS_BACKEND(username), 0,
         "ACL user Lockstep AUTHs as on the group's servers (needs password)"),
    secret(LS_BACKEND(password), "Password Lockstep sends to the backend, never from clients"),
    integer(LS_BACKEND(db), 0, kInt32Max,
            "Database Lockstep SELECTs on the backend; clients always see DB 0"),
    addresses(LS_BACKEND(replicas),
              "Servers replicating from the primary (REPLICAOF it); a failover promotes one. "
              "Each server belongs to one group only"),
    text(LS_BACKEND(sentinel.master), 0,
         "Instead of address/replicas: the name Redis Sentinel monitors the group under; "
         "Lockstep then follows Sentinel's failovers and never promotes on its own"),
    addresses(LS_BACKEND(sentinel.addresses), "The sentinels' host:port (with sentinel.master)"),
    choice(LS_BACKEND(durability), "async|replica",
           "async: a write is answered once the primary has it; replica: once a replica has it "
           "too (WAIT 1), so no acknowledged write is lost by a failover"),
    choice(LS_BACKEND(read_from), "default|primary|prefer-replica|replica|nearest",
           "This group's read policy; default = the top-level read_from"),
    integer(LS_BACKEND(read_max_lag_ms), -1, 3600000,
            "This group's replica lag bound for reads; -1 = the top-level read_max_lag_ms"),
    special("slots", Kind::kSlots, "even split",
            "Explicit slot map; omit it to split the 16384 slots evenly in contiguous ranges"),
    required(
        special("slots[].range", Kind::kSlotRange, {},
                "\"from-to\" (inclusive) or one slot in 0..16383; ranges cover each slot once")),
    required(text(LS_SLOT(backend), 1, "Name of the backend owning these slots")),
    integer(LS_CONFIG(backend_connections), 1, 64, "Pipelined connections per backend per worker"),
    choice(LS_CONFIG(read_from), "primary|prefer-replica|replica|nearest",
           "Where read-only commands outside MULTI/WATCH go: primary; prefer-replica (a "
           "replica, else the primary); replica (only replicas); nearest (lowest latency, "
           "primary included). Groups without replicas read from the primary"),
    integer(LS_CONFIG(read_max_lag_ms), 0, 3600000,
            "A replica further behind its primary than this (estimated from replication "
            "offsets) serves no reads"),
    integer(LS_CONFIG(health.interval_ms), 10, 60000,
            "Every Lockstep replica PINGs every server and reads its INFO replication this often"),
    integer(LS_CONFIG(failover.down_after_ms), 10, 3600000,
            "A server that answered nothing for this long is down; a primary is failed over "
            "when a majority of Lockstep replicas see it down"),
    integer(LS_CONFIG(failover.min_interval_ms), 0, 86400000,
            "A group fails over at most once per this, so a flapping primary cannot cause a "
            "failover storm"),
    integer(LS_CONFIG(failover.lease_ms), 20, 60000,
            "A Lockstep replica cut off from the majority for this long stops routing writes; "
            "a failover waits this long after its commit before promoting, so a demoted primary "
            "takes no acknowledged write"),
    integer(LS_CONFIG(timeouts.connect_ms), 1, 600000,
            "Give up connecting to a backend after this"),
    integer(LS_CONFIG(timeouts.request_ms), 1, 3600000,
            "A backend reply later than this fails the connection's in-flight requests"),
    integer(LS_CONFIG(timeouts.client_idle_s), 0, 31536000,
            "Close clients idle this long; 0 = never (as Redis' timeout 0)"),
    integer(LS_CONFIG(timeouts.shutdown_ms), 0, 600000,
            "On SIGTERM, how long in-flight requests may take to finish"),
    integer(LS_CONFIG(timeouts.backend_retry_max_ms), 10, 600000,
            "Cap of the backoff between backend reconnect attempts"),
    integer(LS_CONFIG(limits.max_clients), 1, 1000000, "Connected clients; more are refused"),
    bytes(LS_CONFIG(limits.max_bulk_bytes), 1, 4 * kGiB,
          "Largest single argument (Redis proto-max-bulk-len)"),
    bytes(LS_CONFIG(limits.max_request_bytes), 1, 4 * kGiB,
          "Largest whole command, all arguments together"),
    integer(LS_CONFIG(limits.max_args), 1, kInt32Max, "Most arguments in one command"),
    bytes(LS_CONFIG(limits.max_inline_bytes), 64, 1 * kMiB,
          "Longest inline (telnet-style) command line"),
    bytes(LS_CONFIG(limits.client_max_queued_bytes), 1 * kKiB, 16 * kGiB,
          "Reply bytes queued for a client before Lockstep stops reading its requests"),
    integer(LS_CONFIG(limits.client_max_inflight), 1, 1000000,
            "Pipelined requests in flight per client before reading pauses"),
    integer(LS_CONFIG(limits.max_blocked_clients), 0, 1000000,
            "Clients blocked at once (BLPOP, XREAD BLOCK, WAIT ...): each holds a backend "
            "connection; more get an error"),
    integer(LS_CONFIG(slowlog.slower_than_us), -1, 3600LL * 1000 * 1000,
            "Requests slower than this through Lockstep (µs, backend round trip included) go "
            "to SLOWLOG; -1 = off"),
    integer(LS_CONFIG(slowlog.max_len), 0, 1000000, "Entries SLOWLOG keeps"),
    integer(LS_CONFIG(latency.monitor_threshold_ms), 0, 3600 * 1000,
            "Requests at least this slow (ms) are LATENCY's 'command' event; 0 = off"),
    choice(LS_CONFIG(log.level), "trace|debug|info|warn|error|critical|off",
           "Least severe level logged"),
    choice(LS_CONFIG(log.format), "text|json", "text for people, json for one object per line"),
    text(LS_CONFIG(log.file), 0, "Log file path; empty = stderr; SIGHUP reopens it (log rotation)"),
    optional_address(LS_CONFIG(metrics.listen),
                     "Where Prometheus scrapes GET /metrics (plain HTTP), e.g. 127.0.0.1:9380; "
                     "empty = off"),
    // Redlock over independent masters. The bounds keep the arithmetic sane (validity =
    // TTL - elapsed - drift must stay positive) rather than encode tuning advice.
    noted("every backend",
          names(LS_CONFIG(locks.backends), 1,
                "Backends (by `name`) used as independent lock masters; a lock needs a majority "
                "of them, so an odd count (3, 5) tolerates the most failures")),
    real(LS_CONFIG(locks.drift_factor), {0, 0.5, true},
         "Clock drift allowance as a fraction of the TTL, taken off every lock's validity"),
    integer(LS_CONFIG(locks.retry_count), 1, 100,
            "Acquire rounds one LOCK.ACQUIRE without WAIT makes before it gives up"),
    integer(LS_CONFIG(locks.retry_delay_ms), 0, 60000,
            "Base pause between acquire rounds, randomized so contenders do not retry in step"),
    integer(LS_CONFIG(locks.backend_timeout_ms), 1, 60000,
            "How long a round waits for each lock backend; keep it far below TTLs, since a dead "
            "backend costs this much validity"),
    integer(LS_CONFIG(locks.max_ttl_ms), 1, 86400000,
            "Largest TTL a client may ask for (and the default quarantine)"),
    integer(LS_CONFIG(locks.lock_delay_ms), 0, 3600000,
            "After a KEEPALIVE holder disconnects, the lock stays taken this long before it is "
            "released, so its last writes land before a new holder's"),
    integer(LS_CONFIG(locks.quarantine_ms), 0, 86400000,
            "How long a restarted or clock-jumped lock backend stays out of quorums; 0 = "
            "max_ttl_ms; shorter can let one lock be granted twice"),
    // Cross-backend MULTI/EXEC (two-phase commit over per-backend MULTI/EXEC).
    integer(LS_CONFIG(transactions.lease_ms), 100, 3600000,
            "A coordinator's lease from prepare to commit point; after it a resolver may abort "
            "the transaction (keys stay locked at most this long when a proxy dies)"),
    integer(LS_CONFIG(transactions.conflict_timeout_ms), 0, 3600000,
            "How long EXEC retries a transaction whose keys another transaction holds before "
            "answering -TXNCONFLICT (transactions never wait on each other: no deadlock)"),
    integer(LS_CONFIG(transactions.resolver_interval_ms), 10, 60000,
            "How often every backend is scanned for transactions whose coordinator died"),
    choice(LS_CONFIG(transactions.backend_check), "off|warn|refuse",
           "At start, backends without appendonly yes, appendfsync always and "
           "maxmemory-policy noeviction are reported (warn) or make Lockstep exit (refuse)"),
    choice(LS_CONFIG(transactions.isolation), "none|writes|all",
           "What plain (non-MULTI) commands respect while a cross-backend commit is in flight: "
           "none (full speed; a reader may see one backend's half committed and a write may land "
           "between a transaction's prepare and apply), writes (writes wait for the "
           "transaction: WATCH stays exact), all (reads too: serializable); a guarded command "
           "costs five backend commands instead of one"),
    integer(LS_CONFIG(transactions.max_queued_bytes), 1024, 1LL << 31,
            "Bytes of commands one MULTI may queue (a participant's share is also stored in its "
            "intent, so keep it well under the backends' proto-max-bulk-len)"),
    integer(LS_CONFIG(transactions.max_queued), 1, 1000000,
            "Commands one MULTI may queue; more make EXEC fail with EXECABORT"),
    text(LS_CONFIG(transactions.failpoints), 0,
         "Tests only: crash, stall or drop at named steps of the commit protocol, e.g. "
         "txn.after_commit=crash (also from the LOCKSTEP_FAILPOINTS environment variable)"),
    secret(LS_CONFIG(admin_password),
           "Password of the LOCKSTEP admin commands (AUTH admin <password>); empty = only "
           "clients connecting from loopback may use them"),
    // Replicated configuration: Multi-Paxos among Lockstep replicas.
    integer(LS_CONFIG(cluster.id), 0, 1000000000,
            "This replica's id (never reused); 0 = no cluster: a single replica whose "
            "replicated state lives in memory"),
    optional_address(LS_CONFIG(cluster.listen),
                     "Address for peer (replica-to-replica) traffic; required with cluster.id"),
    text(LS_CONFIG(cluster.data_dir), 0,
         "Directory of the durable consensus log and snapshots; required with cluster.id"),
    secret(LS_CONFIG(cluster.secret),
           "Shared by all replicas; authenticates peer traffic (HMAC-SHA256); required with more "
           "than one peer"),
    special("cluster.peers", Kind::kPeers, "{}",
            "Every replica at first bootstrap, this one included: {1: host:port, 2: ...}"),
    integer(LS_CONFIG(cluster.tick_ms), 1, 1000, "Consensus clock resolution"),
    integer(LS_CONFIG(cluster.heartbeat_ms), 1, 60000, "Leader heartbeat period"),
    integer(LS_CONFIG(cluster.election_timeout_ms), 2, 600000,
            "A follower that heard no leader for [this, 2 x this) campaigns; bounds failover time"),
    integer(LS_CONFIG(cluster.proposal_timeout_ms), 10, 600000,
            "An admin change not chosen by then is answered -TRYAGAIN (it may still commit)"),
    bytes(LS_CONFIG(cluster.peer_buffer_bytes), 1 * kKiB, 1 * kGiB,
          "Bytes queued for one peer before further messages to it are dropped (Paxos "
          "retransmits)"),
    choice(LS_CONFIG(cluster.start), "bootstrap|join",
           "On a first start (empty data_dir): bootstrap founds the cluster with `peers` as "
           "members; join starts with no membership and waits to be added by LOCKSTEP MEMBER "
           "ADD on the running cluster (a new replica, or one that lost its disk, under a new "
           "id), then catches up as a learner before it votes"),
};

#undef LS_CONFIG
#undef LS_BACKEND
#undef LS_SLOT
#undef LS_USER

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string render_int(const Key& key, int64_t value) {
  return key.kind == Kind::kBytes ? format_bytes(value) : std::to_string(value);
}

std::string render_string(const Key& key, const std::string& value) {
  if (key.kind == Kind::kSecret) return value.empty() ? quote("") : quote(kRedacted);
  if (key.kind == Kind::kChoice) return value;
  return quote(value);
}

// A flow list of quoted names, or YAML's null for an empty (= default) list: an explicit "[]"
// is refused by the loader, because it reads as "none" rather than "the default".
std::string render_names(const std::vector<std::string>& names) {
  if (names.empty()) return "~";
  std::vector<std::string> quoted;
  for (const std::string& name : names) quoted.push_back(quote(name));
  return fmt::format("[{}]", fmt::join(quoted, ", "));
}

std::string render_address(const HostPort& value) {
  if (value.host.empty()) return quote("");  // an optional address that is off
  std::string text = value.str();
  // A plain scalar starting with '[' would read back as a flow sequence.
  return text.starts_with('[') ? quote(text) : text;
}

std::string render_addresses(const std::vector<HostPort>& values) {
  std::vector<std::string> items;
  for (const HostPort& value : values) items.push_back(render_address(value));
  return fmt::format("[{}]", fmt::join(items, ", "));
}

template <class T>
std::optional<std::string> render_any(const Key& key, T& target) {
  if constexpr (std::is_same_v<T, SlotRange>) {
    if (key.kind == Kind::kSlotRange) {
      return quote(target.from == target.to ? std::to_string(target.from)
                                            : fmt::format("{}-{}", target.from, target.to));
    }
  }
  return std::visit(
      [&](auto fn) -> std::optional<std::string> {
        if constexpr (std::is_invocable_v<decltype(fn), T&>) {
          const auto& value = fn(target);
          using Field = std::remove_cvref_t<decltype(value)>;
          if constexpr (std::is_integral_v<Field>) {
            return render_int(key, value);
          } else if constexpr (std::is_same_v<Field, double>) {
            return format_real(value);
          } else if constexpr (std::is_same_v<Field, std::string>) {
            return render_string(key, value);
          } else if constexpr (std::is_same_v<Field, std::vector<std::string>>) {
            return render_names(value);
          } else if constexpr (std::is_same_v<Field, std::vector<HostPort>>) {
            return render_addresses(value);
          } else {
            return render_address(value);
          }
        } else {
          return std::nullopt;
        }
      },
      key.field);
}

}  // namespace

std::span<const Key> keys() {
  return kKeys;
}

const Key* find(std::string_view path) {
  for (const Key& key : kKeys) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

std::vector<std::string_view> choices(const Key& key) {
  std::vector<std::string_view> out;
  std::string_view rest = key.choices;
  while (!rest.empty()) {
    size_t bar = rest.find('|');
    out.push_back(rest.substr(0, bar));
    rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
  }
  return out;
}

std::optional<int64_t> parse_integer(std::string_view text) {
  size_t digits = !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() == digits) return std::nullopt;
  for (size_t i = digits; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> parse_bytes(std::string_view text) {
  size_t split = !text.empty() && text[0] == '-' ? 1 : 0;
  while (split < text.size() && std::isdigit(static_cast<unsigned char>(text[split]))) ++split;
  std::optional<int64_t> number = parse_integer(text.substr(0, split));
  if (!number) return std::nullopt;
  std::string unit;
  for (char c : text.substr(split)) unit += lower(c);
  // Redis' units: the "b" forms are powers of 1024, the bare letters powers of 1000.
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", kKiB},
      {"m", 1000 * 1000},
      {"mb", kMiB},
      {"g", 1000 * 1000 * 1000},
      {"gb", kGiB},
  };
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    int64_t value = 0;
    if (__builtin_mul_overflow(*number, scale, &value)) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

std::optional<double> parse_real(std::string_view text) {
  // Checked against the YAML 1.2 core-schema float syntax first: from_chars alone would also
  // take "inf", "nan" and hex digits, and would refuse a leading '+'.
  auto digits = [&](size_t from) {
    size_t end = from;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    return end - from;
  };
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  size_t integral = digits(i);
  i += integral;
  size_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    fraction = digits(i + 1);
    i += 1 + fraction;
  }
  if (integral == 0 && fraction == 0) return std::nullopt;  // "", "-", ".", "e5"
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    size_t exponent = digits(i);
    if (exponent == 0) return std::nullopt;  // "1e", "1e+"
    i += exponent;
  }
  if (i != text.size()) return std::nullopt;

  std::string_view number = text.starts_with('+') ? text.substr(1) : text;
  double value = 0;
  // result_out_of_range ("1e999", "1e-999") is refused too: no key needs such magnitudes, and
  // reading "1e-999" as 0 would store a value the file does not say.
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(value))
    return std::nullopt;
  // -0 would print back as "-0": the same value, but a dump should not look negative.
  return value == 0 ? 0.0 : value;
}

std::string format_real(double value) {
  // fmt's shortest round-trip form: "0.01" stays "0.01", tiny and huge values get an exponent
  // ("1e-07"), and every form it writes is one parse_real() accepts.
  return fmt::format("{}", value);
}

std::string format_bytes(int64_t value) {
  if (value > 0 && value % kGiB == 0) return fmt::format("{}gb", value / kGiB);
  if (value > 0 && value % kMiB == 0) return fmt::format("{}mb", value / kMiB);
  if (value > 0 && value % kKiB == 0) return fmt::format("{}kb", value / kKiB);
  return std::to_string(value);
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::optional<std::string> render(const Key& key, Config& target) {
  return render_any(key, target);
}
std::optional<std::string> render(const Key& key, BackendConfig& target) {
  return render_any(key, target);
}
std::optional<std::string> render(const Key& key, SlotRange& target) {
  return render_any(key, target);
}
std::optional<std::string> render(const Key& key, UserConfig& target) {
  return render_any(key, target);
}

std::string type_text(const Key& key) {
  switch (key.kind) {
    case Kind::kInteger:
      return fmt::format("integer {}..{}", key.min, key.max);
    case Kind::kBytes:
      return fmt::format("bytes {}..{}", format_bytes(key.min), format_bytes(key.max));
    case Kind::kString:
      return key.min > 0 ? "non-empty string" : "string";
    case Kind::kSecret:
      return "string (secret)";
    case Kind::kChoice:
      return fmt::format("one of {}", fmt::join(choices(key), ", "));
    case Kind::kAddress:
      return key.min > 0 ? "host:port" : "host:port or \"\"";
    case Kind::kBackends:
    case Kind::kSlots:
    case Kind::kUsers:
      return "list";
    case Kind::kSlotRange:
      return "slot range";
    case Kind::kDouble:
      return fmt::format("real number {} <= x {} {}", format_real(key.real.min),
                         key.real.max_open ? "<" : "<=", format_real(key.real.max));
    case Kind::kNames:
      return key.min > 0 ? "non-empty list of names" : "list of names";
    case Kind::kPeers:
      return "map of id to host:port";
    case Kind::kAddresses:
      return "list of host:port";
  }
  return "?";
}

std::string default_text(const Key& key) {
  if (!key.default_note.empty()) return std::string(key.default_note);
  Config config;
  BackendConfig backend;
  SlotRange slot;
  UserConfig user;
  if (auto text = render(key, config)) return *text;
  if (auto text = render(key, backend)) return *text;
  if (auto text = render(key, slot)) return *text;
  if (auto text = render(key, user)) return *text;
  return "";
}

int edit_distance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int above = row[j];
      int substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace lockstep::config::schema
