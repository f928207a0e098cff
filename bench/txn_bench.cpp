// Load generator for `scripts/bench txn`: MULTI, INCR k1 .. INCR kN, EXEC against one port.
// Not a test. Each of --clients threads has its own blocking hiredis connection and sends the
// whole transaction as one write (as client libraries pipeline MULTI/EXEC), then reads the
// N+2 replies; the latency of a transaction is that write to the EXEC reply. Transactions that
// complete inside the measured window (after --warmup) are counted.
//
// Keys. Lockstep's default slot map splits the 16384 Redis Cluster slots evenly over its
// backends in order (lockstep::proxy::SlotMap::even), so the keys of a transaction are picked
// by their slot: --spread 1 puts all of them under one {hash tag} that lands on backend 0;
// --spread 2 / 3 puts key j on backend j % spread. Every client has its own keys unless
// --contended (all clients share client 0's keys).
//
// Checks. EXEC must return an array of N integers; INCR of every key in one transaction must
// give the same value (they always move together, so unequal values mean a transaction was
// seen half applied) and, uncontended, one more than the client's previous transaction. After
// the run --verify reads every key back from the backend it should live on (the slot map's
// owner: the first port for 1 port, port i for backend i) and compares it with the number of
// committed transactions (all of this client's, or all clients' when contended).
//
// Output: one JSON line on stdout.
#include <hiredis/hiredis.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockstep/proxy/slot_map.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int clients = 1;
  double seconds = 4;
  double warmup = 1;
  int keys = 2;
  int spread = 1;
  int backends = 3;
  bool contended = false;
  std::string prefix = "bench:txn";
  std::vector<int> verify_ports;
  std::vector<std::pair<std::string, std::vector<int>>> pids;  // name -> pids (CPU accounting)
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "txn_bench: %s\n"
               "usage: txn_bench --port P [--host H] [--clients N] [--seconds S] [--warmup W]\n"
               "  [--keys K] [--spread 1|2|3] [--backends B] [--contended] [--prefix STR]\n"
               "  [--verify PORT[,PORT...]] [--pids NAME=PID[,PID...]]...\n",
               why);
  std::exit(2);
}

std::vector<int> int_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::atoi(item.c_str()));
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--host") o.host = val();
    else if (a == "--port") o.port = std::atoi(val().c_str());
    else if (a == "--clients") o.clients = std::atoi(val().c_str());
    else if (a == "--seconds") o.seconds = std::atof(val().c_str());
    else if (a == "--warmup") o.warmup = std::atof(val().c_str());
    else if (a == "--keys") o.keys = std::atoi(val().c_str());
    else if (a == "--spread") o.spread = std::atoi(val().c_str());
    else if (a == "--backends") o.backends = std::atoi(val().c_str());
    else if (a == "--contended") o.contended = true;
    else if (a == "--prefix") o.prefix = val();
    else if (a == "--verify") o.verify_ports = int_list(val());
    else if (a == "--pids") {
      std::string v = val();
      auto eq = v.find('=');
      if (eq == std::string::npos) usage("--pids wants NAME=PID[,PID...]");
      o.pids.emplace_back(v.substr(0, eq), int_list(v.substr(eq + 1)));
    } else usage(("unknown argument " + a).c_str());
  }
  if (o.port <= 0) usage("--port is required");
  if (o.clients < 1 || o.keys < 1 || o.seconds <= 0 || o.warmup < 0) usage("bad numbers");
  if (o.spread < 1 || o.spread > o.backends || o.spread > o.keys) usage("bad --spread");
  return o;
}

// The keys of one client (or of everyone, contended): key j on backend (spread == 1 ? 0 : j % spread).
std::vector<std::string> make_keys(const Options& o, int client,
                                   const lockstep::proxy::SlotMap& map) {
  std::vector<std::string> keys;
  const std::string base = o.prefix + ":c" + std::to_string(client);
  if (o.spread == 1) {
    for (int n = 0;; ++n) {
      std::string tag = base + ":t" + std::to_string(n);
      if (map.owner_of_key(tag) != 0) continue;
      for (int j = 0; j < o.keys; ++j) keys.push_back("{" + tag + "}:k" + std::to_string(j));
      return keys;
    }
  }
  for (int j = 0; j < o.keys; ++j) {
    for (int n = 0;; ++n) {
      std::string k = base + ":k" + std::to_string(j) + ":" + std::to_string(n);
      if (map.owner_of_key(k) == j % o.spread) {
        keys.push_back(std::move(k));
        break;
      }
    }
  }
  return keys;
}

struct ThreadResult {
  std::vector<uint32_t> lat_us;  // measured transactions only
  uint64_t measured = 0;
  uint64_t committed = 0;  // every EXEC that returned an array (warm-up included)
  uint64_t errors = 0;
  uint64_t anomalies = 0;
  std::map<std::string, uint64_t> error_kinds;
  std::string fatal;
};

std::string reply_text(const redisReply* r) {
  if (r == nullptr) return "(no reply)";
  switch (r->type) {
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
      return std::string(r->str, std::min<size_t>(r->len, 120));
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_INTEGER: return "(integer)";
    case REDIS_REPLY_ARRAY: return "(array)";
    default: return "(reply type " + std::to_string(r->type) + ")";
  }
}

// First word of an error (or a short description), as the error_kinds key.
std::string error_kind(const std::string& what) {
  auto sp = what.find(' ');
  std::string k = sp == std::string::npos ? what : what.substr(0, sp);
  return k.substr(0, 60);
}

void run_client(const Options& o, const std::vector<std::string>& keys, Clock::time_point t_start,
                Clock::time_point t_measure, Clock::time_point t_end, redisContext* ctx,
                ThreadResult& res) {
  // MULTI, INCR k..., EXEC as one pre-formatted blob: appended whole, written in one go by the
  // first redisGetReply.
  std::string blob;
  auto add = [&blob](int argc, const char** argv) {
    char* cmd = nullptr;
    int len = redisFormatCommandArgv(&cmd, argc, argv, nullptr);
    blob.append(cmd, static_cast<size_t>(len));
    redisFreeCommand(cmd);
  };
  const char* multi[] = {"MULTI"};
  const char* exec[] = {"EXEC"};
  add(1, multi);
  for (const auto& k : keys) {
    const char* incr[] = {"INCR", k.c_str()};
    add(2, incr);
  }
  add(1, exec);
  const int n = static_cast<int>(keys.size());
  res.lat_us.reserve(200000);
  long long prev = -1;

  std::this_thread::sleep_until(t_start);
  while (true) {
    const auto t0 = Clock::now();
    if (t0 >= t_end) break;
    redisAppendFormattedCommand(ctx, blob.data(), blob.size());
    bool ok = true;
    std::string err;
    redisReply* r = nullptr;
    for (int i = 0; i < n + 2; ++i) {
      void* p = nullptr;
      if (redisGetReply(ctx, &p) != REDIS_OK) {
        res.fatal = std::string("connection: ") + ctx->errstr;
        return;
      }
      r = static_cast<redisReply*>(p);
      if (i < n + 1) {
        const char* want = i == 0 ? "OK" : "QUEUED";
        if (r->type != REDIS_REPLY_STATUS || std::strcmp(r->str, want) != 0) {
          if (ok) err = (i == 0 ? "MULTI -> " : "queued INCR -> ") + reply_text(r);
          ok = false;
        }
        freeReplyObject(r);
        r = nullptr;
      }
    }
    const auto t1 = Clock::now();
    // r is EXEC's reply.
    if (ok && (r->type != REDIS_REPLY_ARRAY || r->elements != static_cast<size_t>(n))) {
      err = "EXEC -> " + reply_text(r);
      ok = false;
    }
    if (ok) {
      long long first = 0;
      for (int i = 0; i < n; ++i) {
        const redisReply* e = r->element[i];
        if (e->type != REDIS_REPLY_INTEGER) {
          err = "EXEC element -> " + reply_text(e);
          ok = false;
          break;
        }
        if (i == 0) first = e->integer;
        else if (e->integer != first) ++res.anomalies;
      }
      if (ok && !o.contended) {
        if (prev >= 0 && first != prev + 1) ++res.anomalies;
        prev = first;
      }
    }
    freeReplyObject(r);
    if (!ok) {
      ++res.errors;
      ++res.error_kinds[error_kind(err)];
      continue;
    }
    ++res.committed;
    if (t1 >= t_measure && t1 < t_end) {
      ++res.measured;
      res.lat_us.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
    }
  }
}

// utime + stime of a process in seconds (0 if it is gone).
double proc_cpu_s(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::stringstream ss(s.substr(rp + 2));
  std::string field;
  double ut = 0, st = 0;
  // After the comm field: state is field 3; utime / stime are fields 14 / 15.
  for (int i = 3; i <= 15 && ss >> field; ++i) {
    if (i == 14) ut = std::atof(field.c_str());
    if (i == 15) st = std::atof(field.c_str());
  }
  return (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Reads every key back from the backend the slot map puts it on; "" if all match.
std::string verify(const Options& o, const std::vector<std::vector<std::string>>& keys,
                   const std::vector<ThreadResult>& results,
                   const lockstep::proxy::SlotMap& map) {
  std::vector<redisContext*> conns;
  std::string why;
  for (int p : o.verify_ports) {
    redisContext* c = redisConnect(o.host.c_str(), p);
    if (c == nullptr || c->err) {
      why = "cannot connect to " + std::to_string(p);
      if (c) redisFree(c);
      break;
    }
    conns.push_back(c);
  }
  uint64_t total = 0;
  for (const auto& r : results) total += r.committed;
  for (size_t ci = 0; why.empty() && ci < keys.size(); ++ci) {
    const uint64_t want = o.contended ? total : results[ci].committed;
    for (const auto& k : keys[ci]) {
      const int b = conns.size() == 1 ? 0 : map.owner_of_key(k);
      if (b >= static_cast<int>(conns.size())) {
        why = "no port for backend " + std::to_string(b);
        break;
      }
      auto* r = static_cast<redisReply*>(redisCommand(conns[b], "GET %s", k.c_str()));
      std::string got = r == nullptr ? "(error)"
                        : r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len)
                        : r->type == REDIS_REPLY_NIL    ? "(nil)"
                                                        : reply_text(r);
      if (r) freeReplyObject(r);
      if (got != std::to_string(want)) {
        why = k + " on port " + std::to_string(o.verify_ports[b]) + " is " + got + ", expected " +
              std::to_string(want) + " (committed transactions)";
        break;
      }
    }
  }
  for (auto* c : conns) redisFree(c);
  return why;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto map = lockstep::proxy::SlotMap::even(o.backends);
  const int key_sets = o.contended ? 1 : o.clients;
  std::vector<std::vector<std::string>> keys;
  for (int c = 0; c < key_sets; ++c) keys.push_back(make_keys(o, c, map));

  // Connect everyone before the clock starts.
  std::vector<redisContext*> ctxs;
  for (int c = 0; c < o.clients; ++c) {
    timeval tv{5, 0};
    redisContext* ctx = redisConnectWithTimeout(o.host.c_str(), o.port, tv);
    if (ctx == nullptr || ctx->err) {
      std::printf("{\"fatal\": %s}\n",
                  json_str(std::string("connect: ") + (ctx ? ctx->errstr : "out of memory")).c_str());
      return 1;
    }
    redisSetTimeout(ctx, tv);
    ctxs.push_back(ctx);
  }

  const auto t_start = Clock::now() + std::chrono::milliseconds(50);
  const auto t_measure =
      t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto t_end = t_measure + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o.seconds));
  std::vector<ThreadResult> results(static_cast<size_t>(o.clients));
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back(run_client, std::cref(o), std::cref(keys[o.contended ? 0 : c]), t_start,
                         t_measure, t_end, ctxs[c], std::ref(results[c]));
  }

  // CPU used by each named process group (and by this process) over the measured window.
  std::this_thread::sleep_until(t_measure);
  std::vector<std::vector<double>> cpu0;
  for (const auto& [name, ps] : o.pids) {
    std::vector<double> v;
    for (int p : ps) v.push_back(proc_cpu_s(p));
    cpu0.push_back(v);
  }
  const double self0 = self_cpu_s();
  std::this_thread::sleep_until(t_end);
  std::vector<double> cpu_cores;
  for (size_t i = 0; i < o.pids.size(); ++i) {
    double used = 0;
    for (size_t j = 0; j < o.pids[i].second.size(); ++j)
      used += proc_cpu_s(o.pids[i].second[j]) - cpu0[i][j];
    cpu_cores.push_back(used / o.seconds);
  }
  const double self_cores = (self_cpu_s() - self0) / o.seconds;

  for (auto& t : threads) t.join();
  for (auto* c : ctxs) redisFree(c);

  std::vector<uint32_t> lat;
  uint64_t measured = 0, errors = 0, anomalies = 0;
  std::map<std::string, uint64_t> kinds;
  std::vector<std::string> fatals;
  for (auto& r : results) {
    lat.insert(lat.end(), r.lat_us.begin(), r.lat_us.end());
    measured += r.measured;
    errors += r.errors;
    anomalies += r.anomalies;
    for (const auto& [k, n] : r.error_kinds) kinds[k] += n;
    if (!r.fatal.empty()) fatals.push_back(r.fatal);
  }
  auto pct = [&lat](double q) -> double {
    if (lat.empty()) return -1;
    size_t i = std::min(lat.size() - 1, static_cast<size_t>(q * static_cast<double>(lat.size())));
    std::nth_element(lat.begin(), lat.begin() + static_cast<long>(i), lat.end());
    return lat[i] / 1000.0;
  };
  const double p50 = pct(0.50), p99 = pct(0.99), p999 = pct(0.999);
  const double pmax = lat.empty() ? -1 : *std::max_element(lat.begin(), lat.end()) / 1000.0;

  std::string verified = "skipped";
  if (!o.verify_ports.empty()) {
    std::string why = verify(o, keys, results, map);
    verified = why.empty() ? "ok" : why;
  }

  std::string out = "{";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"tps\": %.1f, \"txns\": %" PRIu64 ", \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
                "\"p999_ms\": %.3f, \"max_ms\": %.3f, \"errors\": %" PRIu64
                ", \"anomalies\": %" PRIu64 ", \"clients\": %d, \"keys\": %d, \"spread\": %d, "
                "\"contended\": %s, \"seconds\": %g, \"warmup\": %g, ",
                static_cast<double>(measured) / o.seconds, measured, p50, p99, p999, pmax, errors,
                anomalies, o.clients, o.keys, o.spread, o.contended ? "true" : "false", o.seconds,
                o.warmup);
  out += buf;
  out += "\"verify\": " + json_str(verified) + ", \"error_kinds\": {";
  bool first = true;
  for (const auto& [k, n] : kinds) {
    out += (first ? "" : ", ") + json_str(k) + ": " + std::to_string(n);
    first = false;
  }
  out += "}, \"cpu_cores\": {";
  for (size_t i = 0; i < o.pids.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s: %.3f, ", json_str(o.pids[i].first).c_str(), cpu_cores[i]);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "\"loadgen\": %.3f}", self_cores);
  out += buf;
  out += ", \"sample_keys\": [";
  for (size_t j = 0; j < keys[0].size(); ++j) out += (j ? ", " : "") + json_str(keys[0][j]);
  out += "]";
  if (!fatals.empty())
    out += ", \"fatal\": " + json_str(std::to_string(fatals.size()) + " connection(s) failed: " +
                                      fatals[0]);
  out += "}";
  std::puts(out.c_str());
  return fatals.empty() ? 0 : 1;
}
