#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "support/harness.h"

namespace lockstep::test {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// In the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::vector<char*>& argv, const char* in, const char* out,
                             const char* err, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
  ::setpgid(0, 0);  // own process group: a stray SIGINT to the test does not hit it first
  auto redirect = [](const char* path, int target, int flags) {
    int fd = ::open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) ::_exit(125);
    if (::dup2(fd, target) < 0) ::_exit(125);
  };
  redirect(in, STDIN_FILENO, O_RDONLY);
  redirect(out, STDOUT_FILENO, O_WRONLY | O_CREAT | O_APPEND);
  redirect(err, STDERR_FILENO, O_WRONLY | O_CREAT | O_APPEND);
  // Do not leak the test's sockets (hiredis connections are not close-on-exec): a child holding
  // a copy would keep connections open after the test closes them.
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  ::signal(SIGPIPE, SIG_DFL);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                           const std::string& stderr_path, const std::string& stdin_path) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  std::vector<std::string> args = argv;  // stable storage for the char* array
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const std::string in = stdin_path.empty() ? "/dev/null" : stdin_path;
  const std::string out = stdout_path.empty() ? "/dev/null" : stdout_path;
  const std::string err = stderr_path.empty() ? "/dev/null" : stderr_path;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) exec_child(cargv, in.c_str(), out.c_str(), err.c_str(), parent);
  pid_ = pid;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_code_) kill();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_code_(std::exchange(other.exit_code_, {})) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_code_) kill();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = std::exchange(other.exit_code_, {});
  }
  return *this;
}

bool ChildProcess::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  if (r < 0 && errno == ECHILD) {
    exit_code_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(Millis timeout) {
  if (pid_ <= 0) return std::nullopt;
  wait_until([this] { return !running(); }, timeout, 2ms);
  return exit_code_;
}

int ChildProcess::terminate(Millis grace) {
  if (pid_ <= 0) return -1;
  if (exit_code_) return *exit_code_;
  ::kill(pid_, SIGCONT);  // a SIGSTOPped process would never act on SIGTERM
  ::kill(pid_, SIGTERM);
  if (auto code = wait_exit(grace)) return *code;
  return kill();
}

int ChildProcess::kill() {
  if (pid_ <= 0) return -1;
  if (exit_code_) return *exit_code_;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      exit_code_ = -1;
      return -1;
    }
  }
  exit_code_ = decode_status(status);
  return *exit_code_;
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data,
                          Millis timeout) {
  TempDir dir;
  const std::string in = dir.file("stdin"), out = dir.file("stdout"), err = dir.file("stderr");
  {
    std::ofstream f(in, std::ios::binary);
    f << stdin_data;
  }
  ChildProcess proc(argv, out, err, in);
  ProcessResult result;
  if (auto code = proc.wait_exit(timeout)) {
    result.exit_code = *code;
  } else {
    proc.kill();
    result.exit_code = -1;
  }
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

ProcessResult run_redis_cli(const std::vector<std::string>& args, const std::string& stdin_data,
                            Millis timeout) {
  std::vector<std::string> argv{kRedisCliPath};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, stdin_data, timeout);
}

}  // namespace lockstep::test
