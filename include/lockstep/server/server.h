// The process: an acceptor loop on the main thread (listening socket, signals) that hands new
// connections to worker threads round-robin, and the workers that serve them.
#pragma once

#include <string>

#include "lockstep/config/config.h"

namespace lockstep::server {

// Runs until SIGTERM/SIGINT, then drains (bounded by timeouts.shutdown_ms). Returns the exit
// code: 0 after a clean drain, non-zero when the listener or a backend address cannot be set up.
int run(const config::Config& config, const std::string& config_path);

// Checks of the configuration that need more than the schema (lock settings against the lock
// backends). An error text, or empty when fine.
std::string check(const config::Config& config);

}  // namespace lockstep::server
