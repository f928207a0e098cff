// ReplyMerge: combines the replies of the parts of a split or fanned-out request into the one
// reply the client expects, as a single Redis server would have given it. Parts may complete in
// any order. The first error (in part order) wins, as a whole-command failure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/proxy/command_table.h"

namespace lockstep::proxy {

// True for a bulk-string element naming one of Lockstep's internal keys.
bool is_reserved_element(std::string_view bulk);

class ReplyMerge {
 public:
  enum class Kind : uint8_t {
    kMget,           // arrays placed by key position
    kAllOk,          // +OK when every part said +OK
    kSum,            // integers summed
    kSame,           // every part must give the same reply (SCRIPT LOAD's sha)
    kAnd,            // arrays of 0/1 combined element-wise with AND (SCRIPT EXISTS)
    kUnion,          // arrays concatenated (KEYS)
    kUnionDistinct,  // arrays merged, duplicates dropped (PUBSUB CHANNELS)
    kSumPairs,       // [name, count, ...] arrays summed by position (PUBSUB NUMSUB)
    kRandom,         // a random non-nil reply (RANDOMKEY), nil if all are nil
  };

  static Kind kind_for(Route route);

  // `total` is the element count of the merged MGET array; `random` a caller-supplied random
  // number (kRandom), so the merge itself stays deterministic.
  void start(Kind kind, size_t parts, size_t total = 0, uint64_t random = 0);
  // kMget: the final positions of part `part`'s elements, in the order sent.
  std::vector<uint32_t>& positions(size_t part) { return positions_[part]; }
  void add(size_t part, std::string_view reply);
  bool complete() const { return received_ == replies_.size(); }
  size_t parts() const { return replies_.size(); }
  // Appends the merged reply.
  void finish(std::string& out);

 private:
  void finish_mget(std::string& out) const;
  void finish_all_ok(std::string& out) const;
  void finish_sum(std::string& out) const;
  void finish_same(std::string& out) const;
  void finish_and(std::string& out) const;
  void finish_union(std::string& out) const;
  void finish_union_distinct(std::string& out) const;
  void finish_sum_pairs(std::string& out) const;
  void finish_random(std::string& out) const;

  Kind kind_ = Kind::kAllOk;
  size_t received_ = 0;
  size_t total_ = 0;
  uint64_t random_ = 0;
  std::vector<std::string> replies_;
  std::vector<std::vector<uint32_t>> positions_;
};

}  // namespace lockstep::proxy
