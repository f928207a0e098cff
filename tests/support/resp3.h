// Raw-byte helpers for RESP3 and for features whose replies must match Redis exactly: send a
// command on a RawConn and get the reply's bytes, compare a reference redis-server and Lockstep
// byte for byte, read fields out of INFO text and HELLO replies.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/harness.h"

namespace lockstep::test {

// Sends argv on `conn` and returns its reply's raw bytes, or "<no reply>" when none arrives
// within `timeout` (a marker no RESP reply can equal).
std::string raw_call(RawConn& conn, const std::vector<std::string>& argv, Millis timeout = 5s);

// The bytes with CR, LF and other control bytes escaped (\r, \n, \xNN), for messages.
std::string escape_bytes(std::string_view bytes);

// Parses a whole raw reply (as from raw_call); kIoError when it is not exactly one reply.
Reply parse_raw(std::string_view bytes);

// The fields of a HELLO reply (a RESP3 map or a RESP2 flat array) by name; empty when the
// reply does not have that shape.
std::map<std::string, Reply> hello_fields(const Reply& reply);

// One field of INFO text ("blocked_clients" -> "0"), or nullopt when absent.
std::optional<std::string> info_field(std::string_view info_text, std::string_view name);
// INFO <section> on `client` and one integer field of it; -1 when missing or not a number.
long long info_int(Client& client, const std::string& section, std::string_view name);

// Differential testing on raw connections: the same command to a reference redis-server and
// to Lockstep must get the very same bytes. Uses Catch2 CHECKs (call inside a TEST_CASE).
class RawCompare {
 public:
  RawCompare(uint16_t reference_port, uint16_t proxy_port)
      : reference_(reference_port), proxy_(proxy_port) {}

  // CHECKs both replies are byte-for-byte equal and the reference's is not an error.
  // Returns Lockstep's bytes.
  std::string same(const std::vector<std::string>& argv);
  // As same(), but the reference must answer an error.
  std::string same_error(const std::vector<std::string>& argv);
  // For replies whose element order Redis does not define (KEYS, SMEMBERS of big sets): the
  // parsed replies must be equal once their elements are sorted.
  Reply same_unordered(const std::vector<std::string>& argv);
  // HELLO on both: the replies must have the same shape and fields; only `version` (the
  // server's) and `id` (the connection's) may differ. Returns Lockstep's parsed reply.
  Reply hello(const std::vector<std::string>& argv);

  RawConn& reference() { return reference_; }
  RawConn& proxy() { return proxy_; }

 private:
  std::string run(const std::vector<std::string>& argv, bool expect_error);
  RawConn reference_;
  RawConn proxy_;
};

}  // namespace lockstep::test
