// Integration-test support: real redis-server backends, a real lockstep process, and clients
// (hiredis and raw TCP) to talk to both.
//
// Everything here is RAII: every child process is killed and reaped, every temporary directory
// removed, even when a test fails half-way (REQUIRE throws). Children also die with the test
// binary (PR_SET_PDEATHSIG), so a crashed run leaves nothing behind.
//
// Timing: nothing waits a fixed time for correctness. Conditions are polled with a deadline
// (wait_until); socket reads take a deadline and report what they got.
//
// Environment knobs (for debugging a failing run):
//   LOCKSTEP_IT_VERBOSE=1  print lockstep's stderr when each process is torn down
//   LOCKSTEP_IT_KEEP=1     keep temporary directories (configs, logs, redis dirs)
//   LOCKSTEP_IT_BINARY=... run this lockstep executable instead of the one built with the tests
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace lockstep::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

inline constexpr const char* kRedisServerPath = "/usr/bin/redis-server";
inline constexpr const char* kRedisCliPath = "/usr/bin/redis-cli";
inline constexpr int kSlots = 16384;

// ---------------------------------------------------------------------------------------------
// Small utilities

// Polls `pred` every `interval` until it returns true or `timeout` elapses. Returns the last
// value of `pred` (evaluated once more at the deadline).
bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis interval = 5ms);

// A currently free TCP port on 127.0.0.1 (bind port 0, read it back, close).
uint16_t free_port();

// Milliseconds elapsed since `start`.
inline long long elapsed_ms(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start).count();
}

// VmRSS of a process in KiB (from /proc/<pid>/status); -1 when unavailable.
long rss_kb(pid_t pid);

std::string read_file(const std::string& path);

// For assertions on optional results (Catch2 prints an optional as "{?}"): the value, or a
// marker that shows what went wrong.
inline std::string or_none(const std::optional<std::string>& s) {
  return s.value_or("<none>");
}

// True once any assertion of the running Catch2 test case has failed (used to print process
// logs on failure only).
bool current_test_failed();

// A directory under /tmp removed (recursively) on destruction unless LOCKSTEP_IT_KEEP is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// Child processes

// One forked child with stdin/stdout/stderr redirected to files. Killed (SIGKILL) and reaped on
// destruction if still running.
class ChildProcess {
 public:
  ChildProcess() = default;
  // argv[0] must be an absolute path. Empty paths mean /dev/null.
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
               const std::string& stderr_path, const std::string& stdin_path = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  // Still running (not exited and not reaped). Reaps the child if it has exited.
  bool running();
  void signal(int sig) const;
  // Exit code once the child ends: its exit status, or 128 + signal number when killed by a
  // signal. nullopt when it is still running after `timeout`.
  std::optional<int> wait_exit(Millis timeout);
  // The exit code if the child has already been reaped.
  std::optional<int> exit_code() const { return exit_code_; }
  // SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
  int terminate(Millis grace);
  // SIGKILL and reap.
  int kill();

 private:
  void reset();
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: timed out (the process was killed)
  std::string out;
  std::string err;
};

// Runs argv to completion with `stdin_data` on its stdin; captures stdout and stderr.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data,
                          Millis timeout = 30s);

// Runs /usr/bin/redis-cli with `args` (e.g. {"-p", "6380", "--no-raw"}) and `stdin_data`.
ProcessResult run_redis_cli(const std::vector<std::string>& args, const std::string& stdin_data,
                            Millis timeout = 30s);

// ---------------------------------------------------------------------------------------------
// Replies

// A deep copy of one reply (from hiredis or from the built-in RESP2/RESP3 parser).
struct Reply {
  enum class Type {
    kStatus,
    kError,
    kInteger,
    kString,
    kNil,
    kArray,
    // RESP3 types (only produced by the raw parser; hiredis 0.14 speaks RESP2 only).
    kDouble,
    kBool,
    kMap,  // elements hold key, value, key, value, ...
    kSet,
    kPush,
    kBigNumber,
    kVerbatim,
    kAttribute,
    // Not a reply: the connection failed (I/O error, closed by peer, timeout). `str` says why.
    kIoError,
  };

  Type type = Type::kNil;
  std::string str;        // status, error, string, double, big number, verbatim, io error
  long long integer = 0;  // integer, bool (0/1)
  std::vector<Reply> elements;

  static Reply status(std::string s) { return Reply{Type::kStatus, std::move(s), 0, {}}; }
  static Reply error(std::string s) { return Reply{Type::kError, std::move(s), 0, {}}; }
  static Reply integer_(long long v) { return Reply{Type::kInteger, {}, v, {}}; }
  static Reply string(std::string s) { return Reply{Type::kString, std::move(s), 0, {}}; }
  static Reply nil() { return Reply{}; }
  static Reply array(std::vector<Reply> e) { return Reply{Type::kArray, {}, 0, std::move(e)}; }
  static Reply strings(const std::vector<std::string>& items);  // array of bulk strings
  static Reply io_error(std::string why) { return Reply{Type::kIoError, std::move(why), 0, {}}; }
  static Reply from_hiredis(const redisReply* r);

  bool is_error() const { return type == Type::kError; }
  bool is_io_error() const { return type == Type::kIoError; }
  bool is_nil() const { return type == Type::kNil; }
  bool is_ok() const { return type == Type::kStatus && str == "OK"; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString; }
  bool is_integer() const { return type == Type::kInteger; }
  bool error_starts_with(std::string_view prefix) const {
    return is_error() && std::string_view(str).substr(0, prefix.size()) == prefix;
  }

  // The string elements of an array (strings/status; others rendered with to_string()).
  std::vector<std::string> as_strings() const;
  // A copy whose array elements are sorted (recursively not): for replies whose order Redis
  // does not define (SMEMBERS, KEYS, ...).
  Reply sorted() const;
  // Human-readable, one line: +OK, -ERR x, (integer) 1, "abc", (nil), [a, b], {k: v}, ...
  std::string to_string() const;

  bool operator==(const Reply& other) const = default;
};

std::ostream& operator<<(std::ostream& os, const Reply& r);

inline Reply or_none(const std::optional<Reply>& r) {
  return r ? *r : Reply::io_error("no complete reply");
}

// Encodes argv as a RESP multibulk command.
std::string encode_command(const std::vector<std::string>& argv);

enum class ParseStatus { kOk, kIncomplete, kInvalid };
// Parses one RESP2/RESP3 reply from the front of `buf`; on kOk sets `consumed` and `out`.
ParseStatus parse_reply(std::string_view buf, size_t& consumed, Reply& out);

// ---------------------------------------------------------------------------------------------
// Clients

// A blocking hiredis connection. All calls have a socket timeout (default 10 s) so a hung
// server fails the test instead of hanging it. After an I/O error every call returns a kIoError
// reply.
class Client {
 public:
  explicit Client(uint16_t port, Millis timeout = 10s, const std::string& host = "127.0.0.1");
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const;
  std::string error() const;  // hiredis error text, empty when fine
  uint16_t port() const { return port_; }

  Reply command(const std::vector<std::string>& argv);
  template <typename... Args>
  Reply operator()(const Args&... args) {
    return command(std::vector<std::string>{std::string(args)...});
  }

  // Pipelining: append commands (buffered locally), then read their replies in order.
  // Note: hiredis writes the whole buffer before reading, so for very large pipelines (that
  // may trip the server's back-pressure) use pipeline_raw() instead.
  void append(const std::vector<std::string>& argv);
  Reply read_reply();
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);

  redisContext* raw() { return ctx_.get(); }

 private:
  struct Free {
    void operator()(redisContext* c) const;
  };
  std::unique_ptr<redisContext, Free> ctx_;
  uint16_t port_ = 0;
};

// A plain non-blocking TCP socket for sending arbitrary bytes and reading with deadlines.
// Everything read is appended to buffer(); the read_* helpers consume from its front.
class RawConn {
 public:
  // Connects or throws std::runtime_error.
  explicit RawConn(uint16_t port, Millis timeout = 2s);
  // nullopt when the connection cannot be established (refused, timeout); errno text in `why`.
  static std::optional<RawConn> try_connect(uint16_t port, Millis timeout = 2s,
                                            std::string* why = nullptr);
  ~RawConn();
  RawConn(RawConn&& other) noexcept;
  RawConn& operator=(RawConn&& other) noexcept;
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  int fd() const { return fd_; }
  // Sends all bytes (waiting for socket space up to `timeout`); false on error or timeout.
  // Safe to call from another thread than the reader's.
  bool send(std::string_view bytes, Millis timeout = 10s);
  // Sends what fits without waiting; returns the number of bytes sent (0 when full or failed).
  size_t send_some(std::string_view bytes);
  void shutdown_write();
  void close();

  // Reads at least one more chunk into the buffer. False on EOF, error or timeout.
  bool read_more(Millis timeout);
  // Reads until `pred(buffer())` holds; false on EOF/error/timeout (buffer keeps what arrived).
  bool read_until(const std::function<bool(std::string_view)>& pred, Millis timeout);
  // Exactly n bytes (consumed from the buffer), or nullopt.
  std::optional<std::string> read_exact(size_t n, Millis timeout);
  // One line including its "\r\n" (consumed), or nullopt.
  std::optional<std::string> read_line(Millis timeout);
  // One complete RESP reply (consumed). nullopt on timeout/EOF/invalid data.
  std::optional<Reply> read_reply(Millis timeout);
  // Like read_reply but returns the reply's raw bytes.
  std::optional<std::string> read_raw_reply(Millis timeout);
  // Reads (and keeps in the buffer) until the peer closes the connection (EOF or reset).
  // True when that happened within `timeout`.
  bool closed_by_peer(Millis timeout);

  // What has been read and not consumed yet.
  std::string_view pending() const { return std::string_view(buf_).substr(off_); }
  void consume(size_t n);
  std::string& buffer();  // pending data as a string (compacts)
  bool eof() const { return eof_; }

 private:
  RawConn() = default;
  int fd_ = -1;
  std::string buf_;
  size_t off_ = 0;  // consumed prefix of buf_
  bool eof_ = false;
};

// Sends `payload` (e.g. many encode_command() strings) on a fresh connection from a writer
// thread while reading `count` replies, so a large pipeline cannot deadlock on socket buffers.
// Missing replies (timeout/EOF) end the vector early.
std::vector<Reply> pipeline_raw(uint16_t port, const std::string& payload, size_t count,
                                Millis timeout = 60s);

// ---------------------------------------------------------------------------------------------
// Redis servers

struct RedisOptions {
  bool appendonly = false;
  std::string password;  // requirepass
  std::vector<std::string> extra_args;
};

class RedisServer {
 public:
  explicit RedisServer(RedisOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return proc_.pid(); }
  bool running() { return proc_.running(); }
  const std::string& dir() const { return dir_.path(); }

  void stop(Millis grace = 5s);  // SIGTERM, then SIGKILL after `grace`; reaped
  void kill9();                  // SIGKILL; reaped
  void restart();                // stop (if running) and start again on the same port
  void pause();                  // SIGSTOP
  void resume();                 // SIGCONT
  Client client(Millis timeout = 10s) const { return Client(port_, timeout); }
  std::string log() const;

 private:
  bool launch(Millis timeout);  // false if it did not answer PING in time
  RedisOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  ChildProcess proc_;
  bool paused_ = false;
};

// ---------------------------------------------------------------------------------------------
// Lockstep

struct LockstepOptions {
  std::string extra_yaml;                    // appended verbatim to the generated config
  std::optional<std::string> backends_yaml;  // replaces the generated `backends:` section
  std::vector<std::string> extra_args;       // after --config <file>
  bool wait_ready = true;                    // wait until it answers PING (any reply)
  Millis ready_timeout = 15s;
};

class LockstepProcess {
 public:
  LockstepProcess(const std::vector<std::string>& backend_addresses, LockstepOptions options = {});
  ~LockstepProcess();
  LockstepProcess(const LockstepProcess&) = delete;
  LockstepProcess& operator=(const LockstepProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  bool running() { return proc_.running(); }
  void signal(int sig) { proc_.signal(sig); }
  std::optional<int> wait_exit(Millis timeout) { return proc_.wait_exit(timeout); }
  long rss_kb() const { return test::rss_kb(proc_.pid()); }

  const std::string& config_path() const { return config_path_; }
  std::string config_text() const { return read_file(config_path_); }
  std::string stderr_text() const { return read_file(stderr_path_); }
  std::string stdout_text() const { return read_file(stdout_path_); }
  // Waits until it answers PING (any RESP reply). Throws if the process exits first.
  bool wait_ready(Millis timeout);

  Client client(Millis timeout = 10s) const { return Client(port_, timeout); }
  RawConn raw(Millis timeout = 2s) const { return RawConn(port_, timeout); }

 private:
  void dump_diagnostics(std::string_view why);
  std::string write_config(const std::vector<std::string>& backends, const LockstepOptions& o);
  TempDir dir_;
  uint16_t port_ = 0;
  std::string config_path_, stdout_path_, stderr_path_;
  ChildProcess proc_;
};

// ---------------------------------------------------------------------------------------------
// Slots

// LOCKSTEP <argv...> (an admin command) on `c`, asked again while it answers -TRYAGAIN: a
// lone replica (no `cluster` section) bootstraps its log for a moment after it starts.
Reply lockstep_admin(Client& c, std::vector<std::string> argv, Millis timeout = 10s);

// Redis Cluster hash slot: CRC16-XMODEM of the key (or of its hash tag) mod 16384.
uint16_t crc16_xmodem(std::string_view data);
std::string_view hash_tag(std::string_view key);  // the part that is hashed
int slot_of(std::string_view key);
// Default layout: backend i owns [i*16384/n, (i+1)*16384/n - 1] (integer division).
size_t owner_of_slot(int slot, size_t n_backends);
size_t owner_of(std::string_view key, size_t n_backends);
// The index-th key of the form "<prefix>:<k>" that the default layout puts on `backend`.
std::string key_on(size_t backend, size_t n_backends, std::string_view prefix, size_t index = 0);

// ---------------------------------------------------------------------------------------------
// The usual fixture: N redis-servers behind one lockstep.

struct ClusterOptions {
  size_t backends = 3;
  std::string extra_yaml;  // lockstep config
  RedisOptions redis;
  LockstepOptions lockstep;  // extra_yaml here is appended after `extra_yaml`
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  size_t size() const { return backends_.size(); }
  RedisServer& backend(size_t i) { return *backends_.at(i); }
  LockstepProcess& proxy() { return *proxy_; }
  uint16_t port() const { return proxy_->port(); }
  std::vector<std::string> backend_addresses() const;

  Client client(Millis timeout = 10s) const { return proxy_->client(timeout); }
  RawConn raw(Millis timeout = 2s) const { return proxy_->raw(timeout); }
  Client direct(size_t i, Millis timeout = 10s) const { return backends_.at(i)->client(timeout); }

  size_t owner(std::string_view key) const { return owner_of(key, size()); }
  std::string key_on(size_t backend, std::string_view prefix, size_t index = 0) const {
    return test::key_on(backend, size(), prefix, index);
  }
  // Which backends hold `key` (EXISTS on each directly).
  std::vector<size_t> holders(const std::string& key) const;

 private:
  std::vector<std::unique_ptr<RedisServer>> backends_;
  std::unique_ptr<LockstepProcess> proxy_;
};

}  // namespace lockstep::test
