#include "server/commands/script_cache.h"

#include <openssl/sha.h>

#include <mutex>

namespace lockstep::server {

ScriptCache& ScriptCache::instance() {
  static ScriptCache cache;
  return cache;
}

void ScriptCache::learn(std::string_view body) {
  const size_t h = std::hash<std::string_view>{}(body);
  {
    std::shared_lock lock(mu_);
    if (seen_.contains(h) || bytes_ + body.size() > kMaxBytes) return;
  }
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sha;
  for (unsigned char c : digest) {
    sha += kHex[c >> 4];
    sha += kHex[c & 15];
  }
  std::unique_lock lock(mu_);
  if (!seen_.insert(h).second) return;
  if (by_sha_.emplace(std::move(sha), std::string(body)).second) {
    bytes_ += body.size();
    bytes_learned_.store(bytes_, std::memory_order_relaxed);
  }
}

void ScriptCache::clear() {
  std::unique_lock lock(mu_);
  seen_.clear();
  by_sha_.clear();
  bytes_ = 0;
  bytes_learned_.store(0, std::memory_order_relaxed);
}

std::optional<std::string> ScriptCache::body(std::string_view sha) const {
  std::string lower(sha);
  for (char& c : lower)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  std::shared_lock lock(mu_);
  auto it = by_sha_.find(lower);
  if (it == by_sha_.end()) return std::nullopt;
  return it->second;
}

}  // namespace lockstep::server
