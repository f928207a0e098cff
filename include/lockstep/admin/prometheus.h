// Prometheus text exposition format (version 0.0.4), sans I/O: a snapshot of Lockstep's figures
// in, the body of a GET /metrics reply out. Nothing here reads a clock, a socket or a counter.
//
//   server (stats/introspect.cpp)           admin
//   atomics summed over workers  -->  MetricsSnapshot  -->  render_metrics()  -->  text
//
// `Exposition` is the format itself (HELP/TYPE lines, label escaping, histogram buckets);
// render_metrics() decides Lockstep's metric families on top of it. A subsystem that gains
// metrics (transactions, consensus) adds a part to the snapshot, absent until the feature
// exists, and one family() call per metric in render_metrics(): nothing is emitted for a
// feature that is not there.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockstep::admin {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

// Label name and value pairs of one sample, in output order.
using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Buckets by upper bound (non-cumulative counts): counts[i] counts observations in
// (bounds[i-1], bounds[i]]; counts has one more entry than bounds, for those above the last
// bound. The renderer writes the cumulative `_bucket{le=...}` series, `_sum` and `_count`.
struct Histogram {
  std::vector<double> bounds;  // strictly increasing, finite
  std::vector<uint64_t> counts;
  double sum = 0;
};

// Request latencies are kept as log2 histograms of microseconds (bucket i counts durations in
// [2^i, 2^(i+1)) µs, as Redis 7's LATENCY HISTOGRAM); exposed in seconds with every second
// power of two as a bound (64 µs, 256 µs, 1.024 ms ... 16.8 s): fine enough where a proxy's
// latencies live, few enough series per command.
inline constexpr int kLog2Buckets = 32;
using Log2Histogram = std::array<uint64_t, kLog2Buckets>;
Histogram seconds_from_log2_us(const Log2Histogram& buckets, uint64_t sum_us);

class Exposition {
 public:
  // The samples of one metric family; HELP and TYPE are written with the first sample, so a
  // family with no samples leaves no trace.
  class Family {
   public:
    Family& add(const Labels& labels, double value);
    Family& add(const Labels& labels, uint64_t value);
    Family& add(const Labels& labels, const Histogram& histogram);

   private:
    friend class Exposition;
    Family(Exposition& out, std::string_view name, MetricType type, std::string_view help);
    void header();
    Exposition& out_;
    std::string name_;
    MetricType type_;
    std::string help_;
    bool started_ = false;
  };

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (std::invalid_argument otherwise), and one
  // family per name (std::logic_error on a repeat).
  Family family(std::string_view name, MetricType type, std::string_view help);
  // One unlabelled sample: the common case in one call.
  void counter(std::string_view name, std::string_view help, uint64_t value);
  void gauge(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

  // The escaping rules of the format, exposed for the tests.
  static std::string escape_label_value(std::string_view value);  // \ " and newline
  static std::string escape_help(std::string_view help);          // \ and newline
  static std::string format_value(double value);                  // +Inf, -Inf, NaN, shortest
  static bool valid_name(std::string_view name);

 private:
  void sample(std::string_view name, std::string_view suffix, const Labels& labels,
              std::string_view extra_label, std::string_view extra_value, std::string_view value);
  std::string text_;
  std::vector<std::string> names_;
};

// ---------------------------------------------------------------------------------------------
// Lockstep's figures at one moment.

struct CommandFigures {
  std::string name;  // "get", "client|list"
  uint64_t calls = 0;
  uint64_t failed = 0;    // replied with an error
  uint64_t rejected = 0;  // refused before running (arity, ACL, CROSSSLOT ...)
  uint64_t usec = 0;
  Log2Histogram latency{};
};

struct BackendFigures {
  std::string name;
  std::string address;
  bool up = false;  // every worker's shared connection is ready (INFO's state=up)
  int64_t connections = 0;
  uint64_t requests = 0;
  uint64_t failures = 0;
  uint64_t reconnects = 0;
  uint64_t timeouts = 0;
  uint64_t inflight = 0;
  uint64_t replies = 0;  // round trips measured in `latency`
  uint64_t latency_usec = 0;
  Log2Histogram latency{};
};

struct ClientFigures {
  int64_t connected = 0;
  int64_t blocked = 0;
  uint64_t received = 0;  // every accepted connection, the rejected ones included
  uint64_t rejected = 0;  // over limits.max_clients
  uint64_t commands = 0;
  uint64_t auth_failures = 0;
  uint64_t acl_denied = 0;
  uint64_t protocol_errors = 0;
  uint64_t net_input_bytes = 0;
  uint64_t net_output_bytes = 0;
};

struct LockFigures {
  uint64_t acquired = 0;
  uint64_t failed_busy = 0;      // LOCK.ACQUIRE gave up: held by someone else
  uint64_t failed_noquorum = 0;  // ... not enough lock backends answered
  uint64_t failed_error = 0;     // ... any other error
  uint64_t waits = 0;            // acquires that queued behind a holder or another waiter
  uint64_t quorum_losses = 0;    // rounds of any LOCK.* that ended without a majority
  uint64_t keepalive_lost = 0;   // KEEPALIVE renewals that lost the lock
};

struct TxnFigures {
  uint64_t single = 0;          // EXECs on one backend (guarded MULTI/EXEC there)
  uint64_t cross = 0;           // EXECs over several backends (two-phase commit)
  uint64_t committed = 0;
  uint64_t watch_failed = 0;    // EXEC answered nil
  uint64_t conflicts = 0;       // attempts that met keys another transaction held (retried)
  uint64_t gave_up = 0;         // -TXNCONFLICT after transactions.conflict_timeout_ms
  uint64_t aborted = 0;         // other EXECs that applied nothing (EXECABORT, errors)
  uint64_t unknown = 0;         // the commit point's reply was lost (a resolver decides)
  uint64_t rolled_forward = 0;  // resolver: finished after a coordinator died
  uint64_t rolled_back = 0;     // resolver: undone after a coordinator died
  uint64_t resolver_errors = 0;
};

struct ConsensusFigures {
  uint64_t id = 0;
  uint64_t leader = 0;  // 0 while there is none
  bool is_leader = false;
  uint64_t epoch = 0;
  uint64_t chosen_index = 0;
  uint64_t applied_index = 0;
  uint64_t members = 0;
  uint64_t commits = 0;  // this replica's own proposals chosen and applied
  uint64_t commit_usec = 0;
  Log2Histogram commit_latency{};
  uint64_t peer_dropped = 0;  // messages dropped on a full peer buffer
};

struct MetricsSnapshot {
  std::string version;
  double uptime_seconds = 0;
  int64_t workers = 0;
  ClientFigures clients;
  std::vector<CommandFigures> commands;  // only commands that were called or rejected
  std::vector<std::pair<std::string, uint64_t>> errors;  // by kind ("ERR", "WRONGTYPE")
  std::vector<BackendFigures> backends;
  std::optional<LockFigures> locks;
  std::optional<TxnFigures> txns;
  std::optional<ConsensusFigures> consensus;
};

std::string render_metrics(const MetricsSnapshot& snapshot);

}  // namespace lockstep::admin
