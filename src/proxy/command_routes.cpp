// Lockstep's routing policy: how each Redis command is served behind a sharding proxy.
//
// Hand-written, one entry per command (or "parent|sub" for containers) that does NOT take the
// default route. The default, applied by the table builder in command_table.cpp, is:
//   - a command with keys (legacy first_key > 0 or any key spec)  -> Route::kKeyed
//   - a command with subcommands                                   -> Route::kContainer
//   - a keyless command: no default. Every one must be decided here; the unit test fails on
//     any keyless command without an entry (and on entries that name no command, or that
//     merely restate the default), so regenerating commands.inc for a newer Redis surfaces
//     every new decision to make.
//
// Refusal reasons are sent as "-ERR <reason>", so they are written to read as a sentence
// after "ERR ".

#include <span>
#include <string_view>

#include "lockstep/proxy/command_table.h"

namespace lockstep::proxy {
namespace detail {
std::span<const CommandInfo> route_policy();
std::span<const CommandInfo> trait_policy();
}  // namespace detail

namespace {

constexpr CommandInfo decide(std::string_view name, Route route,
                             std::string_view refuse_reason = {}) {
  CommandInfo c;
  c.name = name;
  c.route = route;
  c.refuse_reason = refuse_reason;
  return c;
}
constexpr CommandInfo local(std::string_view name) {
  return decide(name, Route::kLocal);
}
constexpr CommandInfo any(std::string_view name) {
  return decide(name, Route::kAnyBackend);
}
constexpr CommandInfo refuse(std::string_view name, std::string_view reason) {
  return decide(name, Route::kRefused, reason);
}

// Reasons shared by whole families.
constexpr std::string_view kAcl = "ACL is managed in Lockstep's configuration";
constexpr std::string_view kMultiDb = "multi-DB is not supported: Lockstep exposes only DB 0";
constexpr std::string_view kReplication =
    "replication is managed per backend, not through Lockstep";
constexpr std::string_view kCluster =
    "CLUSTER is not supported by Lockstep: it shards keys itself over standalone backends";
constexpr std::string_view kPersistence =
    "persistence is managed per backend, not through Lockstep";
constexpr std::string_view kConfig =
    "CONFIG SET/REWRITE are not supported by Lockstep: each backend has its own configuration "
    "file";
constexpr std::string_view kTracking =
    "client-side caching (CLIENT TRACKING) is not supported by Lockstep yet";
constexpr std::string_view kLatency =
    "LATENCY DOCTOR and GRAPH are not supported by Lockstep; use LATENCY LATEST, HISTORY and "
    "HISTOGRAM";
constexpr std::string_view kModule =
    "MODULE is refused by Lockstep: backend modules are managed outside the proxy";
constexpr std::string_view kKillScript =
    "killing a running script is not supported by Lockstep yet: it cannot tell which backend "
    "runs it";

constexpr CommandInfo kPolicy[] = {
    // --- Multi-key commands split per backend and merged -------------------------------
    decide("mget", Route::kSplitMget),
    decide("mset", Route::kSplitMset),
    // All or nothing over several backends: prepared as a transaction whose prepare checks
    // that no key exists (src/server/txn/exec_job.h).
    decide("msetnx", Route::kSplitMsetnx),
    // Integer replies that count keys: the sum over backends is the answer.
    decide("del", Route::kSplitSum),
    decide("unlink", Route::kSplitSum),
    decide("exists", Route::kSplitSum),
    decide("touch", Route::kSplitSum),
    // (MSETNX stays keyed: its all-or-nothing promise cannot span backends.)

    // --- Connection and server info answered by Lockstep itself ------------------------
    local("ping"),
    local("echo"),
    local("quit"),
    local("select"),  // only DB 0 exists behind the proxy; Lockstep checks the index
    local("auth"),    // clients authenticate to Lockstep, not to the backends
    local("hello"),
    local("info"),
    local("readonly"),  // cluster-client handshakes; harmless no-ops for the proxy
    local("readwrite"),
    local("time"),
    local("reset"),
    // SCAN walks the backends in turn with a cursor that also names the backend.
    local("scan"),
    // WAIT asks every backend (on connections of its own) to confirm replication of everything
    // this client wrote before it.
    local("wait"),
    // Lockstep's distributed locks (src/lock, driven by src/server/lock/lock_service.cpp).
    local("lock.acquire"),
    local("lock.extend"),
    local("lock.guard"),
    local("lock.release"),
    local("lock.status"),
    // LOCKSTEP CLUSTER/CONFIG/BACKEND/SLOTS/MEMBER: the replicated configuration's admin plane.
    local("lockstep"),
    // MONITOR shows the traffic through Lockstep (all workers), not one backend's.
    local("monitor"),
    // COMMAND describes what the proxy accepts, which is this table, not a backend's.
    local("command"),
    local("command|count"),
    local("command|docs"),
    local("command|getkeys"),
    local("command|getkeysandflags"),
    local("command|help"),
    local("command|info"),
    local("command|list"),
    // CLIENT talks about the client's connection to Lockstep (names, ids, tracking, pause).
    // CLIENT itself is local too, so subcommands newer than 7.0 (SETINFO, sent on connect by
    // redis-py, Jedis and node-redis) reach Lockstep's handler instead of "unknown subcommand".
    local("client"),
    refuse("client|caching", kTracking),
    local("client|getname"),
    refuse("client|getredir", kTracking),
    local("client|help"),
    local("client|id"),
    local("client|info"),
    local("client|kill"),
    local("client|list"),
    local("client|no-evict"),
    local("client|pause"),
    local("client|reply"),
    local("client|setname"),
    refuse("client|tracking", kTracking),
    refuse("client|trackinginfo", kTracking),
    refuse("client|unblock", "CLIENT UNBLOCK is not supported by Lockstep yet"),
    local("client|unpause"),

    // --- Keyless, same answer from any backend -------------------------------------------
    any("lolwut"),
    any("pfselftest"),  // tests the HyperLogLog implementation, not the data
    // Help texts of families Lockstep serves at least in part (same Redis everywhere).
    any("config|help"),
    any("function|help"),
    any("memory|help"),
    any("object|help"),
    any("script|help"),
    any("xgroup|help"),
    any("xinfo|help"),
    // Functions are loaded on every backend (kFanoutSame below), so any copy is the answer.
    any("function|dump"),
    any("function|list"),

    // --- Fan-out to every backend ----------------------------------------------------------
    decide("dbsize", Route::kFanoutSum),
    decide("flushdb", Route::kFanoutAllOk),
    decide("flushall", Route::kFanoutAllOk),
    decide("script|flush", Route::kFanoutAllOk),
    decide("function|flush", Route::kFanoutAllOk),
    decide("config|resetstat", Route::kFanoutAllOk),
    decide("memory|purge", Route::kFanoutAllOk),  // +OK from each allocator
    // Scripts and functions must exist on every backend since keys decide where they run.
    decide("script|load", Route::kFanoutSame),
    decide("function|load", Route::kFanoutSame),
    decide("function|delete", Route::kFanoutSame),
    decide("function|restore", Route::kFanoutSame),
    decide("script|exists", Route::kFanoutAnd),
    decide("keys", Route::kFanoutUnion),
    decide("randomkey", Route::kRandomKey),

    // --- Refused: per-backend state that cannot be merged meaningfully ---------------------
    refuse("lastsave", "'lastsave' is refused by Lockstep: each backend saves on its own schedule"),
    refuse("role", "'role' is refused by Lockstep: replication roles belong to the backends"),
    refuse("debug", "'debug' is refused by Lockstep: it would act on one backend behind the proxy"),
    refuse("memory|doctor",
           "'memory doctor' is refused by Lockstep: each backend has its own memory report"),
    refuse("memory|malloc-stats",
           "'memory malloc-stats' is refused by Lockstep: each backend has its own allocator"),
    refuse("memory|stats",
           "'memory stats' is refused by Lockstep: each backend has its own memory report"),
    // FUNCTION STATS reports the function running on one backend: misleading through a proxy.
    refuse("function|stats",
           "'function stats' is refused by Lockstep: its running-function report differs per "
           "backend"),
    refuse("function|kill", kKillScript),
    refuse("script|kill", kKillScript),
    // The Lua debugger needs a dedicated, stateful session with one server.
    refuse("script|debug", "'script debug' is not supported by Lockstep"),
    // Backends behind one Lockstep are expected to share their configuration; one answers for
    // all (redis-benchmark and GUIs read a few parameters on connect).
    any("config|get"),
    refuse("config|set", kConfig),
    refuse("config|rewrite", kConfig),
    // LATENCY and SLOWLOG describe Lockstep itself: requests through it, backend round trip
    // included. DOCTOR and GRAPH (free-text advice and ASCII art) are not reproduced.
    refuse("latency|doctor", kLatency),
    refuse("latency|graph", kLatency),
    local("latency|help"),
    local("latency|histogram"),
    local("latency|history"),
    local("latency|latest"),
    local("latency|reset"),
    local("slowlog|get"),
    local("slowlog|help"),
    local("slowlog|len"),
    local("slowlog|reset"),
    refuse("module|help", kModule),
    refuse("module|list", kModule),
    refuse("module|load", kModule),
    refuse("module|loadex", kModule),
    refuse("module|unload", kModule),

    // --- Refused: server administration behind the proxy -----------------------------------
    refuse("shutdown",
           "'shutdown' is refused by Lockstep: it would stop one backend behind the proxy"),
    refuse("save", kPersistence),
    refuse("bgsave", kPersistence),
    refuse("bgrewriteaof", kPersistence),
    refuse("replicaof", kReplication),
    refuse("slaveof", kReplication),
    refuse("sync", kReplication),
    refuse("psync", kReplication),
    refuse("replconf", kReplication),
    refuse("failover", kReplication),
    // MIGRATE moves keys between servers behind Lockstep's back (its placement is by hash).
    refuse("migrate", "'migrate' is refused by Lockstep: it places keys on the backends itself"),
    // Cluster-protocol commands: the backends are standalone servers.
    refuse("asking", kCluster),
    refuse("restore-asking", kCluster),
    refuse("cluster|addslots", kCluster),
    refuse("cluster|addslotsrange", kCluster),
    refuse("cluster|bumpepoch", kCluster),
    refuse("cluster|count-failure-reports", kCluster),
    refuse("cluster|countkeysinslot", kCluster),
    refuse("cluster|delslots", kCluster),
    refuse("cluster|delslotsrange", kCluster),
    refuse("cluster|failover", kCluster),
    refuse("cluster|flushslots", kCluster),
    refuse("cluster|forget", kCluster),
    refuse("cluster|getkeysinslot", kCluster),
    refuse("cluster|help", kCluster),
    refuse("cluster|info", kCluster),
    refuse("cluster|keyslot", kCluster),
    refuse("cluster|links", kCluster),
    refuse("cluster|meet", kCluster),
    refuse("cluster|myid", kCluster),
    refuse("cluster|nodes", kCluster),
    refuse("cluster|replicas", kCluster),
    refuse("cluster|replicate", kCluster),
    refuse("cluster|reset", kCluster),
    refuse("cluster|saveconfig", kCluster),
    refuse("cluster|set-config-epoch", kCluster),
    refuse("cluster|setslot", kCluster),
    refuse("cluster|shards", kCluster),
    refuse("cluster|slaves", kCluster),
    refuse("cluster|slots", kCluster),
    // ACL users live in Lockstep's configuration, not on the backends.
    refuse("acl|cat", kAcl),
    refuse("acl|deluser", kAcl),
    refuse("acl|dryrun", kAcl),
    refuse("acl|genpass", kAcl),
    refuse("acl|getuser", kAcl),
    refuse("acl|help", kAcl),
    refuse("acl|list", kAcl),
    refuse("acl|load", kAcl),
    refuse("acl|log", kAcl),
    refuse("acl|save", kAcl),
    refuse("acl|setuser", kAcl),
    refuse("acl|users", kAcl),
    local("acl|whoami"),
    // Only DB 0 exists behind the proxy. (COPY stays keyed: its DB option, like SELECT's
    // index, is for the proxy layer to check.)
    refuse("swapdb", kMultiDb),
    refuse("move", kMultiDb),

    // --- Refused for now: features that need more than one-shot routing ---------------------
    // Pub/sub: each worker keeps one subscriber connection per backend and fans messages out to
    // its clients. A channel lives on the backend its name hashes to (PUBLISH goes there);
    // patterns are subscribed on every backend, so each message reaches them exactly once.
    local("subscribe"),
    local("psubscribe"),
    local("ssubscribe"),
    local("unsubscribe"),
    local("punsubscribe"),
    local("sunsubscribe"),
    local("publish"),
    decide("pubsub|channels", Route::kFanoutUnionDistinct),
    decide("pubsub|shardchannels", Route::kFanoutUnionDistinct),
    decide("pubsub|numsub", Route::kFanoutSumPairs),
    decide("pubsub|shardnumsub", Route::kFanoutSumPairs),
    // Every subscriber connection subscribes each pattern on every backend: one backend's count
    // is the whole count (summing would count each pattern once per backend).
    any("pubsub|numpat"),
    any("pubsub|help"),
    // Blocking commands hold a backend connection open. (XREAD/XREADGROUP stay keyed: the
    // proxy layer refuses their BLOCK option itself.)
    // Transactions: MULTI queues in the proxy; EXEC runs the queue on one backend or commits it
    // over several (src/server/txn/exec_job.h); WATCH is forwarded on pinned connections.
    local("multi"),
    local("exec"),
    local("discard"),
    local("watch"),
    local("unwatch"),
};

constexpr CommandInfo trait(std::string_view name, uint16_t traits) {
  CommandInfo c;
  c.name = name;
  c.traits = traits;
  return c;
}

// What the connection layer needs to know beyond the route (command_table.h, CmdTrait).
constexpr uint16_t kScriptWrites = kTraitScript | kTraitUndeclaredWrite;
constexpr CommandInfo kTraits[] = {
    trait("wait", kTraitExclusive),
    trait("hello", kTraitProtocolSwitch),
    trait("reset", kTraitProtocolSwitch | kTraitSubscribedOk | kTraitRunsInMulti),
    trait("quit", kTraitSubscribedOk | kTraitRunsInMulti),
    trait("ping", kTraitSubscribedOk),
    trait("subscribe", kTraitSubscribedOk),
    trait("psubscribe", kTraitSubscribedOk),
    trait("ssubscribe", kTraitSubscribedOk),
    trait("unsubscribe", kTraitSubscribedOk),
    trait("punsubscribe", kTraitSubscribedOk),
    trait("sunsubscribe", kTraitSubscribedOk),
    trait("eval", kScriptWrites),
    trait("evalsha", kScriptWrites),
    trait("fcall", kScriptWrites),
    trait("eval_ro", kTraitScript),
    trait("evalsha_ro", kTraitScript),
    trait("fcall_ro", kTraitScript),
    trait("publish", kTraitReplicates),
    trait("spublish", kTraitReplicates),
    trait("pfcount", kTraitReplicates),  // it may rewrite the HLL's cached cardinality
    trait("multi", kTraitTxnControl),
    trait("exec", kTraitTxnControl),
    trait("discard", kTraitTxnControl),
    trait("watch", kTraitTxnControl),
    trait("unwatch", kTraitTxnControl),
    trait("client|reply", kTraitReplyControl),
};

}  // namespace

std::span<const CommandInfo> detail::route_policy() {
  return kPolicy;
}

std::span<const CommandInfo> detail::trait_policy() {
  return kTraits;
}

}  // namespace lockstep::proxy
