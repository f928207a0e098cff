// Every figure INFO and /metrics report, gathered from any thread: per-worker counters (one
// writer each, relaxed atomics) summed when read, and the process-wide atomics. INFO formats
// them (commands/info.cpp), /metrics renders them (admin/prometheus.h).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lockstep/admin/prometheus.h"
#include "server/stats/command_counters.h"

namespace lockstep::server {

struct SharedState;

std::vector<admin::CommandFigures> gather_commands(const SharedState& sh);
std::vector<std::pair<std::string, uint64_t>> gather_errors(const SharedState& sh);
std::vector<admin::BackendFigures> gather_backends(const SharedState& sh);
admin::LockFigures gather_locks(const SharedState& sh);
admin::TxnFigures gather_txns();
std::optional<admin::ConsensusFigures> gather_consensus();
admin::MetricsSnapshot gather_metrics(const SharedState& sh);

// Calls of one command summed over the workers, and its latency histogram.
uint64_t command_calls(const SharedState& sh, uint16_t id);
std::array<uint64_t, kLatencyBuckets> command_histogram(const SharedState& sh, uint16_t id);
// The upper bound (µs) of the bucket holding the p-th percentile.
uint64_t percentile(const std::array<uint64_t, kLatencyBuckets>& h, uint64_t total, double p);

}  // namespace lockstep::server
