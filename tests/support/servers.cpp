#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include <fmt/format.h>

#include "support/harness.h"

#ifndef LOCKSTEP_BINARY
#define LOCKSTEP_BINARY "build/lockstep"
#endif

namespace lockstep::test {

namespace {

std::string tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

bool verbose() {
  return std::getenv("LOCKSTEP_IT_VERBOSE") != nullptr;
}

std::string lockstep_binary() {
  const char* env = std::getenv("LOCKSTEP_IT_BINARY");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(LOCKSTEP_BINARY);
}

// Any complete RESP reply to PING means the server is serving (PONG, NOAUTH, LOADING...).
std::optional<Reply> ping_once(uint16_t port, Millis timeout) {
  auto conn = RawConn::try_connect(port, timeout);
  if (!conn) return std::nullopt;
  if (!conn->send("*1\r\n$4\r\nPING\r\n", timeout)) return std::nullopt;
  return conn->read_reply(timeout);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RedisServer

RedisServer::RedisServer(RedisOptions options) : options_(std::move(options)) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (launch(10s)) return;
    proc_.kill();
  }
  throw std::runtime_error("redis-server did not start; log:\n" + tail(log(), 4000));
}

RedisServer::~RedisServer() {
  if (paused_) resume();
  proc_.kill();  // no persistence needed at teardown: fastest
}

bool RedisServer::launch(Millis timeout) {
  std::vector<std::string> argv{kRedisServerPath,
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                options_.appendonly ? "yes" : "no",
                                "--dir",
                                dir_.path(),
                                "--daemonize",
                                "no",
                                "--logfile",
                                "",
                                "--protected-mode",
                                "no"};
  if (!options_.password.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(options_.password);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  const std::string log_path = dir_.file("redis.log");
  proc_ = ChildProcess(argv, log_path, log_path);
  paused_ = false;
  return wait_until(
             [&] {
               if (!proc_.running()) return true;  // checked below
               auto r = ping_once(port_, 200ms);
               if (!r) return false;
               if (r->type == Reply::Type::kStatus && r->str == "PONG") return true;
               return r->error_starts_with("NOAUTH");  // requirepass: serving, just locked
             },
             timeout) &&
         proc_.running();
}

std::string RedisServer::log() const {
  return read_file(dir_.file("redis.log"));
}

void RedisServer::stop(Millis grace) {
  paused_ = false;
  proc_.terminate(grace);
}

void RedisServer::kill9() {
  paused_ = false;
  proc_.kill();
}

void RedisServer::restart() {
  if (proc_.running()) stop();
  // The port was ours a moment ago; something else may grab it, but on a test box that is
  // rare enough to report rather than work around.
  if (!launch(15s)) {
    throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) +
                             "; log:\n" + tail(log(), 4000));
  }
}

void RedisServer::pause() {
  proc_.signal(SIGSTOP);
  paused_ = true;
}

void RedisServer::resume() {
  proc_.signal(SIGCONT);
  paused_ = false;
}

// ---------------------------------------------------------------------------------------------
// LockstepProcess

std::string LockstepProcess::write_config(const std::vector<std::string>& backends,
                                          const LockstepOptions& o) {
  std::string yaml = fmt::format("listen: 127.0.0.1:{}\n", port_);
  if (o.backends_yaml) {
    yaml += *o.backends_yaml;
    if (!yaml.ends_with('\n')) yaml += '\n';
  } else {
    yaml += "backends:\n";
    for (const auto& b : backends) yaml += fmt::format("  - {}\n", b);
  }
  yaml += o.extra_yaml;
  if (!yaml.ends_with('\n')) yaml += '\n';
  std::ofstream(config_path_, std::ios::trunc) << yaml;
  return yaml;
}

LockstepProcess::LockstepProcess(const std::vector<std::string>& backend_addresses,
                                 LockstepOptions options) {
  config_path_ = dir_.file("lockstep.yaml");
  stdout_path_ = dir_.file("stdout.log");
  stderr_path_ = dir_.file("stderr.log");
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_port();
    write_config(backend_addresses, options);
    std::vector<std::string> argv{lockstep_binary(), "--config", config_path_};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    std::ofstream(stderr_path_, std::ios::trunc).flush();
    proc_ = ChildProcess(argv, stdout_path_, stderr_path_);
    if (!options.wait_ready) return;
    if (wait_ready(options.ready_timeout)) return;
    last_error = proc_.running()
                     ? "did not answer PING in time"
                     : fmt::format("exited with code {}", proc_.exit_code().value_or(-1));
    last_error += "\nconfig:\n" + config_text() + "stderr:\n" + tail(stderr_text(), 4000);
    proc_.kill();
    // Only a lost race for the port is worth another attempt.
    if (stderr_text().find("in use") == std::string::npos) break;
  }
  throw std::runtime_error("lockstep did not start (" + lockstep_binary() + "): " + last_error);
}

bool LockstepProcess::wait_ready(Millis timeout) {
  return wait_until(
             [&] {
               if (!proc_.running()) return true;
               return ping_once(port_, 500ms).has_value();
             },
             timeout, 10ms) &&
         proc_.running();
}

void LockstepProcess::dump_diagnostics(std::string_view why) {
  std::cerr << "---- lockstep (pid " << proc_.pid() << ", port " << port_ << ") " << why
            << "\n---- config " << config_path_ << ":\n"
            << config_text() << "---- stderr:\n"
            << tail(stderr_text(), 8000) << "\n---- end\n";
}

LockstepProcess::~LockstepProcess() {
  if (!proc_.started()) return;
  const bool exited_before_teardown = !proc_.running();
  if (!exited_before_teardown) proc_.terminate(5s);
  const int code = proc_.exit_code().value_or(-1);
  if (current_test_failed()) {
    dump_diagnostics(fmt::format("test failed; exit code {}", code));
  } else if (exited_before_teardown && code != 0) {
    dump_diagnostics(fmt::format("exited during the test with code {}", code));
  } else if (verbose()) {
    dump_diagnostics(fmt::format("exit code {}", code));
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

Cluster::Cluster(ClusterOptions options) {
  for (size_t i = 0; i < options.backends; ++i) {
    backends_.push_back(std::make_unique<RedisServer>(options.redis));
  }
  LockstepOptions lo = options.lockstep;
  std::string yaml = options.extra_yaml;
  if (!yaml.empty() && !yaml.ends_with('\n')) yaml += '\n';
  lo.extra_yaml = yaml + lo.extra_yaml;
  proxy_ = std::make_unique<LockstepProcess>(backend_addresses(), lo);
}

std::vector<std::string> Cluster::backend_addresses() const {
  std::vector<std::string> out;
  for (const auto& b : backends_) out.push_back(b->address());
  return out;
}

std::vector<size_t> Cluster::holders(const std::string& key) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < backends_.size(); ++i) {
    Client c = direct(i);
    Reply r = c("EXISTS", key);
    if (r.is_integer() && r.integer > 0) out.push_back(i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Slots

uint16_t crc16_xmodem(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string_view hash_tag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

int slot_of(std::string_view key) {
  return crc16_xmodem(hash_tag(key)) & (kSlots - 1);
}

size_t owner_of_slot(int slot, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const long first = static_cast<long>(i) * kSlots / static_cast<long>(n);
    const long last = static_cast<long>(i + 1) * kSlots / static_cast<long>(n) - 1;
    if (slot >= first && slot <= last) return i;
  }
  throw std::out_of_range("slot out of range");
}

size_t owner_of(std::string_view key, size_t n) {
  return owner_of_slot(slot_of(key), n);
}

std::string key_on(size_t backend, size_t n, std::string_view prefix, size_t index) {
  size_t found = 0;
  for (size_t k = 0;; ++k) {
    std::string key = fmt::format("{}:{}", prefix, k);
    if (owner_of(key, n) == backend && found++ == index) return key;
  }
}

}  // namespace lockstep::test
