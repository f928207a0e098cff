// RESP framing, sans-I/O.
//
// RequestParser turns client bytes into argument views, resumably: a request that arrives in
// pieces is scanned once, and argument positions are kept relative to the start of the request
// so the caller may move the unconsumed bytes to another buffer between calls.
// ReplyScanner finds where one backend reply (RESP2 or RESP3) ends, without building values,
// so reply bytes can be forwarded untouched. The append_* writers build replies Lockstep makes
// itself. Nothing here allocates per request once its buffers have grown to the working size.
//
// Why not hiredis' redisReader for replies: Debian 12's hiredis (0.14) cannot parse RESP3, and
// it builds an allocated reply tree for every reply where the data plane only needs to know
// where a reply ends. Measured with bench/resp_framing.cpp (2M small replies in 16 KiB chunks,
// -O2, this project's 2-vCPU machine): redisReader 60.6 ns/reply, ReplyScanner 13.2 ns/reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::resp {

struct ParserLimits {
  int64_t max_bulk_bytes = 512LL * 1024 * 1024;
  int64_t max_request_bytes = 1024LL * 1024 * 1024;
  int64_t max_args = 1024 * 1024;
  int64_t max_inline_bytes = 64 * 1024;
};

// Where a parser puts a completed request. Only needed until the request has been dispatched,
// so one scratch serves every parser of a thread: an idle connection keeps none of it.
struct ParserScratch {
  std::vector<std::string_view> argv;
  std::string inline_buf;  // unescaped inline arguments live here
  std::string error;
};

class RequestParser {
 public:
  enum class Status { kNeedMore, kComplete, kError };

  // `scratch` must outlive the parser; nullptr gives the parser its own.
  explicit RequestParser(const ParserLimits* limits, ParserScratch* scratch = nullptr)
      : limits_(limits), scratch_(scratch) {
    if (scratch_ == nullptr) {
      own_scratch_ = std::make_unique<ParserScratch>();
      scratch_ = own_scratch_.get();
    }
  }

  // `data` points at the first byte of the current request (the same request as the previous
  // call, possibly moved and extended). On kComplete, args() is valid until the next call and
  // consumed() tells how many bytes the request took. On kError, error() holds the Redis text
  // (without "-ERR "); the connection must then be closed.
  // `unauthenticated` applies Redis' tighter limits for clients that have not yet authenticated.
  Status parse(const char* data, size_t size, bool unauthenticated = false);

  std::span<const std::string_view> args() const { return scratch_->argv; }
  size_t consumed() const { return consumed_; }
  std::string_view error() const { return scratch_->error; }
  // True when the completed request came as an inline (telnet) line, so its bytes cannot be
  // forwarded as they are.
  bool inline_request() const { return inline_; }
  // Bytes of the request scanned so far (for limits on incomplete requests).
  size_t scanned() const { return pos_; }
  void reset();

 private:
  Status fail(std::string_view msg);
  Status parse_inline(const char* data, size_t size, bool unauthenticated);

  const ParserLimits* limits_;
  ParserScratch* scratch_;
  std::unique_ptr<ParserScratch> own_scratch_;
  // Resumable state, relative to the start of the request.
  size_t pos_ = 0;
  int64_t expected_args_ = -1;  // -1: header not read yet
  int64_t bulk_len_ = -1;       // -1: expecting a bulk header
  struct Span {
    size_t off;
    size_t len;
  };
  std::vector<Span> spans_;
  size_t consumed_ = 0;
  bool inline_ = false;
};

// Finds the end of one complete reply. Resumable: call again with the same start and more
// bytes; nothing already scanned is scanned twice.
class ReplyScanner {
 public:
  // Returns the reply's length in bytes when complete, 0 when more bytes are needed, -1 on a
  // protocol error (then the backend connection is broken).
  int64_t scan(const char* data, size_t size);
  void reset() {
    pos_ = 0;
    pending_.clear();
  }

 private:
  size_t pos_ = 0;
  std::vector<int64_t> pending_;  // elements still expected at each open aggregate level
};

// Splits a complete aggregate reply (array, RESP3 set, or RESP3 map as keys and values in turn)
// into its top-level elements' raw bytes. False if `reply` is none of those (an error, a nil).
bool split_array(std::string_view reply, std::vector<std::string_view>& elements, int64_t& count);

// Parses an integer reply (":123\r\n"). False if it is something else.
bool parse_integer_reply(std::string_view reply, int64_t& value);

inline bool is_error_reply(std::string_view reply) {
  return !reply.empty() && (reply[0] == '-' || reply[0] == '!');
}

// Parses a whole decimal int64 the way Redis' string2ll does (no spaces, no "+", no leading
// zeros except "0" itself).
bool parse_int64(std::string_view text, int64_t& value);

// Writers.
void append_simple(std::string& out, std::string_view s);
void append_error(std::string& out, std::string_view message);  // message includes the code
void append_integer(std::string& out, int64_t v);
void append_bulk(std::string& out, std::string_view s);
void append_null(std::string& out, int protocol);
void append_array_header(std::string& out, int64_t n);
// A text reply that RESP3 marks as verbatim ("txt"), as Redis does for INFO and CLIENT LIST.
void append_verbatim(std::string& out, std::string_view text, int protocol);
void append_map_header(std::string& out, int64_t pairs, int protocol);
void append_command(std::string& out, std::span<const std::string_view> args);

}  // namespace lockstep::resp
