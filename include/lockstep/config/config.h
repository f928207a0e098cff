// Lockstep's configuration: the YAML file a replica starts from.
//
// Every key is described once in a schema (src/config/schema.cpp): its path, type, default,
// bounds and one line of documentation. Parsing, validation, `--check-config` output and the
// configuration reference in README all come from that one table, so they cannot drift.
// Unknown keys and bad values are rejected with the YAML line and column.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::config {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[::1]:port" for IPv6)
};

// Parses "host:port", "[v6]:port"; false on anything else (port must be 1..65535).
bool parse_host_port(const std::string& text, HostPort& out);

// A backend whose primary Redis Sentinel chooses: Lockstep asks the sentinels for the
// primary of `master` and follows their decisions instead of making its own.
struct SentinelConfig {
  std::string master;               // the name the sentinels monitor it under
  std::vector<HostPort> addresses;  // the sentinels
  bool enabled() const { return !master.empty(); }
};

// A backend is a replica group: one primary (`address` at first start) and its replicas, or a
// Sentinel-managed group. The string form "host:port" is a group of one.
struct BackendConfig {
  std::string name;      // defaults to the address text (or the sentinel master name)
  HostPort address;      // the primary at first start; empty host with `sentinel`
  std::string username;  // optional ACL user for AUTH on the backend
  std::string password;  // optional; sent by Lockstep to the backend, never from clients
  int db = 0;
  std::vector<HostPort> replicas;  // servers replicating from the primary
  SentinelConfig sentinel;
  std::string durability = "async";   // async | replica (a write is answered once a replica has it)
  std::string read_from = "default";  // default (= Config::read_from) or a ReadFrom policy
  int read_max_lag_ms = -1;           // -1 = Config::read_max_lag_ms

  // Every data server of the group, primary first (empty for a Sentinel-managed group).
  std::vector<HostPort> servers() const;
};

// An explicit slot assignment: slots [from, to] (inclusive) to the backend with this name.
struct SlotRange {
  int from = 0;
  int to = 0;
  std::string backend;
};

// A client user with Redis-ACL-like rules (enforced by include/lockstep/acl/acl.h).
struct UserConfig {
  std::string name;
  std::string password;         // plain; the ACL module keeps only its SHA-256
  std::string password_sha256;  // or the SHA-256 of the password as 64 hex digits
  std::string rules;            // ACL SETUSER rules, e.g. "on +@read ~app:*"
  // Where `rules` is in the file, for errors found when the ACL module applies the rules
  // (the loader cannot: the command table is not part of the config subsystem).
  int rules_line = 0;
  int rules_column = 0;
};

struct Timeouts {
  int connect_ms = 1000;   // backend connect
  int request_ms = 5000;   // a backend reply later than this fails the connection's requests
  int client_idle_s = 0;   // 0 = never close idle clients (as Redis' timeout 0)
  int shutdown_ms = 5000;  // SIGTERM: how long in-flight requests may take to finish
  int backend_retry_max_ms = 5000;  // reconnect backoff cap
};

struct Limits {
  int max_clients = 10000;
  int64_t max_bulk_bytes = 512LL * 1024 * 1024;          // one argument (Redis proto-max-bulk-len)
  int64_t max_request_bytes = 1024LL * 1024 * 1024;      // one whole command
  int64_t max_args = 1024 * 1024;                        // arguments in one command
  int max_inline_bytes = 64 * 1024;                      // inline (telnet) command line
  int64_t client_max_queued_bytes = 64LL * 1024 * 1024;  // pending output before pausing reads
  int client_max_inflight = 1024;                        // pipelined requests in flight per client
  int max_blocked_clients = 1000;  // concurrent blocking commands (each holds a backend conn)
};

struct SlowlogConfig {
  // Requests slower than this (through Lockstep) are logged; -1 = off.
  int64_t slower_than_us = 10000;
  int max_len = 128;
};

struct LatencyConfig {
  int monitor_threshold_ms = 100;  // LATENCY's "command" event; 0 = off
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  std::string format = "text";  // text or json
  std::string file;             // empty = stderr; reopened on SIGHUP (for logrotate)
};

// Prometheus metrics over HTTP (GET /metrics).
struct MetricsConfig {
  HostPort listen;  // empty host = no metrics endpoint
  bool enabled() const { return !listen.host.empty(); }
};

// Server-side Redlock locks (LOCK.* commands). Each lock backend is an independent master: a
// lock is held when a majority of them granted it, so the set should be odd-sized (3 or 5).
struct LocksConfig {
  std::vector<std::string> backends;  // names from `backends`; empty = every backend
  double drift_factor = 0.01;         // clock drift allowance as a fraction of the TTL
  int retry_count = 3;                // acquire rounds per LOCK.ACQUIRE without WAIT
  int retry_delay_ms = 200;           // base pause between rounds (randomized by the engine)
  int backend_timeout_ms = 50;        // one backend's share of a round; far below any TTL
  int64_t max_ttl_ms = 60000;         // largest TTL a client may ask for
  int lock_delay_ms = 0;              // a vanished KEEPALIVE holder's lock lingers this long
  int64_t quarantine_ms = 0;          // restarted / clock-jumped backend sits out; 0 = max_ttl_ms

  // A backend that may have lost lock keys (restart) or expired them early (clock jump) must
  // sit out quorums until every lock it may have granted has expired: max_ttl_ms by default.
  int64_t effective_quarantine_ms() const { return quarantine_ms > 0 ? quarantine_ms : max_ttl_ms; }
};

struct TransactionsConfig {
  int64_t lease_ms = 5000;         // how long a coordinator may take from prepare to commit
  int conflict_timeout_ms = 2000;  // EXEC retries a transaction that met held keys this long
  int resolver_interval_ms = 500;  // how often each backend is scanned for expired intents
  std::string backend_check = "warn";  // appendonly/fsync/eviction settings: off|warn|refuse
  std::string isolation = "none";      // plain commands vs in-flight commits: none|writes|all
  int max_queued = 10000;              // commands one MULTI may queue
  int64_t max_queued_bytes = 64 << 20;  // and their total size
  std::string failpoints;              // tests only: "point=action[,...]" (see txn/failpoint.h)
};

// Health checks: every Lockstep replica probes every server of every group (PING, and INFO
// replication for roles and lag) this often.
struct HealthConfig {
  int interval_ms = 100;
};

// Automatic failover of a group's primary (include/lockstep/failover/failover.h).
struct FailoverConfig {
  int down_after_ms = 1000;     // a server that answered nothing for this long is down
  int min_interval_ms = 30000;  // a group fails over at most once per this (flapping primaries)
  // A Lockstep replica routes writes only while a majority of the cluster answered it within
  // this; a primary change is carried out only after every such lease has run out.
  int lease_ms = 400;
};

// Replicated configuration (Multi-Paxos among Lockstep replicas;
// src/server/consensus/cluster_service.h).
// id 0 = no cluster: one replica with its replicated state in memory only.
struct ClusterConfig {
  int64_t id = 0;                    // this replica; never reused
  HostPort listen;                   // peer traffic
  std::string data_dir;              // durable log and snapshots
  std::string secret;                // shared by every replica; authenticates peer traffic
  std::map<int64_t, HostPort> peers;  // id -> peer address, this replica included (bootstrap)
  int tick_ms = 10;                  // consensus clock resolution
  int heartbeat_ms = 50;             // leader heartbeat period
  int election_timeout_ms = 300;     // a follower campaigns after [this, 2*this) of silence
  int proposal_timeout_ms = 5000;    // an admin change not chosen by then is answered -TRYAGAIN
  int64_t peer_buffer_bytes = 16LL * 1024 * 1024;  // queued bytes per peer before dropping
  std::string start = "bootstrap";  // first start: found the cluster from peers, or join one
  bool enabled() const { return id != 0; }
};

struct Config {
  HostPort listen{"127.0.0.1", 6380};
  int workers = 0;       // 0 = number of CPU cores
  std::string password;  // empty = no client AUTH required
  std::vector<BackendConfig> backends;
  std::vector<SlotRange> slots;       // empty = 16384 slots split in contiguous even ranges
  std::vector<UserConfig> users;      // empty = only Redis' default user (see `password`)
  int backend_connections = 1;        // pipelined connections per backend per worker
  std::string read_from = "primary";  // primary | prefer-replica | replica | nearest
  int read_max_lag_ms = 1000;         // replicas further behind than this serve no reads
  HealthConfig health;
  FailoverConfig failover;
  Timeouts timeouts;
  Limits limits;
  SlowlogConfig slowlog;
  LatencyConfig latency;
  LogConfig log;
  MetricsConfig metrics;
  LocksConfig locks;
  TransactionsConfig transactions;
  std::string admin_password;  // LOCKSTEP admin commands: AUTH admin <this>; empty = loopback only
  ClusterConfig cluster;

  int effective_workers() const;  // resolves 0 to the core count
  // A backend's read policy and lag bound, its own or the top-level default.
  const std::string& effective_read_from(const BackendConfig& backend) const;
  int effective_read_max_lag_ms(const BackendConfig& backend) const;
};

struct ConfigError {
  std::string message;  // what is wrong, naming the key path
  std::string file;
  int line = 0;  // 1-based; 0 when not tied to a position
  int column = 0;
  std::string format() const;  // "file:line:column: message"
};

// Parse and validate; never throws. On failure `error` is set (the first problem found) and
// the result is empty.
std::optional<Config> load_file(const std::string& path, ConfigError& error);
std::optional<Config> parse_string(const std::string& yaml, ConfigError& error,
                                   const std::string& file_name = "<config>");

// The effective configuration (defaults filled in) as YAML, for --check-config. Every key is
// written, defaults included, and parse_string() reads the text back to an equal Config --
// except for secrets: `password`, `backends[].password` and `users[].password` are printed as
// "<redacted>" when set (`users[].password_sha256` is shown, as Redis' ACL LIST shows hashes),
// because --check-config output ends up in logs and tickets. So only configs without passwords
// round-trip exactly; with passwords the text still parses, with "<redacted>" as the password.
std::string dump(const Config& config);

// Checks `value` for the scalar key `path` ("timeouts.request_ms") with the schema's own rules
// and, when valid, stores it into `config` and returns an empty string; otherwise returns the
// error text (the key untouched). Pure: the same on every replica (the replicated
// configuration uses it as its validator). `normalized` (if given) gets the value as dump()
// would write it (unquoted).
std::string set_scalar(Config& config, const std::string& path, const std::string& value,
                       std::string* normalized = nullptr);
// The scalar key's current value as text (unquoted), or nullopt for an unknown or non-scalar key.
std::optional<std::string> get_scalar(const Config& config, const std::string& path);

// The configuration reference (one line per key: path, type, default, doc) in Markdown.
std::string reference_markdown();

}  // namespace lockstep::config
