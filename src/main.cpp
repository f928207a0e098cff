// lockstep: a Redis-protocol proxy that shards keys over several redis-server backends.
#include <cstdio>
#include <cstring>
#include <string>

#include "lockstep/acl/acl.h"
#include "lockstep/admin/logging.h"
#include "lockstep/config/config.h"
#include "lockstep/proxy/command_support.h"
#include "lockstep/server/server.h"

namespace {

constexpr const char* kUsage = R"(Usage: lockstep [options]

A Redis-protocol proxy: clients connect to it as to one Redis server; it shards keys over the
configured redis-server backends by Redis Cluster hash slots ({hash tags} co-locate keys).

Options:
  -c, --config FILE      configuration file (default: config/lockstep.yaml)
      --check-config     validate the configuration, print the effective configuration
                         (secrets redacted) and exit 0, or print the error and exit 1
      --config-reference print every configuration key with its default (Markdown) and exit
      --command-support  print which Redis commands are supported, restricted or refused
                         (Markdown) and exit
  -v, --version          print the version and exit
  -h, --help             print this help and exit

Replicas: with a `cluster:` section (id, listen, data_dir, secret, peers) several Lockstep
replicas agree on backends, the slot map and replicated settings through Multi-Paxos and
apply every change live; LOCKSTEP CLUSTER INFO / CONFIG GET|SET|WATCH / BACKEND / SLOTS /
MEMBER administer it (see README, "Replicated configuration"). A new replica joins a running
cluster with `cluster.start: join` and LOCKSTEP MEMBER ADD. Without `cluster:` Lockstep is
one replica whose replicated state lives in memory.

Signals: SIGTERM or SIGINT stop accepting, finish in-flight requests (up to
timeouts.shutdown_ms) and exit 0; a second signal exits at once. SIGHUP reopens
log.file (for log rotation).
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/lockstep.yaml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-v" || arg == "--version") {
      std::printf("lockstep %s\n", LOCKSTEP_VERSION);
      return 0;
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--config-reference") {
      std::fputs(lockstep::config::reference_markdown().c_str(), stdout);
      return 0;
    } else if (arg == "--command-support") {
      std::fputs(lockstep::proxy::command_support_markdown(lockstep::proxy::CommandTable::builtin())
                     .c_str(),
                 stdout);
      return 0;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else {
      std::fprintf(stderr, "lockstep: unknown option '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  lockstep::config::ConfigError error;
  auto cfg = lockstep::config::load_file(config_path, error);
  if (!cfg) {
    std::fprintf(stderr, "lockstep: invalid configuration: %s\n", error.format().c_str());
    return 1;
  }
  // Users' rules need the command table, so they are checked here rather than by the loader.
  if (!lockstep::acl::Acl::from_config(*cfg, error, config_path)) {
    std::fprintf(stderr, "lockstep: invalid configuration: %s\n", error.format().c_str());
    return 1;
  }
  if (std::string problem = lockstep::server::check(*cfg); !problem.empty()) {
    std::fprintf(stderr, "lockstep: invalid configuration: %s: %s\n", config_path.c_str(),
                 problem.c_str());
    return 1;
  }
  if (check_only) {
    std::printf("# %s is valid; effective configuration:\n%s", config_path.c_str(),
                lockstep::config::dump(*cfg).c_str());
    return 0;
  }
  if (!lockstep::admin::setup_logging(cfg->log)) return 1;
  return lockstep::server::run(*cfg, config_path);
}
