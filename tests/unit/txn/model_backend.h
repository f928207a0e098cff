// An in-memory model of one redis-server, as the transaction core (include/lockstep/txn) sees it.
//
// It executes RESP requests per connection with Redis' semantics for what the core relies on:
//   - MULTI / EXEC / DISCARD, commands queued with +QUEUED, queue-time errors (unknown command,
//     wrong arity) making EXEC answer -EXECABORT, runtime errors returned in place;
//   - WATCH / UNWATCH: any modification of a watched key, by any connection (the watching one
//     too, before its MULTI), makes EXEC return nil; EXEC, DISCARD and disconnect unwatch;
//   - the data commands the tests use (strings, lists, hashes, sorted sets, TIME from a test
//     clock);
//   - EVAL of each script in include/lockstep/txn/scripts.h, recognised by its body and executed
//     natively with the behaviour its comment documents (the `locks` list that the Lua packs
//     with cmsgpack is kept in this model's own encoding: only the model reads it).
// Replies are real RESP2 bytes made with lockstep/resp writers.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace txnmodel {

// Splits one RESP request (an array of bulk strings) into its arguments. False when malformed.
bool parse_request(std::string_view request, std::vector<std::string>& argv);
// The request for `args` (RESP array of bulk strings).
std::string request(std::initializer_list<std::string_view> args);

class ModelBackend {
 public:
  ModelBackend(std::string name, const int64_t* clock_ms)
      : name_(std::move(name)), clock_(clock_ms) {}

  const std::string& name() const { return name_; }
  int connect();
  // Closes a connection: its MULTI is discarded and its WATCHes dropped (as on a real server).
  void disconnect(int conn);
  // Executes one request on `conn`, returns the reply bytes.
  std::string execute(int conn, std::string_view request);

  // Inspection for invariants.
  // Every key with its value, in a canonical text form, internal keys included or not.
  std::string dump(bool internal) const;
  std::vector<std::string> internal_keys() const;
  bool exists(const std::string& key) const { return db_.count(key) != 0; }
  bool in_multi(int conn) const { return conns_.at(static_cast<size_t>(conn)).multi; }
  // Number of executed requests (all connections), for statistics.
  uint64_t executed() const { return executed_; }

 private:
  struct Value {
    enum class Type : uint8_t { kString, kList, kHash, kZset } type = Type::kString;
    std::string str;
    std::vector<std::string> list;
    std::map<std::string, std::string> hash;
    std::map<std::string, double> zset;
  };
  struct Conn {
    bool open = true;
    bool multi = false;
    bool dirty = false;    // a watched key was modified
    bool flagged = false;  // a queue-time error: EXEC aborts
    std::vector<std::vector<std::string>> queued;
    std::set<std::string> watched;
  };

  std::string run(const std::vector<std::string>& argv);
  std::string run_eval(const std::vector<std::string>& argv);
  // nullptr when the key does not exist; sets `wrongtype` when it has another type.
  Value* lookup(const std::string& key, Value::Type type, bool& wrongtype);
  Value& create(const std::string& key, Value::Type type);
  void touch(const std::string& key);
  bool del(const std::string& key);
  void unwatch(Conn& c, int id);
  // Script helpers with Redis semantics (touching keys as Redis would).
  std::string* hget(const std::string& key, const std::string& field);
  void hset(const std::string& key, const std::string& field, const std::string& value);
  void hdel(const std::string& key, const std::string& field);
  void zadd(const std::string& key, double score, const std::string& member);
  void zrem(const std::string& key, const std::string& member);
  std::string get(const std::string& key);
  bool has_string(const std::string& key) const;
  void unlock(const std::string& intent, const std::string& txid);
  int64_t now() const { return *clock_; }

  std::string name_;
  const int64_t* clock_;
  std::map<std::string, Value> db_;
  std::map<std::string, std::set<int>> watchers_;
  std::vector<Conn> conns_;
  uint64_t executed_ = 0;
};

// The locks list, in this model's encoding (stands for the Lua's cmsgpack.pack).
std::string pack_list(const std::vector<std::string>& items);
std::vector<std::string> unpack_list(std::string_view packed);

}  // namespace txnmodel
