// Every common command family through Lockstep answers exactly as a standalone redis-server
// does: the same sequence runs against both and the replies are compared one by one.
#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

// A reference redis-server and a 3-backend cluster, both empty, plus one key per backend.
struct Diff {
  RedisServer reference;
  Cluster cluster;
  Compare cmp;
  explicit Diff() : cmp(reference.client(), cluster.client()) {}
  // The i-th key with `prefix` that lives on `backend`.
  std::string key(size_t backend, const std::string& prefix, size_t i = 0) const {
    return cluster.key_on(backend, prefix, i);
  }
};

const std::string kTag = "{tag}";  // keys with a hash tag all live on one backend

}  // namespace

TEST_CASE("strings behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "str"), b = d.key(1, "str"), e = d.key(2, "str");
  c.same({"SET", a, "hello"});
  c.same({"GET", a});
  c.same({"GET", "str:missing"});
  c.same({"SET", b, "10"});
  c.same({"INCR", b});
  c.same({"INCRBY", b, "5"});
  c.same({"DECR", b});
  c.same({"DECRBY", b, "3"});
  c.same({"OBJECT", "ENCODING", b});
  c.same({"INCRBYFLOAT", b, "1.5"});
  c.same({"GET", b});
  c.same({"APPEND", a, " world"});
  c.same({"STRLEN", a});
  c.same({"GETRANGE", a, "0", "4"});
  c.same({"GETRANGE", a, "-5", "-1"});
  c.same({"SUBSTR", a, "0", "2"});
  c.same({"SETRANGE", a, "6", "WORLD"});
  c.same({"GET", a});
  c.same({"OBJECT", "ENCODING", a});
  c.same({"TYPE", a});
  c.same({"SETEX", e, "100", "v"});
  c.same({"TTL", e});
  c.same({"GETEX", e, "PERSIST"});
  c.same({"TTL", e});
  c.same({"GETEX", e, "EX", "200"});
  c.same({"TTL", e});
  c.same({"GETDEL", e});
  c.same({"GET", e});
  c.same({"EXISTS", e});
  c.same({"SET", e, "a", "NX"});
  c.same({"SET", e, "b", "NX"});
  c.same({"SET", e, "c", "XX", "GET"});
  c.same({"GET", e});
  c.same({"SETNX", e, "z"});
  c.same({"GETSET", e, "y"});
  c.same({"PSETEX", e, "100000", "p"});
  c.same({"TTL", e});
  c.same({"SET", a, "v", "KEEPTTL"});
  c.same({"SET", "str:bin", std::string("\x00\xff\r\n", 4)});
  c.same({"GET", "str:bin"});
  c.same({"SET", kTag + "s1", "ohmytext"});
  c.same({"SET", kTag + "s2", "mynewtext"});
  c.same({"LCS", kTag + "s1", kTag + "s2"});
  c.same({"LCS", kTag + "s1", kTag + "s2", "LEN"});
  c.same({"MSETNX", kTag + "n1", "1", kTag + "n2", "2"});
  c.same_error({"INCR", a});
  c.same_error({"SET", a, "v", "EX", "0"});
  c.same_error({"SET", a, "v", "NX", "XX"});
  c.same_error({"INCRBYFLOAT", a, "x"});
  c.same_error({"GETEX", a, "EX"});
}

TEST_CASE("lists behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "list"), b = d.key(1, "list"), e = d.key(2, "list");
  c.same({"RPUSH", a, "a", "b", "c"});
  c.same({"LPUSH", a, "z"});
  c.same({"LRANGE", a, "0", "-1"});
  c.same({"LLEN", a});
  c.same({"LINDEX", a, "1"});
  c.same({"LINDEX", a, "99"});
  c.same({"LSET", a, "0", "y"});
  c.same({"LINSERT", a, "BEFORE", "b", "x"});
  c.same({"LREM", a, "1", "x"});
  c.same({"LPOS", a, "c"});
  c.same({"LPOP", a});
  c.same({"RPOP", a});
  c.same({"LPOP", a, "2"});
  c.same({"LPOP", a});
  c.same({"RPUSH", b, "1", "2", "3", "4", "5"});
  c.same({"LTRIM", b, "1", "3"});
  c.same({"LRANGE", b, "0", "-1"});
  c.same({"OBJECT", "ENCODING", b});
  c.same({"TYPE", b});
  c.same({"RPUSHX", e, "a"});
  c.same({"LPUSHX", b, "0"});
  c.same({"LRANGE", b, "-100", "100"});
  c.same({"RPUSH", kTag + "l1", "1", "2", "3"});
  c.same({"LMOVE", kTag + "l1", kTag + "l2", "LEFT", "RIGHT"});
  c.same({"RPOPLPUSH", kTag + "l1", kTag + "l2"});
  c.same({"LRANGE", kTag + "l2", "0", "-1"});
  c.same({"LMPOP", "2", kTag + "l1", kTag + "l2", "LEFT", "COUNT", "2"});
  c.same({"LMPOP", "1", "list:none", "RIGHT"});
  c.same({"SET", e, "string"});
  c.same_error({"LPUSH", e, "x"});  // WRONGTYPE
  c.same_error({"LSET", b, "99", "x"});
  c.same_error({"LINSERT", b, "SIDEWAYS", "2", "x"});
}

TEST_CASE("hashes behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "hash"), b = d.key(1, "hash"), e = d.key(2, "hash");
  c.same({"HSET", a, "f1", "v1", "f2", "v2", "f3", "3"});
  c.same({"HGET", a, "f1"});
  c.same({"HGET", a, "nope"});
  c.same({"HMGET", a, "f1", "nope", "f2"});
  c.same({"HGETALL", a});
  c.same({"HKEYS", a});
  c.same({"HVALS", a});
  c.same({"HLEN", a});
  c.same({"HEXISTS", a, "f1"});
  c.same({"HDEL", a, "f1", "nope"});
  c.same({"HINCRBY", a, "f3", "5"});
  c.same({"HINCRBYFLOAT", a, "fl", "2.5"});
  c.same({"HSETNX", a, "f2", "z"});
  c.same({"HSTRLEN", a, "f2"});
  c.same({"HSCAN", a, "0"});
  c.same({"OBJECT", "ENCODING", a});
  c.same({"TYPE", a});
  c.same({"HMSET", b, "x", "1", "y", "2"});
  c.same({"HGETALL", b});
  c.same({"HSET", e, "only", "one"});
  c.same({"HRANDFIELD", e});
  c.same({"HGETALL", "hash:missing"});
  c.same_error({"HINCRBY", a, "f2", "1"});
  c.same_error({"HSET", a, "odd"});
  c.same_error({"GET", a});  // WRONGTYPE
}

TEST_CASE("sets behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "set"), b = d.key(1, "set"), e = d.key(2, "set");
  c.same({"SADD", a, "a", "b", "c"});
  c.unordered({"SMEMBERS", a});
  c.same({"SCARD", a});
  c.same({"SISMEMBER", a, "a"});
  c.same({"SMISMEMBER", a, "a", "zz"});
  c.same({"SREM", a, "a", "zz"});
  c.unordered({"SMEMBERS", a});
  c.same({"OBJECT", "ENCODING", a});
  c.same({"TYPE", a});
  c.same({"SADD", b, "1", "2", "3"});
  c.same({"SMEMBERS", b});  // intset: ordered
  c.same({"OBJECT", "ENCODING", b});
  c.same({"SADD", e, "single"});
  c.same({"SRANDMEMBER", e});
  c.same({"SPOP", e});
  c.same({"EXISTS", e});
  c.same({"SADD", kTag + "x", "1", "2", "3"});
  c.same({"SADD", kTag + "y", "2", "3", "4"});
  c.unordered({"SINTER", kTag + "x", kTag + "y"});
  c.unordered({"SUNION", kTag + "x", kTag + "y"});
  c.unordered({"SDIFF", kTag + "x", kTag + "y"});
  c.same({"SINTERSTORE", kTag + "z", kTag + "x", kTag + "y"});
  c.same({"SINTERCARD", "2", kTag + "x", kTag + "y"});
  c.same({"SUNIONSTORE", kTag + "u", kTag + "x", kTag + "y"});
  c.same({"SDIFFSTORE", kTag + "v", kTag + "x", kTag + "y"});
  c.same({"SMOVE", kTag + "x", kTag + "y", "1"});
  c.unordered({"SMEMBERS", kTag + "y"});
  c.same({"SSCAN", b, "0"});
  c.same_error({"SINTERCARD", "0", kTag + "x"});
}

TEST_CASE("sorted sets behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "zset"), b = d.key(1, "zset");
  c.same({"ZADD", a, "1", "a", "2", "b", "3", "c"});
  c.same({"ZRANGE", a, "0", "-1", "WITHSCORES"});
  c.same({"ZRANGEBYSCORE", a, "(1", "+inf"});
  c.same({"ZRANGE", a, "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"});
  c.same({"ZREVRANGE", a, "0", "1"});
  c.same({"ZRANK", a, "b"});
  c.same({"ZREVRANK", a, "b"});
  c.same({"ZSCORE", a, "c"});
  c.same({"ZINCRBY", a, "2.5", "a"});
  c.same({"ZMSCORE", a, "a", "nope"});
  c.same({"ZCARD", a});
  c.same({"ZCOUNT", a, "-inf", "+inf"});
  c.same({"ZLEXCOUNT", a, "-", "+"});
  c.same({"ZREM", a, "b"});
  c.same({"ZPOPMIN", a});
  c.same({"ZPOPMAX", a});
  c.same({"ZADD", b, "1", "m"});
  c.same({"OBJECT", "ENCODING", b});
  c.same({"TYPE", b});
  c.same({"ZSCAN", b, "0"});
  c.same({"ZADD", kTag + "za", "1", "x", "2", "y"});
  c.same({"ZADD", kTag + "zb", "3", "y", "4", "w"});
  c.same({"ZUNIONSTORE", kTag + "zc", "2", kTag + "za", kTag + "zb"});
  c.same({"ZRANGE", kTag + "zc", "0", "-1", "WITHSCORES"});
  c.same({"ZINTERSTORE", kTag + "zd", "2", kTag + "za", kTag + "zb", "WEIGHTS", "2", "3"});
  c.same({"ZRANGE", kTag + "zd", "0", "-1", "WITHSCORES"});
  c.same({"ZRANGESTORE", kTag + "ze", kTag + "zc", "0", "1"});
  c.same({"ZUNION", "2", kTag + "za", kTag + "zb", "WITHSCORES"});
  c.same({"ZDIFF", "2", kTag + "za", kTag + "zb"});
  c.same_error({"ZADD", a, "NX", "XX", "1", "q"});
  c.same_error({"ZADD", a, "notanumber", "q"});
}

TEST_CASE("streams behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "stream"), b = d.key(2, "stream");
  c.same({"XADD", a, "1-1", "f", "v"});
  c.same({"XADD", a, "2-1", "f2", "v2"});
  c.same({"XADD", a, "3-1", "a", "b"});
  c.same({"XLEN", a});
  c.same({"XRANGE", a, "-", "+"});
  c.same({"XREVRANGE", a, "+", "-", "COUNT", "1"});
  c.same({"XREAD", "COUNT", "10", "STREAMS", a, "0"});
  c.same({"XREAD", "STREAMS", a, "3-1"});  // nothing newer: nil
  c.same({"XDEL", a, "2-1"});
  c.same({"XTRIM", a, "MAXLEN", "1"});
  c.same({"XRANGE", a, "-", "+"});
  c.same({"XGROUP", "CREATE", a, "g", "0"});
  c.same({"XADD", a, "4-1", "k", "v"});
  c.same({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", a, ">"});
  c.same({"XPENDING", a, "g"});
  c.same({"XACK", a, "g", "4-1"});
  c.same({"TYPE", a});
  c.same({"XADD", b, "MAXLEN", "2", "5-0", "x", "1"});
  c.same({"XLEN", b});
  c.same_error({"XADD", a, "1-1", "f", "v"});
  c.same_error({"XGROUP", "CREATE", a, "g", "0"});  // BUSYGROUP
}

TEST_CASE("HyperLogLog, bitmaps and geo behave as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string h = d.key(0, "hll"), bm = d.key(1, "bits"), bm2 = d.key(2, "bits");
  const std::string g = d.key(2, "geo");

  c.same({"PFADD", h, "a", "b", "c"});
  c.same({"PFADD", h, "a"});
  c.same({"PFCOUNT", h});
  c.same({"PFADD", kTag + "p1", "x", "y"});
  c.same({"PFADD", kTag + "p2", "y", "z"});
  c.same({"PFMERGE", kTag + "p3", kTag + "p1", kTag + "p2"});
  c.same({"PFCOUNT", kTag + "p3"});
  c.same({"PFCOUNT", kTag + "p1", kTag + "p2"});
  c.same({"GET", h});

  c.same({"SETBIT", bm, "7", "1"});
  c.same({"GETBIT", bm, "7"});
  c.same({"GETBIT", bm, "100"});
  c.same({"BITCOUNT", bm});
  c.same({"SET", bm2, "foobar"});
  c.same({"BITCOUNT", bm2, "1", "1"});
  c.same({"BITCOUNT", bm2, "5", "30", "BIT"});
  c.same({"BITPOS", bm2, "1"});
  c.same({"BITPOS", bm2, "0", "2"});
  c.same({"SET", kTag + "b1", "abc"});
  c.same({"SET", kTag + "b2", "abd"});
  c.same({"BITOP", "XOR", kTag + "b3", kTag + "b1", kTag + "b2"});
  c.same({"GET", kTag + "b3"});
  c.same({"BITFIELD", d.key(0, "bf"), "INCRBY", "i5", "100", "1", "GET", "u4", "0"});
  c.same({"BITFIELD_RO", d.key(0, "bf"), "GET", "u4", "0"});

  c.same({"GEOADD", g, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"});
  c.same({"GEODIST", g, "Palermo", "Catania", "km"});
  c.same({"GEOPOS", g, "Palermo", "Nowhere"});
  c.same({"GEOHASH", g, "Palermo", "Catania"});
  c.same({"GEOSEARCH", g, "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"});
  c.same({"GEORADIUS", g, "15", "37", "200", "km", "WITHCOORD", "ASC"});
  c.same({"GEOADD", kTag + "g1", "13.361389", "38.115556", "Palermo"});
  c.same({"GEOSEARCHSTORE", kTag + "g2", kTag + "g1", "FROMMEMBER", "Palermo", "BYBOX", "10", "10",
          "km"});
  c.same({"ZRANGE", kTag + "g2", "0", "-1"});
  c.same_error({"GEOADD", g, "200", "100", "Bad"});
}

TEST_CASE("expiry, TYPE, OBJECT and key commands behave as in redis-server",
          "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string a = d.key(0, "ks"), b = d.key(1, "ks"), e = d.key(2, "ks");
  for (const auto& k : {a, b, e}) {
    c.same({"SET", k, "v"});
    c.same({"EXPIRE", k, "100"});
    c.same({"TTL", k});
    c.same({"EXPIRE", k, "50", "GT"});
    c.same({"EXPIRE", k, "500", "NX"});
    c.same({"PERSIST", k});
    c.same({"TTL", k});
    c.same({"PEXPIRE", k, "100000"});
    c.same({"TTL", k});
    c.same({"EXISTS", k});
    c.same({"TYPE", k});
    c.same({"OBJECT", "ENCODING", k});
  }
  c.same({"TTL", "ks:missing"});
  c.same({"TYPE", "ks:missing"});
  c.same({"PERSIST", "ks:missing"});
  c.same({"OBJECT", "ENCODING", "ks:missing"});
  c.same({"EXPIRE", a, "0"});  // expires at once
  c.same({"EXISTS", a});
  c.same({"SET", kTag + "r1", "v"});
  c.same({"RENAME", kTag + "r1", kTag + "r2"});
  c.same({"RENAMENX", kTag + "r2", kTag + "r3"});
  c.same({"COPY", kTag + "r3", kTag + "r4"});
  c.same({"MGET", kTag + "r1", kTag + "r2", kTag + "r3", kTag + "r4"});
  c.same({"DEL", b});
  c.same({"UNLINK", e});
  c.same({"STRLEN", e});
  c.same_error({"RENAME", kTag + "nope", kTag + "x"});
  c.same_error({"EXPIRE", b, "notanumber"});
  c.same_error({"OBJECT", "NOSUCHSUB", b});
}

TEST_CASE("EVAL with keys on one backend behaves as in redis-server", "[integration][commands]") {
  Diff d;
  auto& c = d.cmp;
  const std::string set = "return redis.call('SET', KEYS[1], ARGV[1])";
  const std::string get = "return redis.call('GET', KEYS[1])";
  for (size_t backend = 0; backend < 3; ++backend) {
    const std::string k = d.key(backend, "lua");
    c.same({"EVAL", set, "1", k, "v" + std::to_string(backend)});
    c.same({"EVAL", get, "1", k});
    c.same({"EVAL_RO", get, "1", k});
    c.same({"GET", k});
  }
  c.same({"EVAL", "return {1, 2, 'three', {4}}", "0"});
  c.same({"EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCR', KEYS[2])",
          "2", kTag + "c1", kTag + "c2", "10"});
  c.same({"EVAL", "return redis.status_reply('FINE')", "0"});
  c.same_error({"EVAL", "return redis.error_reply('MYERR custom')", "0"});
  c.same_error({"EVAL", "return redis.call('INCR', KEYS[1])", "1", d.key(0, "lua")});
  c.same_error({"EVAL", "this is not lua", "0"});
  c.same_error({"EVAL", get, "5", "k"});  // numkeys larger than the arguments
}
