// Keyspace-wide reads answered from every backend: SCAN (one backend at a time, with a cursor
// that names the backend) and INFO's keyspace section (summed over backends).
#include <fmt/format.h>

#include <bit>

#include "lockstep/proxy/merge.h"
#include "lockstep/proxy/router.h"
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

// "db0:keys=1,expires=0,avg_ttl=0" from each backend (whatever db it uses) becomes one db0 line.
class KeyspaceJob final : public Job {
 public:
  // `dbs[i]`: the database Lockstep uses on backend i (backends[].db); other databases on a
  // backend are not Lockstep's data.
  KeyspaceJob(std::string head, std::string tail, std::vector<int> dbs, int protocol)
      : head_(std::move(head)),
        tail_(std::move(tail)),
        dbs_(std::move(dbs)),
        pending_(dbs_.size()),
        protocol_(protocol) {}
  void on_reply(Client&, uint64_t, size_t part, std::string_view reply) override {
    --pending_;
    if (resp::is_error_reply(reply)) {
      ++failed_;
      return;
    }
    // Bulk or verbatim text: the "db<N>:keys=..,expires=..,avg_ttl=.." line of our database.
    const std::string prefix = fmt::format("db{}:", dbs_[part]);
    size_t at = reply.find("\n" + prefix);
    if (at == std::string_view::npos) return;  // no keys there
    std::string_view line = reply.substr(at + 1);
    line = line.substr(0, line.find('\r'));
    auto field = [&](std::string_view name) -> int64_t {
      size_t p = line.find(name);
      if (p == std::string_view::npos) return 0;
      p += name.size();
      size_t e = p;
      while (e < line.size() && line[e] >= '0' && line[e] <= '9') ++e;
      int64_t v = 0;
      resp::parse_int64(line.substr(p, e - p), v);
      return v;
    };
    const int64_t expires = field("expires=");
    keys_ += field("keys=");
    expires_ += expires;
    ttl_weighted_ += field("avg_ttl=") * expires;
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override {
    std::string text = head_;
    text += "# Keyspace\r\n";
    if (keys_ > 0)
      text += fmt::format("db0:keys={},expires={},avg_ttl={}\r\n", keys_, expires_,
                          expires_ > 0 ? ttl_weighted_ / expires_ : 0);
    if (failed_ > 0) text += fmt::format("# {} backend(s) did not answer\r\n", failed_);
    text += "\r\n";
    text += tail_;
    if (text.size() >= 2 && text.ends_with("\r\n\r\n")) text.resize(text.size() - 2);
    resp::append_verbatim(out, text, protocol_);
  }

 private:
  std::string head_, tail_;
  std::vector<int> dbs_;
  size_t pending_;
  int protocol_;
  int failed_ = 0;
  int64_t keys_ = 0, expires_ = 0, ttl_weighted_ = 0;
};

}  // namespace

void Client::cmd_scan(std::span<const std::string_view> args) {
  const int n = worker_.backend_count();
  uint64_t cursor = 0;
  if (!parse_cursor(args[1], cursor)) {
    reply_error("ERR invalid cursor");
    return;
  }
  const int bits = cursor_bits(n);
  const int backend = static_cast<int>(cursor & ((uint64_t{1} << bits) - 1));
  if (backend >= n) {
    reply_error("ERR invalid cursor");
    return;
  }
  std::string backend_cursor = std::to_string(cursor >> bits);
  std::vector<std::string_view> sub(args.begin(), args.end());
  sub[1] = backend_cursor;
  std::string request;
  resp::append_command(request, sub);
  uint64_t seq;
  start_job(std::make_unique<ScanJob>(backend, n), seq);
  send_part(backend, seq, 0, request);
}

void Client::info_with_keyspace(std::string head, std::string tail) {
  const int n = worker_.backend_count();
  uint64_t seq;
  std::vector<int> dbs;
  for (const auto& b : worker_.topology().backends) dbs.push_back(b.cfg.db);
  start_job(
      std::make_unique<KeyspaceJob>(std::move(head), std::move(tail), std::move(dbs), protocol()),
      seq);
  static constexpr std::string_view kInfoKeyspace = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";
  for (int b = 0; b < n; ++b) send_part(b, seq, static_cast<size_t>(b), kInfoKeyspace);
}

}  // namespace lockstep::server
