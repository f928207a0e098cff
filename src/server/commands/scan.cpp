// SCAN through the proxy: one backend at a time, with a cursor that also names the backend.
#include <fmt/format.h>

#include <bit>

#include "lockstep/proxy/merge.h"
#include "lockstep/proxy/router.h"
#include "server/commands/handlers.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

// The low `bits` bits of a Lockstep cursor name the backend; the rest is that backend's own
// cursor. Redis cursors only ever use as many bits as the hash table has buckets, far below
// 64 - bits, so nothing is lost. Cursor 0 is backend 0's start, and 0 again means done.
int cursor_bits(int backends) {
  return backends <= 1 ? 0 : std::bit_width(static_cast<unsigned>(backends - 1));
}

bool parse_cursor(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

class ScanJob final : public Job {
 public:
  ScanJob(int backend, int backends) : backend_(backend), backends_(backends) {}
  void on_reply(Client&, uint64_t, size_t, std::string_view reply) override {
    done_ = true;
    std::vector<std::string_view> elems;
    int64_t n = 0;
    uint64_t next = 0;
    if (!resp::split_array(reply, elems, n) || n != 2 || elems[0].size() < 4 ||
        elems[0][0] != '$') {
      out_.assign(reply);  // an error (backend down, bad option): Redis' own words
      return;
    }
    std::string_view cursor_bulk = elems[0];
    size_t nl = cursor_bulk.find("\r\n");
    std::string_view cursor_text = cursor_bulk.substr(nl + 2, cursor_bulk.size() - nl - 4);
    parse_cursor(cursor_text, next);
    const int bits = cursor_bits(backends_);
    uint64_t ours = 0;
    if (next != 0)
      ours = (next << bits) | static_cast<uint64_t>(backend_);
    else if (backend_ + 1 < backends_)
      ours = static_cast<uint64_t>(backend_ + 1);  // the next backend, from its start
    resp::append_array_header(out_, 2);
    resp::append_bulk(out_, std::to_string(ours));
    std::vector<std::string_view> keys;
    int64_t nkeys = 0;
    if (!resp::split_array(elems[1], keys, nkeys)) {
      out_.append(elems[1]);
      return;
    }
    std::string body;
    int64_t kept = 0;
    for (auto k : keys) {
      if (proxy::is_reserved_element(k)) continue;  // Lockstep's own keys stay hidden
      body.append(k);
      ++kept;
    }
    resp::append_array_header(out_, kept);
    out_.append(body);
  }
  bool done() const override { return done_; }
  void finish(std::string& out) override { out.append(out_); }

 private:
  int backend_;
  int backends_;
  bool done_ = false;
  std::string out_;
};

void scan(Client& c, const Request& r) {
  const auto& args = r.args;
  const int n = c.worker().backend_count();
  uint64_t cursor = 0;
  if (!parse_cursor(args[1], cursor)) {
    c.reply_error("ERR invalid cursor");
    return;
  }
  const int bits = cursor_bits(n);
  const int backend = static_cast<int>(cursor & ((uint64_t{1} << bits) - 1));
  if (backend >= n) {
    c.reply_error("ERR invalid cursor");
    return;
  }
  std::string backend_cursor = std::to_string(cursor >> bits);
  std::vector<std::string_view> sub(args.begin(), args.end());
  sub[1] = backend_cursor;
  std::string request;
  resp::append_command(request, sub);
  uint64_t seq;
  c.start_job(std::make_unique<ScanJob>(backend, n), seq);
  c.send_part(backend, seq, 0, request);
}

}  // namespace

void register_scan_commands(HandlerTable& t) {
  t.add("scan", scan);
}

}  // namespace lockstep::server
