#include "model_backend.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <span>

#include "lockstep/resp/resp.h"
#include "lockstep/txn/scripts.h"

namespace txnmodel {

namespace resp = lockstep::resp;
namespace txn = lockstep::txn;

namespace {

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string err(std::string_view m) {
  std::string out;
  resp::append_error(out, m);
  return out;
}
std::string integer(int64_t v) {
  std::string out;
  resp::append_integer(out, v);
  return out;
}
std::string bulk(std::string_view s) {
  std::string out;
  resp::append_bulk(out, s);
  return out;
}
std::string nil_bulk() {
  return "$-1\r\n";
}
std::string ok() {
  return "+OK\r\n";
}
std::string array(const std::vector<std::string>& elements) {
  std::string out;
  resp::append_array_header(out, static_cast<int64_t>(elements.size()));
  for (const auto& e : elements) out += e;
  return out;
}

const char* kWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";
const char* kNotInt = "ERR value is not an integer or out of range";

bool to_int(const std::string& s, int64_t& v) {
  return resp::parse_int64(s, v);
}

bool to_score(const std::string& s, double& v, bool& exclusive) {
  exclusive = false;
  std::string t = s;
  if (!t.empty() && t[0] == '(') {
    exclusive = true;
    t.erase(0, 1);
  }
  if (t == "-inf") {
    v = -INFINITY;
    return true;
  }
  if (t == "+inf" || t == "inf") {
    v = INFINITY;
    return true;
  }
  char* end = nullptr;
  v = std::strtod(t.c_str(), &end);
  return !t.empty() && end == t.c_str() + t.size();
}

std::string score_text(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// Redis arity: > 0 exact, < 0 at least -arity (command name included).
int arity(const std::string& cmd) {
  static const std::map<std::string, int> table{
      {"SET", -3},   {"GET", 2},     {"INCRBY", 3},         {"DECRBY", 3}, {"INCR", 2},
      {"DECR", 2},   {"RPUSH", -3},  {"LRANGE", 4},         {"DEL", -2},   {"EXISTS", -2},
      {"HSET", -4},  {"HGET", 3},    {"HMGET", -3},         {"HDEL", -3},  {"HGETALL", 2},
      {"ZADD", -4},  {"ZREM", -3},   {"ZRANGEBYSCORE", -4}, {"TIME", 1},   {"EVAL", -3},
      {"MSET", -3},  {"PING", -1},   {"MULTI", 1},          {"EXEC", 1},   {"DISCARD", 1},
      {"WATCH", -2}, {"UNWATCH", 1},
  };
  auto it = table.find(cmd);
  return it == table.end() ? 0 : it->second;
}

// Queue-time validation, as Redis does before +QUEUED; empty when fine.
std::string check_command(const std::vector<std::string>& argv) {
  const std::string cmd = upper(argv[0]);
  const int a = arity(cmd);
  if (a == 0) return "ERR unknown command '" + argv[0] + "', with args beginning with: ";
  const int n = static_cast<int>(argv.size());
  if ((a > 0 && n != a) || (a < 0 && n < -a))
    return "ERR wrong number of arguments for '" + argv[0] + "' command";
  return {};
}

}  // namespace

bool parse_request(std::string_view r, std::vector<std::string>& argv) {
  argv.clear();
  auto line = [&](size_t& pos, char type, int64_t& n) {
    if (pos >= r.size() || r[pos] != type) return false;
    const size_t nl = r.find("\r\n", pos);
    if (nl == std::string_view::npos) return false;
    if (!resp::parse_int64(r.substr(pos + 1, nl - pos - 1), n)) return false;
    pos = nl + 2;
    return true;
  };
  size_t pos = 0;
  int64_t count = 0;
  if (!line(pos, '*', count) || count < 1) return false;
  for (int64_t i = 0; i < count; ++i) {
    int64_t len = 0;
    if (!line(pos, '$', len) || len < 0) return false;
    if (r.size() < pos + static_cast<size_t>(len) + 2) return false;
    argv.emplace_back(r.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
    if (r.substr(pos, 2) != "\r\n") return false;
    pos += 2;
  }
  return pos == r.size();
}

std::string request(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
  return out;
}

std::string pack_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += std::to_string(i.size()) + ":" + i;
  return out;
}

std::vector<std::string> unpack_list(std::string_view p) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < p.size()) {
    const size_t colon = p.find(':', pos);
    if (colon == std::string_view::npos) break;
    const size_t len = std::stoul(std::string(p.substr(pos, colon - pos)));
    out.emplace_back(p.substr(colon + 1, len));
    pos = colon + 1 + len;
  }
  return out;
}

int ModelBackend::connect() {
  conns_.emplace_back();
  return static_cast<int>(conns_.size()) - 1;
}

void ModelBackend::unwatch(Conn& c, int id) {
  for (const auto& k : c.watched) {
    auto it = watchers_.find(k);
    if (it == watchers_.end()) continue;
    it->second.erase(id);
    if (it->second.empty()) watchers_.erase(it);
  }
  c.watched.clear();
  c.dirty = false;
}

void ModelBackend::disconnect(int id) {
  Conn& c = conns_.at(static_cast<size_t>(id));
  unwatch(c, id);
  c.multi = false;
  c.flagged = false;
  c.queued.clear();
  c.open = false;
}

void ModelBackend::touch(const std::string& key) {
  auto it = watchers_.find(key);
  if (it == watchers_.end()) return;
  for (int id : it->second) conns_[static_cast<size_t>(id)].dirty = true;
}

ModelBackend::Value* ModelBackend::lookup(const std::string& key, Value::Type type,
                                          bool& wrongtype) {
  wrongtype = false;
  auto it = db_.find(key);
  if (it == db_.end()) return nullptr;
  if (it->second.type != type) {
    wrongtype = true;
    return nullptr;
  }
  return &it->second;
}

ModelBackend::Value& ModelBackend::create(const std::string& key, Value::Type type) {
  Value& v = db_[key];
  v.type = type;
  return v;
}

bool ModelBackend::del(const std::string& key) {
  if (db_.erase(key) == 0) return false;
  touch(key);
  return true;
}

bool ModelBackend::has_string(const std::string& key) const {
  auto it = db_.find(key);
  return it != db_.end() && it->second.type == Value::Type::kString;
}

std::string ModelBackend::get(const std::string& key) {
  auto it = db_.find(key);
  if (it == db_.end() || it->second.type != Value::Type::kString) return {};
  return it->second.str;
}

std::string* ModelBackend::hget(const std::string& key, const std::string& field) {
  bool wt = false;
  Value* v = lookup(key, Value::Type::kHash, wt);
  if (v == nullptr) return nullptr;
  auto it = v->hash.find(field);
  return it == v->hash.end() ? nullptr : &it->second;
}

void ModelBackend::hset(const std::string& key, const std::string& field,
                        const std::string& value) {
  bool wt = false;
  Value* v = lookup(key, Value::Type::kHash, wt);
  if (v == nullptr) v = &create(key, Value::Type::kHash);
  v->hash[field] = value;
  touch(key);
}

void ModelBackend::hdel(const std::string& key, const std::string& field) {
  bool wt = false;
  Value* v = lookup(key, Value::Type::kHash, wt);
  if (v == nullptr || v->hash.erase(field) == 0) return;
  if (v->hash.empty()) db_.erase(key);
  touch(key);
}

void ModelBackend::zadd(const std::string& key, double score, const std::string& member) {
  bool wt = false;
  Value* v = lookup(key, Value::Type::kZset, wt);
  if (v == nullptr) v = &create(key, Value::Type::kZset);
  auto it = v->zset.find(member);
  if (it != v->zset.end() && it->second == score) return;
  v->zset[member] = score;
  touch(key);
}

void ModelBackend::zrem(const std::string& key, const std::string& member) {
  bool wt = false;
  Value* v = lookup(key, Value::Type::kZset, wt);
  if (v == nullptr || v->zset.erase(member) == 0) return;
  if (v->zset.empty()) db_.erase(key);
  touch(key);
}

void ModelBackend::unlock(const std::string& intent, const std::string& txid) {
  const std::string* l = hget(intent, "locks");
  if (l == nullptr) return;
  for (const auto& k : unpack_list(*l))
    if (has_string(k) && get(k) == txid) del(k);
}

std::string ModelBackend::execute(int id, std::string_view req) {
  ++executed_;
  Conn& c = conns_.at(static_cast<size_t>(id));
  if (!c.open) return err("ERR model: request on a closed connection");
  std::vector<std::string> argv;
  if (!parse_request(req, argv)) return err("ERR Protocol error: model could not parse request");
  const std::string cmd = upper(argv[0]);
  if (cmd == "MULTI") {
    if (c.multi) return err("ERR MULTI calls can not be nested");
    c.multi = true;
    return ok();
  }
  if (cmd == "WATCH") {
    if (c.multi) return err("ERR WATCH inside MULTI is not allowed");
    if (argv.size() < 2) return err("ERR wrong number of arguments for 'watch' command");
    for (size_t i = 1; i < argv.size(); ++i) {
      c.watched.insert(argv[i]);
      watchers_[argv[i]].insert(id);
    }
    return ok();
  }
  if (cmd == "UNWATCH") {
    unwatch(c, id);
    return ok();
  }
  if (cmd == "DISCARD") {
    if (!c.multi) return err("ERR DISCARD without MULTI");
    c.multi = false;
    c.flagged = false;
    c.queued.clear();
    unwatch(c, id);
    return ok();
  }
  if (cmd == "EXEC") {
    if (!c.multi) return err("ERR EXEC without MULTI");
    std::vector<std::vector<std::string>> queued = std::move(c.queued);
    const bool flagged = c.flagged, dirty = c.dirty;
    c.multi = false;
    c.flagged = false;
    c.queued.clear();
    unwatch(c, id);
    if (flagged) return err("EXECABORT Transaction discarded because of previous errors.");
    if (dirty) return "*-1\r\n";
    std::vector<std::string> replies;
    for (const auto& q : queued) replies.push_back(run(q));
    return array(replies);
  }
  if (c.multi) {
    if (std::string e = check_command(argv); !e.empty()) {
      c.flagged = true;
      return err(e);
    }
    c.queued.push_back(std::move(argv));
    return "+QUEUED\r\n";
  }
  if (std::string e = check_command(argv); !e.empty()) return err(e);
  return run(argv);
}

std::string ModelBackend::run(const std::vector<std::string>& a) {
  const std::string cmd = upper(a[0]);
  bool wt = false;
  if (cmd == "PING") return "+PONG\r\n";
  if (cmd == "TIME") {
    const int64_t ms = now();
    return array({bulk(std::to_string(ms / 1000)), bulk(std::to_string((ms % 1000) * 1000))});
  }
  if (cmd == "EVAL") return run_eval(a);
  if (cmd == "SET") {
    if (a.size() != 3) return err("ERR syntax error");
    Value& v = db_[a[1]];
    v = Value{};
    v.str = a[2];
    touch(a[1]);
    return ok();
  }
  if (cmd == "MSET") {
    if (a.size() % 2 != 1) return err("ERR wrong number of arguments for 'mset' command");
    for (size_t i = 1; i < a.size(); i += 2) {
      Value& v = db_[a[i]];
      v = Value{};
      v.str = a[i + 1];
      touch(a[i]);
    }
    return ok();
  }
  if (cmd == "GET") {
    Value* v = lookup(a[1], Value::Type::kString, wt);
    if (wt) return err(kWrongType);
    return v ? bulk(v->str) : nil_bulk();
  }
  if (cmd == "INCRBY" || cmd == "DECRBY" || cmd == "INCR" || cmd == "DECR") {
    int64_t by = 1;
    if (a.size() == 3 && !to_int(a[2], by)) return err(kNotInt);
    if (cmd[0] == 'D') by = -by;
    Value* v = lookup(a[1], Value::Type::kString, wt);
    if (wt) return err(kWrongType);
    int64_t cur = 0;
    if (v && !to_int(v->str, cur)) return err(kNotInt);
    if (!v) v = &create(a[1], Value::Type::kString);
    cur += by;
    v->str = std::to_string(cur);
    touch(a[1]);
    return integer(cur);
  }
  if (cmd == "RPUSH") {
    Value* v = lookup(a[1], Value::Type::kList, wt);
    if (wt) return err(kWrongType);
    if (!v) v = &create(a[1], Value::Type::kList);
    for (size_t i = 2; i < a.size(); ++i) v->list.push_back(a[i]);
    touch(a[1]);
    return integer(static_cast<int64_t>(v->list.size()));
  }
  if (cmd == "LRANGE") {
    Value* v = lookup(a[1], Value::Type::kList, wt);
    if (wt) return err(kWrongType);
    int64_t start = 0, stop = 0;
    if (!to_int(a[2], start) || !to_int(a[3], stop)) return err(kNotInt);
    std::vector<std::string> out;
    if (v) {
      const auto n = static_cast<int64_t>(v->list.size());
      if (start < 0) start = std::max<int64_t>(0, n + start);
      if (stop < 0) stop = n + stop;
      for (int64_t i = start; i <= stop && i < n; ++i)
        out.push_back(bulk(v->list[static_cast<size_t>(i)]));
    }
    return array(out);
  }
  if (cmd == "DEL") {
    int64_t n = 0;
    for (size_t i = 1; i < a.size(); ++i) n += del(a[i]) ? 1 : 0;
    return integer(n);
  }
  if (cmd == "EXISTS") {
    int64_t n = 0;
    for (size_t i = 1; i < a.size(); ++i) n += static_cast<int64_t>(db_.count(a[i]));
    return integer(n);
  }
  if (cmd == "HSET") {
    if (a.size() % 2 != 0) return err("ERR wrong number of arguments for 'hset' command");
    Value* v = lookup(a[1], Value::Type::kHash, wt);
    if (wt) return err(kWrongType);
    if (!v) v = &create(a[1], Value::Type::kHash);
    int64_t added = 0;
    for (size_t i = 2; i < a.size(); i += 2) {
      added += v->hash.count(a[i]) ? 0 : 1;
      v->hash[a[i]] = a[i + 1];
    }
    touch(a[1]);
    return integer(added);
  }
  if (cmd == "HGET") {
    Value* v = lookup(a[1], Value::Type::kHash, wt);
    if (wt) return err(kWrongType);
    if (!v || !v->hash.count(a[2])) return nil_bulk();
    return bulk(v->hash.at(a[2]));
  }
  if (cmd == "HMGET") {
    Value* v = lookup(a[1], Value::Type::kHash, wt);
    if (wt) return err(kWrongType);
    std::vector<std::string> out;
    for (size_t i = 2; i < a.size(); ++i)
      out.push_back(v && v->hash.count(a[i]) ? bulk(v->hash.at(a[i])) : nil_bulk());
    return array(out);
  }
  if (cmd == "HGETALL") {
    Value* v = lookup(a[1], Value::Type::kHash, wt);
    if (wt) return err(kWrongType);
    std::vector<std::string> out;
    if (v)
      for (const auto& [f, val] : v->hash) {
        out.push_back(bulk(f));
        out.push_back(bulk(val));
      }
    return array(out);
  }
  if (cmd == "HDEL") {
    Value* v = lookup(a[1], Value::Type::kHash, wt);
    if (wt) return err(kWrongType);
    int64_t n = 0;
    if (v)
      for (size_t i = 2; i < a.size(); ++i) n += static_cast<int64_t>(v->hash.erase(a[i]));
    if (v && v->hash.empty()) db_.erase(a[1]);
    if (n > 0) touch(a[1]);
    return integer(n);
  }
  if (cmd == "ZADD") {
    if (a.size() % 2 != 0) return err("ERR syntax error");
    Value* v = lookup(a[1], Value::Type::kZset, wt);
    if (wt) return err(kWrongType);
    int64_t added = 0;
    for (size_t i = 2; i < a.size(); i += 2) {
      double s = 0;
      bool ex = false;
      if (!to_score(a[i], s, ex)) return err("ERR value is not a valid float");
      added += (v && v->zset.count(a[i + 1])) ? 0 : 1;
      zadd(a[1], s, a[i + 1]);
      v = lookup(a[1], Value::Type::kZset, wt);
    }
    return integer(added);
  }
  if (cmd == "ZREM") {
    Value* v = lookup(a[1], Value::Type::kZset, wt);
    if (wt) return err(kWrongType);
    int64_t n = 0;
    for (size_t i = 2; i < a.size() && v; ++i) {
      n += static_cast<int64_t>(v->zset.count(a[i]));
      zrem(a[1], a[i]);
      v = lookup(a[1], Value::Type::kZset, wt);
    }
    return integer(n);
  }
  if (cmd == "ZRANGEBYSCORE") {
    Value* v = lookup(a[1], Value::Type::kZset, wt);
    if (wt) return err(kWrongType);
    double lo = 0, hi = 0;
    bool lox = false, hix = false;
    if (!to_score(a[2], lo, lox) || !to_score(a[3], hi, hix))
      return err("ERR min or max is not a float");
    int64_t offset = 0, count = -1;
    if (a.size() == 7 && upper(a[4]) == "LIMIT") {
      if (!to_int(a[5], offset) || !to_int(a[6], count)) return err(kNotInt);
    } else if (a.size() != 4) {
      return err("ERR syntax error");
    }
    std::vector<std::pair<double, std::string>> sorted;
    if (v)
      for (const auto& [m, s] : v->zset) sorted.emplace_back(s, m);
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::string> out;
    int64_t skipped = 0;
    for (const auto& [s, m] : sorted) {
      if (lox ? s <= lo : s < lo) continue;
      if (hix ? s >= hi : s > hi) continue;
      if (skipped++ < offset) continue;
      if (count >= 0 && static_cast<int64_t>(out.size()) >= count) break;
      out.push_back(bulk(m));
    }
    return array(out);
  }
  return err("ERR unknown command '" + a[0] + "'");
}

std::string ModelBackend::run_eval(const std::vector<std::string>& a) {
  int64_t numkeys = 0;
  if (!to_int(a[2], numkeys) || numkeys < 0 || static_cast<size_t>(numkeys) > a.size() - 3)
    return err("ERR Number of keys can't be greater than number of args");
  const std::vector<std::string> K(a.begin() + 3, a.begin() + 3 + numkeys);
  const std::vector<std::string> V(a.begin() + 3 + numkeys, a.end());
  const std::string& body = a[1];
  auto need = [&](size_t nk, size_t nv) { return K.size() >= nk && V.size() >= nv; };
  // The active set's members by lease expiry, soonest first: the expired ones (`expired`) or
  // the unexpired ones, at most `limit`; false if the key is not a sorted set.
  auto by_expiry = [&](bool expired, int64_t limit, std::vector<std::string>& ids) {
    bool wt = false;
    Value* z = lookup(K[0], Value::Type::kZset, wt);
    if (wt) return false;
    std::vector<std::pair<double, std::string>> sorted;
    if (z)
      for (const auto& [m, sc] : z->zset) sorted.emplace_back(sc, m);
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [sc, m] : sorted)
      if ((sc <= static_cast<double>(now())) == expired && static_cast<int64_t>(ids.size()) < limit)
        ids.push_back(m);
    return true;
  };
  const std::string bad_args = "ERR model: script called with too few keys or arguments";

  if (body == txn::kPrepareLua) {
    if (!need(2, 9)) return err(bad_args);
    const std::string& txid = V[0];
    if (db_.count(K[0])) return array({integer(0), bulk("intent")});
    int64_t nl = 0;
    if (!to_int(V[8], nl) || nl < 0 || static_cast<size_t>(nl) + 2 > K.size()) return err(bad_args);
    const size_t locks_end = 2 + static_cast<size_t>(nl);
    for (size_t i = 2; i < locks_end; ++i) {
      if (db_.count(K[i]) && !has_string(K[i])) return err(kWrongType);
      if (has_string(K[i]) && get(K[i]) != txid) return array({integer(0), bulk(K[i])});
    }
    for (size_t i = locks_end; i < K.size(); ++i)
      if (db_.count(K[i])) return array({integer(2)});
    std::vector<std::string> locks;
    for (size_t i = 2; i < locks_end; ++i) {
      Value& v = db_[K[i]];
      v = Value{};
      v.str = txid;
      touch(K[i]);
      locks.push_back(K[i]);
    }
    int64_t lease = 0;
    to_int(V[5], lease);
    const int64_t exp = now() + lease;
    hset(K[0], "state", "P");
    hset(K[0], "role", V[1]);
    hset(K[0], "primary", V[2]);
    hset(K[0], "parts", V[3]);
    hset(K[0], "coord", V[4]);
    hset(K[0], "exp", std::to_string(exp));
    hset(K[0], "redo", V[6]);
    hset(K[0], "ncmds", V[7]);
    hset(K[0], "locks", pack_list(locks));
    zadd(K[1], static_cast<double>(exp), txid);
    return array({integer(1)});
  }
  if (body == txn::kCheckPreparedLua) {
    if (!need(2, 0)) return err(bad_args);
    const std::string* s = hget(K[0], "state");
    if (s && *s == "P") return integer(1);
    Value& v = db_[K[1]];
    v = Value{};
    v.str = "1";
    touch(K[1]);
    del(K[1]);
    return integer(0);
  }
  if (body == txn::kCommitLua) {
    if (!need(1, 1)) return err(bad_args);
    unlock(K[0], V[0]);
    hset(K[0], "state", "C");
    hdel(K[0], "redo");
    hdel(K[0], "locks");
    return integer(1);
  }
  if (body == txn::kFinishLua) {
    if (!need(2, 1)) return err(bad_args);
    unlock(K[0], V[0]);
    del(K[0]);
    zrem(K[1], V[0]);
    return integer(1);
  }
  if (body == txn::kExpireLeaseLua) {
    if (!need(2, 1)) return err(bad_args);
    if (!hget(K[0], "exp")) return integer(0);
    hset(K[0], "exp", std::to_string(now()));
    bool wt = false;
    Value* z = lookup(K[1], Value::Type::kZset, wt);
    if (wt) return err(kWrongType);
    if (z && z->zset.count(V[0])) zadd(K[1], static_cast<double>(now()), V[0]);  // XX
    return integer(1);
  }
  if (body == txn::kCleanupLua) {
    if (!need(2, 1)) return err(bad_args);
    const std::string* s = hget(K[0], "state");
    if (s && *s == "P") return integer(0);
    del(K[0]);
    zrem(K[1], V[0]);
    return integer(1);
  }
  if (body == txn::kRollbackLua) {
    if (!need(2, 1)) return err(bad_args);
    const std::string* s = hget(K[0], "state");
    if (!s) {
      zrem(K[1], V[0]);
      return integer(0);
    }
    if (*s == "C") return integer(-1);
    unlock(K[0], V[0]);
    del(K[0]);
    zrem(K[1], V[0]);
    return integer(1);
  }
  if (body == txn::kDecideLua) {
    if (!need(1, 1)) return err(bad_args);
    const std::string* s = hget(K[0], "state");
    if (!s) return bulk("none");
    if (*s != "P") return bulk(*s);
    const std::string* e = hget(K[0], "exp");
    int64_t exp = 0;
    if (e) to_int(*e, exp);
    const bool abandoned = V.size() >= 2 && V[1] == "abandoned";
    if (!abandoned && now() < exp) return bulk("P");
    unlock(K[0], V[0]);
    hset(K[0], "state", "A");
    hdel(K[0], "redo");
    hdel(K[0], "locks");
    return bulk("A");
  }
  if (body == txn::kScanLua) {
    if (!need(1, 1)) return err(bad_args);
    int64_t limit = 0;
    to_int(V[0], limit);
    std::vector<std::string> ids;
    if (!by_expiry(true, limit, ids)) return err(kWrongType);
    std::vector<std::string> rows;
    for (const auto& id : ids) {
      const std::string ik = std::string(txn::kIntentPrefix) + id;
      const std::string* st = hget(ik, "state");
      if (!st) {
        zrem(K[0], id);
        continue;
      }
      auto field = [&](const char* f, const char* dflt) {
        const std::string* v = hget(ik, f);
        if (v) return bulk(*v);
        return dflt ? bulk(dflt) : nil_bulk();
      };
      rows.push_back(array({bulk(id), bulk(*st), field("role", nullptr), field("primary", nullptr),
                            field("parts", nullptr), field("ncmds", "0"), field("redo", "")}));
    }
    return array(rows);
  }
  if (body == txn::kScanAbandonedLua) {
    if (!need(1, 1)) return err(bad_args);
    int64_t limit = 0;
    to_int(V[0], limit);
    std::map<std::string, int64_t> cur;
    for (size_t i = 1; i + 1 < V.size(); i += 2) to_int(V[i + 1], cur[V[i]]);
    std::vector<std::string> ids;
    if (!by_expiry(false, limit, ids)) return err(kWrongType);
    // The Lua's '^r(%d+)%.(%d+)/': the replica and incarnation, as text and number.
    auto tag = [](const std::string& c, std::string& replica, int64_t& inc) {
      size_t i = 1;
      if (c.empty() || c[0] != 'r') return false;
      while (i < c.size() && std::isdigit(static_cast<unsigned char>(c[i]))) ++i;
      if (i == 1 || i >= c.size() || c[i] != '.') return false;
      replica = c.substr(1, i - 1);
      const size_t k = ++i;
      while (i < c.size() && std::isdigit(static_cast<unsigned char>(c[i]))) ++i;
      if (i == k || i >= c.size() || c[i] != '/') return false;
      return to_int(c.substr(k, i - k), inc);
    };
    std::vector<std::string> rows;
    for (const auto& id : ids) {
      const std::string ik = std::string(txn::kIntentPrefix) + id;
      const std::string* c = hget(ik, "coord");
      std::string replica;
      int64_t inc = 0;
      if (!c || !tag(*c, replica, inc)) continue;
      auto it = cur.find(replica);
      if (it == cur.end() || inc >= it->second) continue;
      auto field = [&](const char* f, const char* dflt) {
        const std::string* v = hget(ik, f);
        return bulk(v ? *v : std::string(dflt));
      };
      rows.push_back(array({bulk(id), field("state", "?"), field("role", "?"), field("primary", ""),
                            field("parts", ""), field("ncmds", "0"), field("redo", ""), bulk(*c)}));
    }
    return array(rows);
  }
  if (body == txn::kCheckUnlockedLua) {
    if (!need(1, 0)) return err(bad_args);
    for (size_t i = 1; i < K.size(); ++i) {
      if (db_.count(K[i])) {
        Value& v = db_[K[0]];
        v = Value{};
        v.str = "1";
        touch(K[0]);
        del(K[0]);
        return integer(1);
      }
    }
    return integer(0);
  }
  return err("NOSCRIPT model: not one of the transaction scripts");
}

std::string ModelBackend::dump(bool internal) const {
  std::string out;
  for (const auto& [k, v] : db_) {
    if (!internal && k.starts_with("__lockstep:")) continue;
    out += k;
    out += '=';
    switch (v.type) {
      case Value::Type::kString:
        out += "s:" + v.str;
        break;
      case Value::Type::kList:
        out += "l:";
        for (const auto& e : v.list) out += e + ",";
        break;
      case Value::Type::kHash:
        out += "h:";
        for (const auto& [f, x] : v.hash) out += f + "=" + x + ",";
        break;
      case Value::Type::kZset:
        out += "z:";
        for (const auto& [m, s] : v.zset) out += m + "@" + score_text(s) + ",";
        break;
    }
    out += "; ";
  }
  return out;
}

std::vector<std::string> ModelBackend::internal_keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : db_)
    if (k.starts_with("__lockstep:")) out.push_back(k);
  return out;
}

}  // namespace txnmodel
