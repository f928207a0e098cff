// Micro-benchmark behind the decision to frame backend replies ourselves instead of with
// hiredis' redisReader: 2M small replies (bulk strings and short arrays) fed in 16 KiB chunks,
// as a socket delivers them. Build target: resp_framing_bench. Not a test.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "lockstep/resp/resp.h"

int main() {
  const std::string one = "$11\r\nhello world\r\n";
  const std::string arr = "*3\r\n$1\r\na\r\n:12\r\n$-1\r\n";
  std::string buf;
  const int n = 2000000;
  for (int i = 0; i < n; ++i) buf += (i % 2 ? one : arr);
  constexpr size_t kChunk = 16384;

  auto t0 = std::chrono::steady_clock::now();
  redisReader* r = redisReaderCreate();
  void* reply = nullptr;
  long hiredis_count = 0;
  for (size_t off = 0; off < buf.size(); off += kChunk) {
    redisReaderFeed(r, buf.data() + off, std::min(kChunk, buf.size() - off));
    while (redisReaderGetReply(r, &reply) == REDIS_OK && reply != nullptr) {
      freeReplyObject(reply);
      ++hiredis_count;
    }
  }
  redisReaderFree(r);
  auto t1 = std::chrono::steady_clock::now();

  lockstep::resp::ReplyScanner scanner;
  size_t pos = 0;
  long ours = 0;
  while (pos < buf.size()) {
    auto k = scanner.scan(buf.data() + pos, buf.size() - pos);
    if (k <= 0) break;
    pos += static_cast<size_t>(k);
    ++ours;
  }
  auto t2 = std::chrono::steady_clock::now();
  auto ns = [](auto a, auto b) { return std::chrono::duration<double, std::nano>(b - a).count(); };
  std::printf("hiredis redisReader: %ld replies, %.1f ns/reply\n", hiredis_count,
              ns(t0, t1) / static_cast<double>(hiredis_count));
  std::printf("lockstep ReplyScanner: %ld replies, %.1f ns/reply\n", ours,
              ns(t1, t2) / static_cast<double>(ours));
  return 0;
}
