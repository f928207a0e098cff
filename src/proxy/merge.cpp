#include "lockstep/proxy/merge.h"

#include <fmt/format.h>

#include <algorithm>

#include "lockstep/proxy/router.h"
#include "lockstep/resp/resp.h"

namespace lockstep::proxy {

bool is_reserved_element(std::string_view bulk) {
  if (bulk.empty() || bulk[0] != '$') return false;
  size_t nl = bulk.find("\r\n");
  return nl != std::string_view::npos && is_reserved_key(bulk.substr(nl + 2));
}

ReplyMerge::Kind ReplyMerge::kind_for(Route route) {
  switch (route) {
    case Route::kSplitMget:
      return Kind::kMget;
    case Route::kSplitSum:
    case Route::kFanoutSum:
      return Kind::kSum;
    case Route::kFanoutSame:
      return Kind::kSame;
    case Route::kFanoutAnd:
      return Kind::kAnd;
    case Route::kFanoutUnion:
      return Kind::kUnion;
    case Route::kFanoutUnionDistinct:
      return Kind::kUnionDistinct;
    case Route::kFanoutSumPairs:
      return Kind::kSumPairs;
    case Route::kRandomKey:
      return Kind::kRandom;
    default:
      return Kind::kAllOk;
  }
}

void ReplyMerge::start(Kind kind, size_t parts, size_t total, uint64_t random) {
  kind_ = kind;
  received_ = 0;
  total_ = total;
  random_ = random;
  replies_.assign(parts, std::string());
  positions_.resize(parts);
  for (auto& p : positions_) p.clear();
}

void ReplyMerge::add(size_t part, std::string_view reply) {
  replies_[part].assign(reply);
  ++received_;
}

void ReplyMerge::finish(std::string& out) {
  // The first error any backend gave is the answer (as on one server: the command failed).
  for (const auto& r : replies_) {
    if (resp::is_error_reply(r)) {
      out.append(r);
      return;
    }
  }
  switch (kind_) {
    case Kind::kMget:
      return finish_mget(out);
    case Kind::kAllOk:
      return finish_all_ok(out);
    case Kind::kSum:
      return finish_sum(out);
    case Kind::kSame:
      return finish_same(out);
    case Kind::kAnd:
      return finish_and(out);
    case Kind::kUnion:
      return finish_union(out);
    case Kind::kUnionDistinct:
      return finish_union_distinct(out);
    case Kind::kSumPairs:
      return finish_sum_pairs(out);
    case Kind::kRandom:
      return finish_random(out);
  }
}

namespace {
constexpr std::string_view kDiffered = "ERR backends answered differently; run the command again";
}  // namespace

void ReplyMerge::finish_mget(std::string& out) const {
  std::vector<std::string_view> merged(total_), elems;
  int64_t count = 0;
  for (size_t p = 0; p < replies_.size(); ++p) {
    if (!resp::split_array(replies_[p], elems, count) ||
        static_cast<size_t>(count) != positions_[p].size()) {
      resp::append_error(out, "ERR unexpected reply from a backend to a split MGET");
      return;
    }
    for (size_t i = 0; i < elems.size(); ++i) merged[positions_[p][i]] = elems[i];
  }
  resp::append_array_header(out, static_cast<int64_t>(total_));
  for (auto e : merged) out.append(e);
}

void ReplyMerge::finish_all_ok(std::string& out) const {
  for (const auto& r : replies_) {
    if (r != "+OK\r\n") {
      out.append(r);
      return;
    }
  }
  out.append("+OK\r\n");
}

void ReplyMerge::finish_sum(std::string& out) const {
  int64_t sum = 0;
  for (const auto& r : replies_) {
    int64_t v = 0;
    if (!resp::parse_integer_reply(r, v)) {
      out.append(r);
      return;
    }
    sum += v;
  }
  resp::append_integer(out, sum);
}

void ReplyMerge::finish_same(std::string& out) const {
  for (const auto& r : replies_) {
    if (r != replies_[0]) {
      resp::append_error(out, kDiffered);
      return;
    }
  }
  out.append(replies_[0]);
}

void ReplyMerge::finish_and(std::string& out) const {
  std::vector<std::string_view> elems;
  int64_t count = 0;
  std::vector<int64_t> acc;
  for (size_t p = 0; p < replies_.size(); ++p) {
    if (!resp::split_array(replies_[p], elems, count)) {
      out.append(replies_[p]);
      return;
    }
    if (p == 0) acc.assign(elems.size(), 1);
    if (elems.size() != acc.size()) {
      resp::append_error(out, kDiffered);
      return;
    }
    for (size_t i = 0; i < elems.size(); ++i) {
      int64_t v = 0;
      if (!resp::parse_integer_reply(elems[i], v) || v == 0) acc[i] = 0;
    }
  }
  resp::append_array_header(out, static_cast<int64_t>(acc.size()));
  for (int64_t v : acc) resp::append_integer(out, v);
}

void ReplyMerge::finish_union(std::string& out) const {
  std::vector<std::string_view> elems;
  int64_t count = 0;
  std::string body;
  int64_t n = 0;
  for (const auto& r : replies_) {
    if (!resp::split_array(r, elems, count)) {
      out.append(r);
      return;
    }
    for (auto e : elems) {
      if (is_reserved_element(e)) continue;  // Lockstep's own keys stay hidden
      body.append(e);
      ++n;
    }
  }
  resp::append_array_header(out, n);
  out.append(body);
}

void ReplyMerge::finish_union_distinct(std::string& out) const {
  std::vector<std::string_view> elems, seen;
  int64_t count = 0;
  for (const auto& r : replies_) {
    if (!resp::split_array(r, elems, count)) {
      out.append(r);
      return;
    }
    for (auto e : elems)  // Lockstep's own channels are not listed
      if (!is_reserved_element(e) && std::find(seen.begin(), seen.end(), e) == seen.end())
        seen.push_back(e);
  }
  resp::append_array_header(out, static_cast<int64_t>(seen.size()));
  for (auto e : seen) out.append(e);
}

void ReplyMerge::finish_sum_pairs(std::string& out) const {
  // Every backend answers the same names in the same order; only the counts differ.
  std::vector<std::string_view> elems, names;
  int64_t count = 0;
  std::vector<int64_t> sums;
  for (size_t p = 0; p < replies_.size(); ++p) {
    if (!resp::split_array(replies_[p], elems, count) || count % 2 != 0) {
      out.append(replies_[p]);
      return;
    }
    if (p == 0) {
      for (size_t i = 0; i < elems.size(); i += 2) names.push_back(elems[i]);
      sums.assign(names.size(), 0);
    }
    if (elems.size() != names.size() * 2) {
      resp::append_error(out, kDiffered);
      return;
    }
    for (size_t i = 0; i < names.size(); ++i) {
      int64_t v = 0;
      if (resp::parse_integer_reply(elems[2 * i + 1], v)) sums[i] += v;
    }
  }
  if (!replies_.empty() && replies_[0][0] == '%')  // RESP3 clients get a map, as from Redis
    out.append(fmt::format("%{}\r\n", names.size()));
  else
    resp::append_array_header(out, static_cast<int64_t>(names.size() * 2));
  for (size_t i = 0; i < names.size(); ++i) {
    out.append(names[i]);
    resp::append_integer(out, sums[i]);
  }
}

void ReplyMerge::finish_random(std::string& out) const {
  std::vector<const std::string*> found;
  for (const auto& r : replies_)  // a nil ("$-1" or RESP3 "_") or an internal key is no pick
    if (r.size() > 0 && r[0] == '$' && r != "$-1\r\n" && !is_reserved_element(r))
      found.push_back(&r);
  if (!found.empty()) {
    out.append(*found[random_ % found.size()]);
    return;
  }
  // Every backend is empty (or drew one of Lockstep's keys: then it counts as empty for this
  // call). An error or the backends' own nil passes through; never an internal key.
  const std::string* pass = nullptr;
  for (const auto& r : replies_)
    if (!is_reserved_element(r) && pass == nullptr) pass = &r;
  out.append(pass != nullptr ? *pass : std::string("$-1\r\n"));
}

}  // namespace lockstep::proxy
