// Load generator for `scripts/bench consensus`. Not a test. Three subcommands, each printing
// one JSON line on stdout:
//
//   fsync --dir D [--count N]
//       The cost of one durable append on this disk: N times, write 128 bytes at the end of a
//       file in D and fdatasync it (what LogStorage::save does once per Ready). p50/p99 in us.
//   load --port P [--clients C] [--seconds S] [--warmup W] [--path locks.retry_delay_ms]
//       C threads, each with its own blocking connection, send LOCKSTEP CONFIG SET <path> <v>
//       one after another (v changes every time, so every one is a real change); a change's
//       latency is from the write to the +OK (chosen and applied on the replica at P).
//   failover --ports P1,P2,P3 --pids PID1,PID2,PID3
//       Finds the leader (LOCKSTEP CLUSTER INFO), commits one change through it, kill -9s it,
//       then proposes through a survivor (retrying -TRYAGAIN and I/O errors) until a change is
//       chosen and applied there: the time from the kill to that +OK, and the new leader.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

std::vector<long> split_numbers(const std::string& s) {
  std::vector<long> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string part =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(std::strtol(part.c_str(), nullptr, 10));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

using Ctx = std::unique_ptr<redisContext, void (*)(redisContext*)>;
using Rep = std::unique_ptr<redisReply, void (*)(void*)>;

Ctx connect(int port, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  Ctx c(redisConnectWithTimeout("127.0.0.1", port, tv), redisFree);
  if (c && !c->err) redisSetTimeout(c.get(), tv);
  return c;
}

Rep command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Rep(static_cast<redisReply*>(
                 redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())),
             freeReplyObject);
}

std::string reply_text(const Rep& r) {
  if (!r) return "(I/O error)";
  if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR ||
      r->type == REDIS_REPLY_STRING)
    return std::string(r->str, r->len);
  return "(unexpected reply type)";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out;
}

std::string arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

int run_fsync(int argc, char** argv) {
  std::string dir = arg(argc, argv, "--dir", ".");
  int count = std::atoi(arg(argc, argv, "--count", "200").c_str());
  std::string path = dir + "/fsync-probe.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::printf("{\"fatal\":\"cannot create %s: %s\"}\n", json_escape(path).c_str(),
                std::strerror(errno));
    return 1;
  }
  char block[128];
  std::memset(block, 'x', sizeof block);
  std::vector<double> us;
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    if (::write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block) ||
        ::fdatasync(fd) != 0) {
      std::printf("{\"fatal\":\"write/fdatasync failed: %s\"}\n", std::strerror(errno));
      ::close(fd);
      return 1;
    }
    us.push_back(us_since(t0));
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::printf("{\"count\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", count, percentile(us, 0.5),
              percentile(us, 0.99));
  return 0;
}

int run_load(int argc, char** argv) {
  const int port = std::atoi(arg(argc, argv, "--port", "0").c_str());
  const int clients = std::max(1, std::atoi(arg(argc, argv, "--clients", "1").c_str()));
  const double seconds = std::atof(arg(argc, argv, "--seconds", "4").c_str());
  const double warmup = std::atof(arg(argc, argv, "--warmup", "0.5").c_str());
  const std::string path = arg(argc, argv, "--path", "locks.retry_delay_ms");
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<long> errors{0};
  std::string first_error;
  const auto start = Clock::now();
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      Ctx c = connect(port, 10000);
      if (!c || c->err) {
        ++errors;
        std::lock_guard<std::mutex> g(mu);
        if (first_error.empty()) first_error = "cannot connect";
        return;
      }
      std::vector<double> mine;
      for (long i = 0; Clock::now() < stop_at; ++i) {
        std::string value = std::to_string(100 + (t * 1000 + i) % 50000);
        auto t0 = Clock::now();
        Rep r = command(c.get(), {"LOCKSTEP", "CONFIG", "SET", path, value});
        double us = us_since(t0);
        if (!r || r->type != REDIS_REPLY_STATUS) {
          ++errors;
          std::lock_guard<std::mutex> g(mu);
          if (first_error.empty()) first_error = reply_text(r);
          if (!r) return;
          continue;
        }
        if (t0 >= measure_from && Clock::now() <= stop_at) mine.push_back(us);
      }
      std::lock_guard<std::mutex> g(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  std::printf(
      "{\"clients\":%d,\"changes\":%zu,\"per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"errors\":%ld,\"first_error\":\"%s\"}\n",
      clients, lat.size(), static_cast<double>(lat.size()) / seconds, percentile(lat, 0.5),
      percentile(lat, 0.99), errors.load(), json_escape(first_error).c_str());
  return 0;
}

std::string info_field(const std::string& info, const std::string& name) {
  size_t p = info.find(name + ":");
  while (p != std::string::npos && p > 0 && info[p - 1] != '\n') p = info.find(name + ":", p + 1);
  if (p == std::string::npos) return {};
  p += name.size() + 1;
  return info.substr(p, info.find('\r', p) - p);
}

int run_failover(int argc, char** argv) {
  std::vector<long> ports = split_numbers(arg(argc, argv, "--ports", ""));
  std::vector<long> pids = split_numbers(arg(argc, argv, "--pids", ""));
  if (ports.empty() || ports.size() != pids.size()) {
    std::printf("{\"fatal\":\"--ports and --pids must list the same replicas\"}\n");
    return 1;
  }
  // The leader, as every replica sees it (they must agree), and one committed change.
  long leader = 0;
  for (int attempt = 0; attempt < 200 && leader == 0; ++attempt) {
    std::string seen;
    bool agree = true;
    for (long p : ports) {
      Ctx c = connect(static_cast<int>(p), 2000);
      Rep r = c && !c->err ? command(c.get(), {"LOCKSTEP", "CLUSTER", "INFO"})
                           : Rep(nullptr, freeReplyObject);
      std::string l = r && r->type == REDIS_REPLY_STRING ? info_field(reply_text(r), "leader") : "";
      if (l.empty() || l == "0" || (!seen.empty() && l != seen)) agree = false;
      seen = l;
    }
    if (agree) leader = std::strtol(seen.c_str(), nullptr, 10);
    if (leader == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (leader < 1 || leader > static_cast<long>(ports.size())) {
    std::printf("{\"fatal\":\"the replicas do not agree on a leader\"}\n");
    return 1;
  }
  const size_t li = static_cast<size_t>(leader - 1);
  {
    Ctx c = connect(static_cast<int>(ports[li]), 5000);
    Rep r = c && !c->err
                ? command(c.get(), {"LOCKSTEP", "CONFIG", "SET", "locks.retry_delay_ms", "201"})
                : Rep(nullptr, freeReplyObject);
    if (!r || r->type != REDIS_REPLY_STATUS) {
      std::printf("{\"fatal\":\"no commit through the leader before the kill: %s\"}\n",
                  json_escape(reply_text(r)).c_str());
      return 1;
    }
  }
  const size_t survivor = (li + 1) % ports.size();
  Ctx c = connect(static_cast<int>(ports[survivor]), 10000);
  if (!c || c->err) {
    std::printf("{\"fatal\":\"cannot connect to a survivor\"}\n");
    return 1;
  }
  const auto t0 = Clock::now();
  if (::kill(static_cast<pid_t>(pids[li]), SIGKILL) != 0) {
    std::printf("{\"fatal\":\"kill -9 %ld: %s\"}\n", pids[li], std::strerror(errno));
    return 1;
  }
  std::string last;
  for (int i = 0; us_since(t0) < 30e6; ++i) {
    Rep r = command(c.get(),
                    {"LOCKSTEP", "CONFIG", "SET", "locks.retry_delay_ms", std::to_string(300 + i)});
    if (r && r->type == REDIS_REPLY_STATUS) {
      double ms = us_since(t0) / 1000;
      Rep info = command(c.get(), {"LOCKSTEP", "CLUSTER", "INFO"});
      std::string nl = info ? info_field(reply_text(info), "leader") : "?";
      std::printf("{\"killed\":%ld,\"failover_ms\":%.1f,\"new_leader\":\"%s\"}\n", leader, ms,
                  json_escape(nl).c_str());
      return 0;
    }
    last = reply_text(r);
    if (!r) {
      c = connect(static_cast<int>(ports[survivor]), 10000);
      if (!c || c->err) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("{\"fatal\":\"no commit within 30 s of the kill: %s\"}\n", json_escape(last).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "fsync") return run_fsync(argc, argv);
  if (mode == "load") return run_load(argc, argv);
  if (mode == "failover") return run_failover(argc, argv);
  std::fprintf(stderr,
               "usage: consensus_bench fsync --dir D [--count N]\n"
               "       consensus_bench load --port P [--clients C] [--seconds S] [--warmup W]\n"
               "       consensus_bench failover --ports P1,P2,P3 --pids PID1,PID2,PID3\n");
  return 2;
}
