#include "lockstep/admin/prometheus.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lockstep::admin {

namespace {

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

bool name_char(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

}  // namespace

Histogram seconds_from_log2_us(const Log2Histogram& buckets, uint64_t sum_us) {
  Histogram h;
  h.sum = static_cast<double>(sum_us) / 1e6;
  // Log2 bucket i ends at 2^(i+1) µs; every second one (i odd: 4^k µs, from 64 µs) is a bound.
  constexpr int kFirst = 5;  // ends at 64 µs
  constexpr int kLast = 23;  // ends at 2^24 µs = 16.8 s
  uint64_t pending = 0;
  for (int i = 0; i < kLog2Buckets; ++i) {
    pending += buckets[static_cast<size_t>(i)];
    if (i >= kFirst && i <= kLast && (i - kFirst) % 2 == 0) {
      h.bounds.push_back(std::ldexp(1.0, i + 1) / 1e6);
      h.counts.push_back(pending);
      pending = 0;
    }
  }
  h.counts.push_back(pending);  // above 16.8 s
  return h;
}

Exposition::Family::Family(Exposition& out, std::string_view name, MetricType type,
                           std::string_view help)
    : out_(out), name_(name), type_(type), help_(help) {}

void Exposition::Family::header() {
  if (started_) return;
  started_ = true;
  fmt::format_to(std::back_inserter(out_.text_), "# HELP {} {}\n# TYPE {} {}\n", name_,
                 escape_help(help_), name_, type_name(type_));
}

Exposition::Family& Exposition::Family::add(const Labels& labels, double value) {
  if (type_ == MetricType::kHistogram)
    throw std::logic_error("histogram family " + name_ + " takes histograms");
  header();
  out_.sample(name_, {}, labels, {}, {}, format_value(value));
  return *this;
}

Exposition::Family& Exposition::Family::add(const Labels& labels, uint64_t value) {
  if (type_ == MetricType::kHistogram)
    throw std::logic_error("histogram family " + name_ + " takes histograms");
  header();
  out_.sample(name_, {}, labels, {}, {}, std::to_string(value));
  return *this;
}

Exposition::Family& Exposition::Family::add(const Labels& labels, const Histogram& h) {
  if (type_ != MetricType::kHistogram) throw std::logic_error(name_ + " is not a histogram family");
  if (h.counts.size() != h.bounds.size() + 1)
    throw std::invalid_argument(name_ + ": a histogram needs one count more than bounds");
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (!std::isfinite(h.bounds[i]) || (i > 0 && h.bounds[i] <= h.bounds[i - 1]))
      throw std::invalid_argument(name_ + ": histogram bounds must increase strictly");
  }
  header();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out_.sample(name_, "_bucket", labels, "le", format_value(h.bounds[i]),
                std::to_string(cumulative));
  }
  cumulative += h.counts.back();
  out_.sample(name_, "_bucket", labels, "le", "+Inf", std::to_string(cumulative));
  out_.sample(name_, "_sum", labels, {}, {}, format_value(h.sum));
  out_.sample(name_, "_count", labels, {}, {}, std::to_string(cumulative));
  return *this;
}

Exposition::Family Exposition::family(std::string_view name, MetricType type,
                                      std::string_view help) {
  if (!valid_name(name)) throw std::invalid_argument(fmt::format("bad metric name '{}'", name));
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    throw std::logic_error(fmt::format("metric family '{}' written twice", name));
  names_.emplace_back(name);
  return Family(*this, name, type, help);
}

void Exposition::counter(std::string_view name, std::string_view help, uint64_t value) {
  family(name, MetricType::kCounter, help).add({}, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
  family(name, MetricType::kGauge, help).add({}, value);
}

void Exposition::sample(std::string_view name, std::string_view suffix, const Labels& labels,
                        std::string_view extra_label, std::string_view extra_value,
                        std::string_view value) {
  text_.append(name);
  text_.append(suffix);
  if (!labels.empty() || !extra_label.empty()) {
    text_ += '{';
    bool first = true;
    auto label = [&](std::string_view key, std::string_view val) {
      if (!valid_name(key) || key.find(':') != std::string_view::npos || key.starts_with("__"))
        throw std::invalid_argument(fmt::format("bad label name '{}'", key));
      if (!first) text_ += ',';
      first = false;
      fmt::format_to(std::back_inserter(text_), "{}=\"{}\"", key, escape_label_value(val));
    };
    for (const auto& [key, val] : labels) label(key, val);
    if (!extra_label.empty()) label(extra_label, extra_value);
    text_ += '}';
  }
  text_ += ' ';
  text_.append(value);
  text_ += '\n';
}

std::string Exposition::escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Exposition::escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Exposition::format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);  // shortest text that reads back as the same double
}

bool Exposition::valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------

namespace {

using T = MetricType;

void render_process(Exposition& out, const MetricsSnapshot& s) {
  out.family("lockstep_build_info", T::kGauge, "Lockstep's version (the value is always 1)")
      .add({{"version", s.version}}, uint64_t{1});
  out.gauge("lockstep_uptime_seconds", "Seconds since Lockstep started", s.uptime_seconds);
  out.gauge("lockstep_workers", "Event-loop threads serving clients",
            static_cast<double>(s.workers));
}

void render_clients(Exposition& out, const ClientFigures& c) {
  out.gauge("lockstep_connected_clients", "Client connections open now",
            static_cast<double>(c.connected));
  out.gauge("lockstep_blocked_clients", "Clients in a blocking command (BLPOP, WAIT ...)",
            static_cast<double>(c.blocked));
  out.counter("lockstep_client_connections_total",
              "Client connections accepted, the rejected ones included", c.received);
  out.counter("lockstep_client_connections_rejected_total",
              "Client connections refused over limits.max_clients", c.rejected);
  out.counter("lockstep_commands_processed_total", "Requests read from clients", c.commands);
  out.counter("lockstep_auth_failures_total", "Failed AUTH attempts", c.auth_failures);
  out.counter("lockstep_acl_denied_total", "Requests refused by ACL rules", c.acl_denied);
  out.counter("lockstep_protocol_errors_total", "Client connections closed for bad RESP",
              c.protocol_errors);
  out.counter("lockstep_net_input_bytes_total", "Bytes read from clients", c.net_input_bytes);
  out.counter("lockstep_net_output_bytes_total", "Bytes written to clients", c.net_output_bytes);
}

void render_commands(Exposition& out, const MetricsSnapshot& s) {
  auto calls = out.family("lockstep_commands_total", T::kCounter,
                          "Requests answered, by command (as INFO commandstats calls)");
  for (const auto& cmd : s.commands) calls.add({{"command", cmd.name}}, cmd.calls);
  auto failed = out.family("lockstep_command_failures_total", T::kCounter,
                           "Requests answered with an error, by command");
  for (const auto& cmd : s.commands) failed.add({{"command", cmd.name}}, cmd.failed);
  auto rejected =
      out.family("lockstep_command_rejections_total", T::kCounter,
                 "Requests refused before they ran (arity, ACL, CROSSSLOT ...), by command");
  for (const auto& cmd : s.commands) rejected.add({{"command", cmd.name}}, cmd.rejected);
  auto latency =
      out.family("lockstep_command_duration_seconds", T::kHistogram,
                 "Request latency through Lockstep (backend round trip included), by command");
  for (const auto& cmd : s.commands)
    if (cmd.calls > 0)
      latency.add({{"command", cmd.name}}, seconds_from_log2_us(cmd.latency, cmd.usec));
  auto errors = out.family("lockstep_errors_total", T::kCounter,
                           "Error replies sent to clients, by kind (the error's first word, "
                           "as INFO errorstats)");
  for (const auto& [kind, count] : s.errors) errors.add({{"kind", kind}}, count);
}

void render_backends(Exposition& out, const std::vector<BackendFigures>& backends) {
  auto labels = [](const BackendFigures& b) {
    return Labels{{"backend", b.name}, {"address", b.address}};
  };
  auto up = out.family("lockstep_backend_up", T::kGauge,
                       "1 when every worker's shared connection to the backend is up");
  for (const auto& b : backends) up.add(labels(b), uint64_t{b.up ? 1u : 0u});
  auto conns = out.family("lockstep_backend_connections", T::kGauge,
                          "Connections to the backend that are up now");
  for (const auto& b : backends) conns.add(labels(b), static_cast<double>(b.connections));
  auto inflight = out.family("lockstep_backend_inflight_requests", T::kGauge,
                             "Requests sent to the backend and not answered yet");
  for (const auto& b : backends) inflight.add(labels(b), b.inflight);
  auto requests =
      out.family("lockstep_backend_requests_total", T::kCounter, "Requests sent to the backend");
  for (const auto& b : backends) requests.add(labels(b), b.requests);
  auto failures = out.family("lockstep_backend_failures_total", T::kCounter,
                             "Backend connections lost or refused");
  for (const auto& b : backends) failures.add(labels(b), b.failures);
  auto reconnects =
      out.family("lockstep_backend_reconnects_total", T::kCounter, "Backend reconnection attempts");
  for (const auto& b : backends) reconnects.add(labels(b), b.reconnects);
  auto timeouts = out.family("lockstep_backend_timeouts_total", T::kCounter,
                             "Backend replies later than timeouts.request_ms");
  for (const auto& b : backends) timeouts.add(labels(b), b.timeouts);
  auto latency = out.family("lockstep_backend_duration_seconds", T::kHistogram,
                            "Backend round trips, from the request read from a client (or "
                            "made by Lockstep) to the backend's reply");
  for (const auto& b : backends)
    latency.add(labels(b), seconds_from_log2_us(b.latency, b.latency_usec));
}

void render_locks(Exposition& out, const LockFigures& l) {
  out.counter("lockstep_lock_acquisitions_total", "LOCK.ACQUIRE grants", l.acquired);
  out.family("lockstep_lock_acquire_failures_total", T::kCounter,
             "LOCK.ACQUIRE that ended without the lock, by reason")
      .add({{"reason", "busy"}}, l.failed_busy)
      .add({{"reason", "noquorum"}}, l.failed_noquorum)
      .add({{"reason", "error"}}, l.failed_error);
  out.counter("lockstep_lock_waits_total",
              "LOCK.ACQUIRE WAIT requests that had to queue for the lock", l.waits);
  out.counter("lockstep_lock_quorum_losses_total",
              "Lock rounds (acquire, release, extend, renewal) that ended without a majority",
              l.quorum_losses);
  out.counter("lockstep_lock_keepalive_lost_total", "KEEPALIVE locks lost on a failed renewal",
              l.keepalive_lost);
}

void render_consensus(Exposition& out, const ConsensusFigures& c) {
  out.gauge("lockstep_consensus_leader", "The replica id of the current leader (0: none)",
            static_cast<double>(c.leader));
  out.gauge("lockstep_consensus_is_leader", "1 when this replica leads",
            static_cast<double>(c.is_leader ? 1 : 0));
  out.gauge("lockstep_consensus_epoch", "Epoch of the applied configuration",
            static_cast<double>(c.epoch));
  out.gauge("lockstep_consensus_chosen_index", "Highest log index known chosen",
            static_cast<double>(c.chosen_index));
  out.gauge("lockstep_consensus_applied_index", "Highest log index applied here",
            static_cast<double>(c.applied_index));
  out.gauge("lockstep_consensus_members", "Replicas in the membership",
            static_cast<double>(c.members));
  out.counter("lockstep_consensus_peer_messages_dropped_total",
              "Peer messages dropped on a full connection buffer", c.peer_dropped);
  out.family("lockstep_consensus_commit_duration_seconds", T::kHistogram,
             "From a change proposed on this replica to its application here")
      .add({}, seconds_from_log2_us(c.commit_latency, c.commit_usec));
}

void render_txns(Exposition& out, const TxnFigures& t) {
  out.family("lockstep_transactions_total", T::kCounter,
             "EXECs (and cross-backend MSETNX) by how many backends they spanned")
      .add({{"span", "single"}}, t.single)
      .add({{"span", "cross"}}, t.cross);
  out.family("lockstep_transaction_outcomes_total", T::kCounter, "How transactions ended")
      .add({{"outcome", "committed"}}, t.committed)
      .add({{"outcome", "watch_failed"}}, t.watch_failed)
      .add({{"outcome", "conflict_timeout"}}, t.gave_up)
      .add({{"outcome", "aborted"}}, t.aborted)
      .add({{"outcome", "unknown"}}, t.unknown);
  out.counter("lockstep_transaction_conflicts_total",
              "Attempts that met keys held by another transaction and were retried", t.conflicts);
  out.family("lockstep_transaction_recoveries_total", T::kCounter,
             "Transactions of dead coordinators finished by this replica's resolver")
      .add({{"direction", "forward"}}, t.rolled_forward)
      .add({{"direction", "back"}}, t.rolled_back);
  out.counter("lockstep_transaction_resolver_errors_total",
              "Resolutions that failed (retried at the next scan)", t.resolver_errors);
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& s) {
  Exposition out;
  render_process(out, s);
  render_clients(out, s.clients);
  render_commands(out, s);
  render_backends(out, s.backends);
  if (s.locks) render_locks(out, *s.locks);
  if (s.consensus) render_consensus(out, *s.consensus);
  if (s.txns) render_txns(out, *s.txns);
  return out.take();
}

}  // namespace lockstep::admin
